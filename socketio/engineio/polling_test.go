package engineio_test

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/socketio/engineio"
)

func TestPollingEcho(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	r := e.post(poll(sid), "4hello")
	expectReply(t, "POST", r, 200, "ok")
	// As Node's (text/html: GH-43 of engine.io).
	for k, want := range map[string]string{"Content-Type": "text/html", "Content-Length": "2", "Cache-Control": "no-store"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("POST %s: %q, want %q", k, got, want)
		}
	}
	if c := e.rec(sid).waitMessage(t); c != (call{data: "hello"}) {
		t.Errorf("handler got %v", c)
	}
	r = e.get(poll(sid))
	expectReply(t, "GET", r, 200, "4hello")
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
		t.Errorf("GET Content-Type %q", ct)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET Cache-Control %q", cc)
	}
	// Text as sent: UTF-8, and the characters of other packet types.
	expectReply(t, "POST", e.post(poll(sid), "4héllo ✓ 1 2 b"), 200, "ok")
	expectReply(t, "GET", e.get(poll(sid)), 200, "4héllo ✓ 1 2 b")
	expectReply(t, "POST empty message", e.post(poll(sid), "4"), 200, "ok")
	expectReply(t, "GET", e.get(poll(sid)), 200, "4")
}

func TestPollingBatches(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	expectReply(t, "POST", e.post(poll(sid), "4a\x1e4b\x1e4\x1e4c"), 200, "ok")
	rec := e.rec(sid)
	for _, want := range []string{"a", "b", "", "c"} {
		if c := rec.waitMessage(t); c != (call{data: want}) {
			t.Errorf("handler got %v, want text(%q)", c, want)
		}
	}
	// Everything queued while no GET was parked leaves in one response.
	expectReply(t, "GET", e.get(poll(sid)), 200, "4a\x1e4b\x1e4\x1e4c")

	s := e.session(sid)
	if err := s.Send(engineio.NewTextMessage([]byte("x")), engineio.NewTextMessage([]byte("y"))); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(engineio.NewTextMessage([]byte("z"))); err != nil {
		t.Fatal(err)
	}
	expectReply(t, "GET", e.get(poll(sid)), 200, "4x\x1e4y\x1e4z")
}

func TestPollingBinary(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	// engine.io-client sends binary data as "b" and standard base64.
	expectReply(t, "POST", e.post(poll(sid), "bAQID\x1e4t\x1eb"), 200, "ok")
	rec := e.rec(sid)
	for _, want := range []call{{data: "\x01\x02\x03", binary: true}, {data: "t"}, {data: "", binary: true}} {
		if c := rec.waitMessage(t); c != want {
			t.Errorf("handler got %v, want %v", c, want)
		}
	}
	expectReply(t, "GET", e.get(poll(sid)), 200, "bAQID\x1e4t\x1eb")

	bin := []byte{0, 0xff, 0xfe, 'b', '4', 0x1e, 0xfb}
	if err := e.session(sid).Send(engineio.NewBinaryMessage(bin)); err != nil {
		t.Fatal(err)
	}
	expectReply(t, "GET", e.get(poll(sid)), 200, "b"+base64.StdEncoding.EncodeToString(bin))
}

func TestPollingParkedGet(t *testing.T) {
	e := newQuietEnv(t, engineio.Config{})
	sid := e.handshake()
	ch := e.park(sid)
	select {
	case r := <-ch:
		t.Fatalf("GET answered with nothing to send: %v", r)
	default:
	}
	if err := e.session(sid).Send(engineio.NewTextMessage([]byte("wake"))); err != nil {
		t.Fatal(err)
	}
	expectReply(t, "parked GET", wait(t, ch), 200, "4wake")
	// A GET sent the moment a response arrives is not an overlap.
	for i := range 20 {
		ch := e.goGet(poll(sid))
		msg := "m" + strconv.Itoa(i)
		waitUntil(t, "GET parked", func() bool { return e.srv.Parked(sid) })
		if err := e.session(sid).Send(engineio.NewTextMessage([]byte(msg))); err != nil {
			t.Fatal(err)
		}
		expectReply(t, "GET", wait(t, ch), 200, "4"+msg)
	}
}

func TestPollingOverlappingGet(t *testing.T) {
	// Node answers 400 to the second GET, closes the session ("transport
	// error") and sends the close packet to the parked one. Which of the two
	// is parked is the network's choice: one of each, whatever the order.
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	a, b := e.goGet(poll(sid)), e.goGet(poll(sid))
	ra, rb := wait(t, a), wait(t, b)
	if ra.status == 400 {
		ra, rb = rb, ra
	}
	expectReply(t, "parked GET", ra, 200, "1")
	expectReply(t, "overlapping GET", rb, 400, "") // as Node: no body
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	expectReply(t, "GET after", e.get(poll(sid)), 400, unknownSID)
}

func TestPollingOverlappingPost(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	parked := e.park(sid)
	first := e.rawRequest("POST /engine.io/?"+poll(sid)+" HTTP/1.1\nHost: x\nContent-Type: text/plain;charset=UTF-8\nContent-Length: 10\n", "4par")
	waitUntil(t, "POST reading its body", func() bool { return e.srv.Posting(sid) })
	expectReply(t, "overlapping POST", e.post(poll(sid), "4b"), 400, "")
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	expectReply(t, "parked GET", wait(t, parked), 200, "1")
	// The first POST is cut. Node destroys its connection without an
	// answer; herald answers 400 and closes the connection.
	if r := readRaw(t, first, "POST"); r.status != 400 {
		t.Errorf("first POST: %v, want 400", r)
	}
	if h := e.rec(sid).history(); len(h) != 1 {
		t.Errorf("handler calls %v, want the close only", h)
	}
}

func TestPollingClientClose(t *testing.T) {
	t.Run("GET parked", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		ch := e.park(sid)
		expectReply(t, "POST close", e.post(poll(sid), "1"), 200, "ok")
		expectReply(t, "parked GET", wait(t, ch), 200, "6") // Node's noop
		e.rec(sid).expectClose(t, engineio.ReasonTransportClose)
		expectReply(t, "GET after", e.get(poll(sid)), 400, unknownSID)
	})
	t.Run("no GET", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		expectReply(t, "POST", e.post(poll(sid), "4before\x1e1\x1e4after"), 200, "ok")
		e.rec(sid).expectClose(t, engineio.ReasonTransportClose)
		if h := e.rec(sid).history(); len(h) != 2 || h[0] != (call{data: "before"}) {
			t.Errorf("handler calls %v, want before and the close", h)
		}
		expectReply(t, "GET after", e.get(poll(sid)), 400, unknownSID)
		expectReply(t, "POST after", e.post(poll(sid), "4x"), 400, unknownSID)
	})
}

func TestPollingParseError(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		delivered []call
	}{
		{"unknown type", "abc", nil},
		{"empty body", "", nil},
		{"empty packet", "4a\x1e\x1e4b", []call{{data: "a"}}},
		{"after good packets", "4a\x1e4b\x1exyz\x1e4c", []call{{data: "a"}, {data: "b"}}},
		{"type past noop", "7", nil},
		// Node's Buffer.from(s, "base64") skips what is not base64;
		// herald refuses it.
		{"bad base64", "b!!!", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newQuietEnv(t, engineio.Config{})
			sid := e.handshake()
			// As Node: the POST is answered "ok", the session closed.
			expectReply(t, "POST", e.post(poll(sid), tc.body), 200, "ok")
			e.rec(sid).expectClose(t, engineio.ReasonParseError)
			h := e.rec(sid).history()
			if len(h) != len(tc.delivered)+1 {
				t.Fatalf("handler calls %v, want %v and the close", h, tc.delivered)
			}
			for i, c := range tc.delivered {
				if h[i] != c {
					t.Errorf("call %d: %v, want %v", i, h[i], c)
				}
			}
			expectReply(t, "GET after", e.get(poll(sid)), 400, unknownSID)
		})
	}
}

func TestPollingProtocolErrors(t *testing.T) {
	t.Run("ping from the client", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		expectReply(t, "POST", e.post(poll(sid), "2"), 200, "ok")
		e.rec(sid).expectClose(t, engineio.ReasonTransportError) // "invalid heartbeat direction"
	})
	t.Run("ignored packets", func(t *testing.T) {
		// open, noop, upgrade and a pong that was not asked for do
		// nothing, as in Node.
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		expectReply(t, "POST", e.post(poll(sid), "0\x1e6\x1e5\x1e3\x1e4x"), 200, "ok")
		if c := e.rec(sid).waitMessage(t); c != (call{data: "x"}) {
			t.Errorf("handler got %v", c)
		}
		expectReply(t, "GET", e.get(poll(sid)), 200, "4x")
	})
	t.Run("binary content type", func(t *testing.T) {
		// application/octet-stream bodies are protocol v3's.
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		r := e.mustDo(http.MethodPost, poll(sid), strings.NewReader("4x"), http.Header{"Content-Type": {"application/octet-stream"}})
		expectReply(t, "POST", r, 400, "")
		e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	})
	t.Run("premature end of a parked GET", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan reply, 1)
		go func() { done <- e.do(ctx, http.MethodGet, poll(sid), nil, nil) }()
		waitUntil(t, "GET parked", func() bool { return e.srv.Parked(sid) })
		cancel()
		if r := wait2(t, done); !errors.Is(r.err, context.Canceled) {
			t.Errorf("GET: %v", r)
		}
		e.rec(sid).expectClose(t, engineio.ReasonTransportError) // "poll connection closed prematurely"
	})
}

// wait2 is wait for a reply that may be an error.
func wait2(t testing.TB, ch <-chan reply) reply {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(eventually):
		t.Fatalf("no reply within %v", eventually)
		return reply{}
	}
}

func TestPollingMaxPayload(t *testing.T) {
	const max = 100
	tests := []struct {
		name    string
		body    string
		chunked bool
		status  int
	}{
		{"at the bound", "4" + strings.Repeat("x", max-1), false, 200},
		{"past the bound", "4" + strings.Repeat("x", max), false, 413},
		{"chunked, at the bound", "4" + strings.Repeat("x", max-1), true, 200},
		{"chunked, past the bound", "4" + strings.Repeat("x", max), true, 413},
		{"far past the bound", "4" + strings.Repeat("x", 1<<20), false, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, engineio.Config{MaxPayload: max})
			sid := e.handshake()
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // no length: sent chunked
			}
			r := e.mustDo(http.MethodPost, poll(sid), body, http.Header{"Content-Type": {"text/plain;charset=UTF-8"}})
			if r.status != tc.status {
				t.Fatalf("POST of %d bytes: %v, want %d", len(tc.body), r, tc.status)
			}
			if tc.status == 200 {
				if c := e.rec(sid).waitMessage(t); c.data != tc.body[1:] {
					t.Errorf("handler got %d bytes", len(c.data))
				}
				return
			}
			expectReply(t, "POST", r, 413, "")
			// Node answers 413 and goes on; herald closes the session (see
			// the package doc: every request has a bound).
			e.rec(sid).expectClose(t, engineio.ReasonTransportError)
			if h := e.rec(sid).history(); len(h) != 1 {
				t.Errorf("handler calls %v, want the close only", h)
			}
		})
	}
}

func TestPollingMaxPayloadPackets(t *testing.T) {
	e := newQuietEnv(t, engineio.Config{MaxPayloadPackets: 3})
	sid := e.handshake()
	expectReply(t, "POST at the bound", e.post(poll(sid), "4a\x1e4b\x1e4c"), 200, "ok")
	expectReply(t, "POST past the bound", e.post(poll(sid), "4d\x1e4e\x1e4f\x1e4g"), 400, "")
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	var got []string
	for _, c := range e.rec(sid).history() {
		got = append(got, c.String())
	}
	// The packets under the bound were delivered as they were decoded.
	want := `text("a") text("b") text("c") text("d") text("e") text("f") close(transport error)`
	if strings.Join(got, " ") != want {
		t.Errorf("handler calls %s, want %s", strings.Join(got, " "), want)
	}
}

func TestPollingBodyTimeout(t *testing.T) {
	e := newEnv(t, engineio.Config{PollBodyTimeout: 100 * time.Millisecond})
	sid := e.handshake()
	parked := e.park(sid)
	c := e.rawRequest("POST /engine.io/?"+poll(sid)+" HTTP/1.1\nHost: x\nContent-Type: text/plain;charset=UTF-8\nContent-Length: 20\n", "4stalled")
	r := readRaw(t, c, "POST")
	expectReply(t, "stalled POST", r, 400, "")
	if !r.close {
		t.Error("stalled POST: no Connection: close")
	}
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	expectReply(t, "parked GET", wait(t, parked), 200, "1")
	if h := e.rec(sid).history(); len(h) != 1 {
		t.Errorf("handler calls %v, want the close only", h)
	}
}

func TestPollingBodyTimeoutSpansRequests(t *testing.T) {
	// The deadline is the POST's own: a keep-alive connection that served
	// a POST serves the next requests after it has passed.
	e := newEnv(t, engineio.Config{PollBodyTimeout: 50 * time.Millisecond})
	sid := e.handshake()
	for i := range 5 {
		msg := "4m" + strconv.Itoa(i)
		expectReply(t, "POST", e.post(poll(sid), msg), 200, "ok")
		expectReply(t, "GET", e.get(poll(sid)), 200, msg)
		time.Sleep(60 * time.Millisecond) // past the POST's deadline, on the same connections
	}
}

func TestPollingSessionClose(t *testing.T) {
	t.Run("GET parked", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		ch := e.park(sid)
		e.session(sid).Close()
		expectReply(t, "parked GET", wait(t, ch), 200, "1")
		e.rec(sid).expectClose(t, engineio.ReasonForcedClose)
		expectReply(t, "GET after", e.get(poll(sid)), 400, unknownSID)
	})
	t.Run("next GET", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		e.session(sid).Close()
		if e.rec(sid).isClosed() {
			t.Error("closed before the client was told")
		}
		expectReply(t, "next GET", e.get(poll(sid)), 200, "6\x1e1") // as Node
		e.rec(sid).expectClose(t, engineio.ReasonForcedClose)
	})
	t.Run("queued packets first", func(t *testing.T) {
		e := newEnv(t, engineio.Config{})
		sid := e.handshake()
		s := e.session(sid)
		if err := s.Send(engineio.NewTextMessage([]byte("a")), engineio.NewBinaryMessage([]byte{1})); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if err := s.Send(engineio.NewTextMessage([]byte("late"))); !errors.Is(err, engineio.ErrClosed) {
			t.Errorf("Send after Close: %v, want ErrClosed", err)
		}
		s.Close() // idempotent
		expectReply(t, "GET", e.get(poll(sid)), 200, "4a\x1ebAQ==")
		expectReply(t, "next GET", e.get(poll(sid)), 200, "6\x1e1")
		e.rec(sid).expectClose(t, engineio.ReasonForcedClose)
		expectReply(t, "GET after", e.get(poll(sid)), 400, unknownSID)
	})
}

func TestPollingSlowConsumer(t *testing.T) {
	// A client that never polls: what waits for it is bounded.
	e := newQuietEnv(t, engineio.Config{MaxBufferedBytes: 1000})
	sid := e.handshake()
	s := e.session(sid)
	msg := engineio.NewTextMessage(bytes.Repeat([]byte("x"), 400))
	for range 2 {
		if err := s.Send(msg); err != nil {
			t.Fatalf("Send under the bound: %v", err)
		}
	}
	if err := s.Send(msg); !errors.Is(err, engineio.ErrSlowConsumer) {
		t.Fatalf("Send past the bound: %v, want ErrSlowConsumer", err)
	}
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	if n := e.srv.SlowConsumers(); n != 1 {
		t.Errorf("SlowConsumers = %d, want 1", n)
	}
	if err := s.Send(msg); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send after: %v, want ErrClosed", err)
	}
	expectReply(t, "GET after", e.get(poll(sid)), 400, unknownSID)

	// A client that polls gets everything.
	sid = e.handshake()
	for range 10 {
		if err := e.session(sid).Send(msg); err != nil {
			t.Fatal(err)
		}
		expectReply(t, "GET", e.get(poll(sid)), 200, "4"+strings.Repeat("x", 400))
	}
	if n := e.srv.SlowConsumers(); n != 1 {
		t.Errorf("SlowConsumers = %d, want 1", n)
	}
}

func TestPollingCompression(t *testing.T) {
	big := strings.Repeat("héllo wörld ", 100) // > 1024 bytes
	small := "short"
	decode := func(t *testing.T, enc, body string) string {
		t.Helper()
		var zr io.Reader
		var err error
		switch enc {
		case "gzip":
			zr, err = gzip.NewReader(strings.NewReader(body))
		case "deflate":
			zr, err = zlib.NewReader(strings.NewReader(body)) // Node's createDeflate: zlib
		default:
			return body
		}
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", enc, err)
		}
		return string(b)
	}
	tests := []struct {
		name           string
		threshold      int
		msg            string
		acceptEncoding string
		want           string // Content-Encoding
	}{
		{"gzip", 0, big, "gzip", "gzip"},
		{"deflate", 0, big, "deflate", "deflate"},
		{"browser", 0, big, "gzip, deflate, br, zstd", "gzip"},
		{"none accepted", 0, big, "", ""},
		{"identity", 0, big, "identity", ""},
		{"br only", 0, big, "br", ""},
		{"below the threshold", 0, small, "gzip", ""},
		{"threshold set", 4, small, "gzip", "gzip"},
		{"disabled", -1, big, "gzip", ""},
		// As Node's accepts/negotiator: quality first, then the order of
		// the header, then gzip before deflate.
		{"header order", 0, big, "deflate, gzip", "deflate"},
		{"quality", 0, big, "gzip;q=0.5, deflate", "deflate"},
		{"quality zero", 0, big, "gzip;q=0, deflate", "deflate"},
		{"quality zero alone", 0, big, "gzip;q=0", ""},
		{"any", 0, big, "*", "gzip"},
		{"any after deflate", 0, big, "deflate, *", "deflate"},
		{"any with gzip refused", 0, big, "gzip;q=0, *", "deflate"},
		{"case", 0, big, "GZIP", "gzip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newQuietEnv(t, engineio.Config{CompressionThreshold: tc.threshold})
			sid := e.handshake()
			if err := e.session(sid).Send(engineio.NewTextMessage([]byte(tc.msg))); err != nil {
				t.Fatal(err)
			}
			var h http.Header
			if tc.acceptEncoding != "" {
				h = http.Header{"Accept-Encoding": {tc.acceptEncoding}}
			}
			r := e.mustDo(http.MethodGet, poll(sid), nil, h)
			if r.status != 200 {
				t.Fatalf("GET: %v", r)
			}
			if got := r.header.Get("Content-Encoding"); got != tc.want {
				t.Errorf("Content-Encoding %q, want %q", got, tc.want)
			}
			if got := decode(t, r.header.Get("Content-Encoding"), r.body); got != "4"+tc.msg {
				t.Errorf("body decodes to %d bytes, want %d", len(got), 1+len(tc.msg))
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}
