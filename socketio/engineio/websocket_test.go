package engineio_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/socketio/engineio"
)

func TestWebSocketEcho(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	c, sid := e.wsHandshake()
	rec := e.rec(sid)

	writeWS(t, c, websocket.TextMessage, "4hello ✓")
	if got := rec.waitMessage(t); got != (call{data: "hello ✓"}) {
		t.Errorf("handler got %v", got)
	}
	expectWS(t, c, websocket.TextMessage, "4hello ✓")

	bin := "\x00\xff\x01binary"
	writeWS(t, c, websocket.BinaryMessage, bin)
	if got := rec.waitMessage(t); got != (call{data: bin, binary: true}) {
		t.Errorf("handler got %v", got)
	}
	expectWS(t, c, websocket.BinaryMessage, bin) // raw, not base64

	// As Node's parser: base64 in a text frame is binary data too.
	writeWS(t, c, websocket.TextMessage, "bAQID")
	if got := rec.waitMessage(t); got != (call{data: "\x01\x02\x03", binary: true}) {
		t.Errorf("handler got %v", got)
	}
	expectWS(t, c, websocket.BinaryMessage, "\x01\x02\x03")

	writeWS(t, c, websocket.BinaryMessage, "")
	if got := rec.waitMessage(t); got != (call{binary: true}) {
		t.Errorf("handler got %v", got)
	}
	expectWS(t, c, websocket.BinaryMessage, "")

	// Ignored, as in Node: open, noop, upgrade, close, an unasked pong.
	for _, p := range []string{"0", "6", "5", "1", "3"} {
		writeWS(t, c, websocket.TextMessage, p)
	}
	writeWS(t, c, websocket.TextMessage, "4after")
	expectWS(t, c, websocket.TextMessage, "4after")
	if h := rec.history(); len(h) != 5 {
		t.Errorf("handler calls %v", h)
	}

	// Large messages, in frames with 16- and 64-bit lengths.
	for _, n := range []int{125, 126, 65535, 65536, 200_000} {
		msg := "4" + strings.Repeat("z", n)
		writeWS(t, c, websocket.TextMessage, msg)
		expectWS(t, c, websocket.TextMessage, msg)
		big := strings.Repeat("\x07", n)
		writeWS(t, c, websocket.BinaryMessage, big)
		expectWS(t, c, websocket.BinaryMessage, big)
	}
}

func TestWebSocketBatchedSends(t *testing.T) {
	e := newQuietEnv(t, engineio.Config{})
	c, sid := e.wsHandshake()
	s := e.session(sid)
	const n = 500
	for i := range n {
		m := engineio.NewTextMessage([]byte(strings.Repeat("t", i)))
		if i%3 == 0 {
			m = engineio.NewBinaryMessage(bytes.Repeat([]byte{byte(i)}, i))
		}
		if err := s.Send(m, m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		for range 2 {
			if i%3 == 0 {
				expectWS(t, c, websocket.BinaryMessage, strings.Repeat(string([]byte{byte(i)}), i))
			} else {
				expectWS(t, c, websocket.TextMessage, "4"+strings.Repeat("t", i))
			}
		}
	}
}

func TestWebSocketSharedMessage(t *testing.T) {
	// One Message sent to many sessions: each gets the same bytes.
	e := newQuietEnv(t, engineio.Config{})
	m := engineio.NewTextMessage([]byte("to all"))
	b := engineio.NewBinaryMessage([]byte{9, 8})
	var conns []*websocket.Conn
	for range 5 {
		c, sid := e.wsHandshake()
		conns = append(conns, c)
		if err := e.session(sid).Send(m, b); err != nil {
			t.Fatal(err)
		}
	}
	psid := e.handshake()
	if err := e.session(psid).Send(m, b); err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		expectWS(t, c, websocket.TextMessage, "4to all")
		expectWS(t, c, websocket.BinaryMessage, "\x09\x08")
	}
	expectReply(t, "GET", e.get(poll(psid)), 200, "4to all\x1ebCQg=")
	if got := string(m.Data()); got != "to all" || m.Binary() {
		t.Errorf("Data %q, Binary %v", got, m.Binary())
	}
	if got := b.Data(); !bytes.Equal(got, []byte{9, 8}) || !b.Binary() {
		t.Errorf("Data %v, Binary %v", got, b.Binary())
	}
}

func TestAppendTextMessage(t *testing.T) {
	e := newQuietEnv(t, engineio.Config{})
	c, sid := e.wsHandshake()
	m := engineio.AppendTextMessage(3, func(b []byte) []byte { return append(b, `[1]`...) })
	if err := e.session(sid).Send(m); err != nil {
		t.Fatal(err)
	}
	expectWS(t, c, websocket.TextMessage, "4[1]")
}

func TestWebSocketInvalidUTF8(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	c, sid := e.wsHandshake()
	writeWS(t, c, websocket.TextMessage, "4\xff\xfe")
	expectWSClose(t, c, websocket.CloseInvalidFramePayloadData) // 1007, as Node's ws
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	if h := e.rec(sid).history(); len(h) != 1 {
		t.Errorf("handler calls %v, want the close only", h)
	}
}

func TestWebSocketMaxPayload(t *testing.T) {
	const max = 100
	e := newEnv(t, engineio.Config{MaxPayload: max})
	c, sid := e.wsHandshake()
	at := "4" + strings.Repeat("x", max-1)
	writeWS(t, c, websocket.TextMessage, at)
	expectWS(t, c, websocket.TextMessage, at)
	writeWS(t, c, websocket.BinaryMessage, strings.Repeat("y", max+1))
	expectWSClose(t, c, websocket.CloseMessageTooBig) // 1009, as Node's ws
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
}

func TestWebSocketParseError(t *testing.T) {
	for _, msg := range []string{"x", "", "8", "b!!"} {
		t.Run(msg, func(t *testing.T) {
			e := newEnv(t, engineio.Config{})
			c, sid := e.wsHandshake()
			writeWS(t, c, websocket.TextMessage, msg)
			expectWSClose(t, c, websocket.CloseNoStatusReceived)
			e.rec(sid).expectClose(t, engineio.ReasonParseError)
		})
	}
}

func TestWebSocketPingFromClient(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	c, sid := e.wsHandshake()
	writeWS(t, c, websocket.TextMessage, "2")
	expectWSClose(t, c, websocket.CloseNoStatusReceived)
	e.rec(sid).expectClose(t, engineio.ReasonTransportError) // "invalid heartbeat direction"
}

func TestWebSocketClientCloses(t *testing.T) {
	t.Run("close frame", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		c, sid := e.wsHandshake()
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(eventually))
		expectWSClose(t, c, websocket.CloseNormalClosure) // the server's answer
		e.rec(sid).expectClose(t, engineio.ReasonTransportClose)
	})
	t.Run("connection dropped", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		c, sid := e.wsHandshake()
		c.NetConn().Close()
		e.rec(sid).expectClose(t, engineio.ReasonTransportClose)
		if n := e.srv.Count(); n != 0 {
			t.Errorf("Count = %d", n)
		}
	})
}

func TestWebSocketSessionClose(t *testing.T) {
	e := newQuietEnv(t, engineio.Config{})
	c, sid := e.wsHandshake()
	s := e.session(sid)
	if err := s.Send(engineio.NewTextMessage([]byte("a")), engineio.NewBinaryMessage([]byte("b"))); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Send(engineio.NewTextMessage([]byte("late"))); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	expectWS(t, c, websocket.TextMessage, "4a")
	expectWS(t, c, websocket.BinaryMessage, "b")
	expectWSClose(t, c, websocket.CloseNoStatusReceived) // as Node's ws.close()
	e.rec(sid).expectClose(t, engineio.ReasonForcedClose)
}

func TestWebSocketSlowConsumer(t *testing.T) {
	e := newQuietEnv(t, engineio.Config{MaxBufferedBytes: 64 << 10, PingInterval: time.Hour})
	// A client that does not read, with a small receive buffer.
	d := websocket.Dialer{
		HandshakeTimeout: eventually,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var err error
				_ = rc.Control(func(fd uintptr) {
					err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				return err
			}}
			return nd.DialContext(ctx, network, addr)
		},
	}
	c, _, err := d.Dial(e.wsURL+"?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, open := readWS(t, c)
	sid := parseOpen(t, open).SID
	s := e.session(sid)
	msg := engineio.NewBinaryMessage(make([]byte, 16<<10))
	sent := 0
	for ; sent < 100_000; sent++ {
		err := s.Send(msg)
		if errors.Is(err, engineio.ErrSlowConsumer) {
			break
		}
		if err != nil {
			t.Fatalf("Send %d: %v", sent, err)
		}
		// Until the writer blocks on the client, let it drain the queue:
		// the session is closed for not reading, not for a burst.
		for deadline := time.Now().Add(20 * time.Millisecond); e.srv.Queued(sid) > 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
	}
	if sent == 100_000 {
		t.Fatal("100,000 messages queued for a client that does not read")
	}
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	if n := e.srv.SlowConsumers(); n != 1 {
		t.Errorf("SlowConsumers = %d, want 1", n)
	}
	// The connection is dropped at once, not when the write that the
	// client blocks times out (here in an hour): Close does not wait for
	// it.
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v: a writer is still blocked on the slow consumer", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(eventually))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open %v after the session closed", eventually)
			}
			break
		}
	}
	t.Logf("closed after %d messages of 16 KiB", sent)
}

func TestWebSocketPerMessageDeflate(t *testing.T) {
	e := newEnv(t, engineio.Config{PerMessageDeflate: true})
	for _, compress := range []bool{true, false} {
		t.Run(map[bool]string{true: "client compresses", false: "client does not"}[compress], func(t *testing.T) {
			d := websocket.Dialer{HandshakeTimeout: eventually, EnableCompression: compress}
			c, resp, err := d.Dial(e.wsURL+"?EIO=4&transport=websocket", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ext := resp.Header.Get("Sec-WebSocket-Extensions")
			if got := strings.Contains(ext, "permessage-deflate"); got != compress {
				t.Errorf("Sec-WebSocket-Extensions %q", ext)
			}
			_, open := readWS(t, c)
			sid := parseOpen(t, open).SID
			for _, msg := range []string{"small", strings.Repeat("large and repetitive ", 200)} {
				writeWS(t, c, websocket.TextMessage, "4"+msg)
				expectWS(t, c, websocket.TextMessage, "4"+msg)
				writeWS(t, c, websocket.BinaryMessage, msg)
				expectWS(t, c, websocket.BinaryMessage, msg)
			}
			// An upgrade to a compressed WebSocket.
			psid := e.handshake()
			u, _, err := d.Dial(e.wsURL+"?"+wsQuery(psid), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			writeWS(t, u, websocket.TextMessage, "2probe")
			expectWS(t, u, websocket.TextMessage, "3probe")
			writeWS(t, u, websocket.TextMessage, "5")
			big := "4" + strings.Repeat("z", 5000)
			writeWS(t, u, websocket.TextMessage, big)
			expectWS(t, u, websocket.TextMessage, big)
			e.session(sid).Close()
			expectWSClose(t, c, websocket.CloseNoStatusReceived)
		})
	}
}
