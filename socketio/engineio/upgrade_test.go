package engineio_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/socketio/engineio"
)

// probe opens the WebSocket of an upgrade of the session sid and answers
// its probe.
func (e *env) probe(sid string) *websocket.Conn {
	e.t.Helper()
	c := e.mustDial(wsQuery(sid))
	writeWS(e.t, c, websocket.TextMessage, "2probe")
	expectWS(e.t, c, websocket.TextMessage, "3probe")
	return c
}

func TestUpgrade(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	rec := e.rec(sid)
	expectReply(t, "POST", e.post(poll(sid), "4before"), 200, "ok")
	rec.waitMessage(t)
	expectReply(t, "GET", e.get(poll(sid)), 200, "4before")

	parked := e.park(sid)
	c := e.probe(sid)
	// The parked GET returns at once, so that the client can pause.
	expectReply(t, "parked GET", wait(t, parked), 200, "6")
	if got := e.session(sid).Transport(); got != engineio.Polling {
		t.Errorf("Transport before the upgrade packet = %q", got)
	}
	// Until "5", the session goes on over polling.
	expectReply(t, "POST while upgrading", e.post(poll(sid), "4during"), 200, "ok")
	if got := rec.waitMessage(t); got != (call{data: "during"}) {
		t.Errorf("handler got %v", got)
	}
	// The echo waits in the queue (the client has paused polling) and
	// leaves over the WebSocket.
	writeWS(t, c, websocket.TextMessage, "5")
	expectWS(t, c, websocket.TextMessage, "4during")
	waitUntil(t, "upgraded", func() bool { return e.session(sid).Transport() == engineio.WebSocket })

	writeWS(t, c, websocket.TextMessage, "4via ws")
	expectWS(t, c, websocket.TextMessage, "4via ws")
	writeWS(t, c, websocket.BinaryMessage, "\x01\x02")
	expectWS(t, c, websocket.BinaryMessage, "\x01\x02")

	// Polling is over: as Node, 400 "Bad request" (the transport differs).
	expectReply(t, "GET after the upgrade", e.get(poll(sid)), 400, badRequest)
	expectReply(t, "POST after the upgrade", e.post(poll(sid), "4x"), 400, badRequest)
	if rec.isClosed() {
		t.Fatal("session closed by a poll after the upgrade")
	}

	// A WebSocket after the upgrade is completed, then closed, as in Node.
	c2 := e.mustDial(wsQuery(sid))
	expectWSClose(t, c2, websocket.CloseNoStatusReceived)
	writeWS(t, c, websocket.TextMessage, "4still")
	expectWS(t, c, websocket.TextMessage, "4still")

	s := e.session(sid)
	s.Close()
	expectWSClose(t, c, websocket.CloseNoStatusReceived)
	rec.expectClose(t, engineio.ReasonForcedClose)
}

func TestUpgradeFlushesQueue(t *testing.T) {
	e := newQuietEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.probe(sid)
	s := e.session(sid)
	for _, m := range []*engineio.Message{
		engineio.NewTextMessage([]byte("q1")),
		engineio.NewBinaryMessage([]byte{7}),
		engineio.NewTextMessage([]byte("q2")),
	} {
		if err := s.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	writeWS(t, c, websocket.TextMessage, "5")
	expectWS(t, c, websocket.TextMessage, "4q1")
	expectWS(t, c, websocket.BinaryMessage, "\x07")
	expectWS(t, c, websocket.TextMessage, "4q2")
}

func TestUpgradeWithoutProbe(t *testing.T) {
	// Node does not require the probe: "5" alone upgrades.
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.mustDial(wsQuery(sid))
	writeWS(t, c, websocket.TextMessage, "5")
	writeWS(t, c, websocket.TextMessage, "4x")
	expectWS(t, c, websocket.TextMessage, "4x")
	if got := e.session(sid).Transport(); got != engineio.WebSocket {
		t.Errorf("Transport = %q", got)
	}
}

func TestUpgradeRejectsParkedPoll(t *testing.T) {
	// A GET still parked when "5" arrives (a client that did not pause, or
	// a poll within the noop's delay) is answered as a GET that came after
	// the upgrade: 400 "Bad request". Node writes it the close packet
	// (its polling transport closes), which a client that did pause never
	// sees.
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.mustDial(wsQuery(sid))
	parked := e.park(sid)
	writeWS(t, c, websocket.TextMessage, "5")
	expectReply(t, "parked GET", wait(t, parked), 400, badRequest)
	writeWS(t, c, websocket.TextMessage, "4x")
	expectWS(t, c, websocket.TextMessage, "4x")
	if e.rec(sid).isClosed() {
		t.Error("session closed")
	}
}

func TestUpgradeGetAfterProbe(t *testing.T) {
	// Between the probe and "5", a poll is answered at once with a noop.
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	e.probe(sid)
	expectReply(t, "GET", e.get(poll(sid)), 200, "6")
	expectReply(t, "GET", e.get(poll(sid)), 200, "6")
}

func TestSecondUpgrade(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.probe(sid)
	// As Node: the second WebSocket is accepted, then closed.
	c2 := e.mustDial(wsQuery(sid))
	expectWSClose(t, c2, websocket.CloseNoStatusReceived)
	writeWS(t, c, websocket.TextMessage, "5")
	writeWS(t, c, websocket.TextMessage, "4first")
	expectWS(t, c, websocket.TextMessage, "4first")
}

func TestUpgradeTimeout(t *testing.T) {
	e := newEnv(t, engineio.Config{UpgradeTimeout: 50 * time.Millisecond})
	sid := e.handshake()
	c := e.probe(sid)
	expectWSClose(t, c, websocket.CloseNoStatusReceived)
	waitUntil(t, "upgrade abandoned", func() bool { up, _ := e.srv.Upgrading(sid); return !up })
	// The session goes on over polling; polls park again.
	if got := e.session(sid).Transport(); got != engineio.Polling {
		t.Errorf("Transport = %q", got)
	}
	parked := e.park(sid)
	expectReply(t, "POST", e.post(poll(sid), "4still polling"), 200, "ok")
	expectReply(t, "GET", wait(t, parked), 200, "4still polling")
	// And can upgrade again.
	c = e.probe(sid)
	writeWS(t, c, websocket.TextMessage, "5")
	writeWS(t, c, websocket.TextMessage, "4ws")
	expectWS(t, c, websocket.TextMessage, "4ws")
}

func TestUpgradeUnexpectedPacket(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   int
		msg  string
	}{
		{"message", websocket.TextMessage, "4hello"},
		{"binary", websocket.BinaryMessage, "\x01"},
		{"ping without probe", websocket.TextMessage, "2"},
		{"pong", websocket.TextMessage, "3probe"},
		{"noop", websocket.TextMessage, "6"},
		{"close", websocket.TextMessage, "1"},
		{"not a packet", websocket.TextMessage, "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, engineio.Config{})
			sid := e.handshake()
			c := e.probe(sid)
			writeWS(t, c, tc.op, tc.msg)
			// As Node: the WebSocket is closed, the session stays on
			// polling, the packet is dropped.
			expectWSClose(t, c, websocket.CloseNoStatusReceived)
			waitUntil(t, "upgrade abandoned", func() bool { up, _ := e.srv.Upgrading(sid); return !up })
			expectReply(t, "POST", e.post(poll(sid), "4next"), 200, "ok")
			expectReply(t, "GET", e.get(poll(sid)), 200, "4next")
			if h := e.rec(sid).history(); len(h) != 1 {
				t.Errorf("handler calls %v, want the one message", h)
			}
		})
	}
}

func TestUpgradeWebSocketClosedByClient(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.probe(sid)
	c.NetConn().Close()
	waitUntil(t, "upgrade abandoned", func() bool { up, _ := e.srv.Upgrading(sid); return !up })
	parked := e.park(sid) // parks again: the noop of the upgrade is over
	expectReply(t, "POST", e.post(poll(sid), "4x"), 200, "ok")
	expectReply(t, "GET", wait(t, parked), 200, "4x")
}

func TestUpgradeOfWebSocketSession(t *testing.T) {
	// Node would upgrade a WebSocket session to a second WebSocket;
	// herald refuses (accepts, then closes) as it does after an upgrade.
	e := newEnv(t, engineio.Config{})
	c, sid := e.wsHandshake()
	c2 := e.mustDial(wsQuery(sid))
	expectWSClose(t, c2, websocket.CloseNoStatusReceived)
	writeWS(t, c, websocket.TextMessage, "4x")
	expectWS(t, c, websocket.TextMessage, "4x")
}

func TestUpgradeCutsPostInFlight(t *testing.T) {
	// A POST still reading its body when "5" arrives is cut, as Node
	// destroys it; the session goes on over the WebSocket.
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.probe(sid)
	post := e.rawRequest("POST /engine.io/?"+poll(sid)+" HTTP/1.1\nHost: x\nContent-Type: text/plain;charset=UTF-8\nContent-Length: 10\n", "4par")
	waitUntil(t, "POST reading its body", func() bool { return e.srv.Posting(sid) })
	writeWS(t, c, websocket.TextMessage, "5")
	if r := readRaw(t, post, http.MethodPost); r.status != 400 {
		t.Errorf("POST in flight: %v, want 400", r)
	}
	writeWS(t, c, websocket.TextMessage, "4after")
	expectWS(t, c, websocket.TextMessage, "4after")
	if e.rec(sid).isClosed() {
		t.Errorf("session closed: %v", e.rec(sid).history())
	}
}

func TestUpgradeWhileClosing(t *testing.T) {
	// Session.Close during an upgrade: the close leaves over the
	// WebSocket once the client sends "5", after what was queued.
	e := newQuietEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.probe(sid)
	s := e.session(sid)
	if err := s.Send(engineio.NewTextMessage([]byte("last"))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	writeWS(t, c, websocket.TextMessage, "5")
	expectWS(t, c, websocket.TextMessage, "4last")
	expectWSClose(t, c, websocket.CloseNoStatusReceived)
	e.rec(sid).expectClose(t, engineio.ReasonForcedClose)
}

func TestUpgradeRefusedWhenClosing(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	e.session(sid).Close()
	c := e.mustDial(wsQuery(sid))
	expectWSClose(t, c, websocket.CloseNoStatusReceived)
	expectReply(t, "GET", e.get(poll(sid)), 200, "6\x1e1")
	e.rec(sid).expectClose(t, engineio.ReasonForcedClose)
}

func TestSessionCloseDuringUpgrade(t *testing.T) {
	// The session closes for another reason while upgrading: the
	// WebSocket being upgraded to is dropped.
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	c := e.probe(sid)
	expectReply(t, "POST", e.post(poll(sid), "1"), 200, "ok")
	e.rec(sid).expectClose(t, engineio.ReasonTransportClose)
	_ = c.SetReadDeadline(time.Now().Add(eventually))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("WebSocket still open")
	}
}
