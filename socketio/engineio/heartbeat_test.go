package engineio_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/socketio/engineio"
)

// heartbeat is a short heartbeat for tests: pings every 50 ms; the pong
// must come within 300 ms, which the tests do well within.
var heartbeat = engineio.Config{PingInterval: 50 * time.Millisecond, PingTimeout: 300 * time.Millisecond}

func TestHeartbeatPolling(t *testing.T) {
	e := newEnv(t, heartbeat)
	r := e.get("EIO=4&transport=polling")
	o := parseOpen(t, r.body)
	if o.PingInterval != 50 || o.PingTimeout != 300 {
		t.Errorf("open packet advertises %d/%d ms", o.PingInterval, o.PingTimeout)
	}
	sid := o.SID
	// Pongs keep the session open for longer than PingTimeout.
	start := time.Now()
	for i := 0; i < 10 || time.Since(start) < 400*time.Millisecond; i++ {
		expectReply(t, "GET", e.get(poll(sid)), 200, "2")
		expectReply(t, "POST pong", e.post(poll(sid), "3"), 200, "ok")
	}
	if e.rec(sid).isClosed() {
		t.Fatalf("closed: %v", e.rec(sid).history())
	}
	// No pong: "ping timeout", and the parked GET gets the close packet.
	expectReply(t, "GET", e.get(poll(sid)), 200, "2")
	parked := e.park(sid)
	e.rec(sid).expectClose(t, engineio.ReasonPingTimeout)
	expectReply(t, "parked GET", wait(t, parked), 200, "1")
	if h := e.rec(sid).history(); len(h) != 1 {
		t.Errorf("handler calls %v", h)
	}
}

func TestHeartbeatBatchedWithMessages(t *testing.T) {
	// A ping queued with messages leaves in the same payload, in order.
	e := newQuietEnv(t, engineio.Config{PingInterval: 50 * time.Millisecond, PingTimeout: 5 * time.Second})
	sid := e.handshake()
	if err := e.session(sid).Send(engineio.NewTextMessage([]byte("m"))); err != nil {
		t.Fatal(err)
	}
	// Wait for the ping to be queued behind the message.
	waitUntil(t, "ping queued", func() bool { return e.srv.Queued(sid) >= 4+3 }) // frames: "4m" and "2"
	expectReply(t, "GET", e.get(poll(sid)), 200, "4m\x1e2")
}

func TestHeartbeatWebSocket(t *testing.T) {
	e := newEnv(t, heartbeat)
	c, sid := e.wsHandshake()
	start := time.Now()
	for i := 0; i < 10 || time.Since(start) < 400*time.Millisecond; i++ {
		expectWS(t, c, websocket.TextMessage, "2")
		writeWS(t, c, websocket.TextMessage, "3")
	}
	if e.rec(sid).isClosed() {
		t.Fatalf("closed: %v", e.rec(sid).history())
	}
	expectWS(t, c, websocket.TextMessage, "2")
	expectWSClose(t, c, websocket.CloseNoStatusReceived)
	e.rec(sid).expectClose(t, engineio.ReasonPingTimeout)
}

func TestHeartbeatAcrossUpgrade(t *testing.T) {
	e := newEnv(t, heartbeat)
	sid := e.handshake()
	c := e.probe(sid)
	writeWS(t, c, websocket.TextMessage, "5")
	start := time.Now()
	for i := 0; i < 5 || time.Since(start) < 400*time.Millisecond; i++ {
		expectWS(t, c, websocket.TextMessage, "2")
		writeWS(t, c, websocket.TextMessage, "3")
	}
	if e.rec(sid).isClosed() {
		t.Fatalf("closed: %v", e.rec(sid).history())
	}
}

func TestHeartbeatStopsWhenClosed(t *testing.T) {
	// A session closed by the client gets no ping, and nothing fires for
	// it later (the env's cleanup checks OnClose came once).
	e := newEnv(t, heartbeat)
	c, sid := e.wsHandshake()
	c.Close()
	e.rec(sid).expectClose(t, engineio.ReasonTransportClose)
	time.Sleep(400 * time.Millisecond) // past a ping and its timeout
}
