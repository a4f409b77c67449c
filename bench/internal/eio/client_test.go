package eio_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/bench/internal/eio"
)

const openPacket = `0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

// fakeServer serves the Engine.IO WebSocket endpoint with script, which
// plays the server's side of one connection. The test waits for every
// script to return.
func fakeServer(t *testing.T, script func(t *testing.T, ws *websocket.Conn, r *http.Request)) string {
	t.Helper()
	// Scripts run on hijacked connections, which httptest's Close does not
	// wait for: each registers (under mu, before the upgrade, while Close
	// still waits for the request) a channel it closes when it returns.
	var (
		mu      sync.Mutex
		running []chan struct{}
	)
	up := websocket.Upgrader{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/socket.io/" || r.URL.Query().Get("EIO") != "4" || r.URL.Query().Get("transport") != "websocket" {
			http.Error(w, "bad url "+r.URL.String(), http.StatusBadRequest)
			return
		}
		done := make(chan struct{})
		defer close(done)
		mu.Lock()
		running = append(running, done)
		mu.Unlock()
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		script(t, ws, r)
	}))
	t.Cleanup(func() {
		ts.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, done := range running {
			<-done
		}
	})
	return ts.URL
}

func send(t *testing.T, ws *websocket.Conn, s string) {
	t.Helper()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Errorf("server write: %v", err)
	}
}

func expect(t *testing.T, ws *websocket.Conn, want string) {
	t.Helper()
	_, b, err := ws.ReadMessage()
	if err != nil || string(b) != want {
		t.Errorf("server read %q, %v; want %q", b, err, want)
	}
}

// untilClosed reads until the client closes; gorilla answers its close frame.
func untilClosed(ws *websocket.Conn) {
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
	}
}

func dial(t *testing.T, url string, sources ...net.IP) *eio.Dialer {
	t.Helper()
	d, err := eio.NewDialer(eio.DialerConfig{URL: url, Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConnect(t *testing.T) {
	pad := strings.Repeat("x", 100_000) // larger than any pooled buffer
	url := fakeServer(t, func(t *testing.T, ws *websocket.Conn, _ *http.Request) {
		send(t, ws, openPacket)
		expect(t, ws, `40{"token":"tok"}`)
		send(t, ws, "2") // a ping during the handshake is answered
		expect(t, ws, "3")
		send(t, ws, `40{"sid":"x"}`)
		send(t, ws, `42["bench",{"seq":1,"sentAt":2,"pad":"`+pad+`"}]`)
		_ = ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}) // skipped
		send(t, ws, "4x")                                             // malformed, reported
		send(t, ws, "2")
		expect(t, ws, "3")
		send(t, ws, `42["bench",{"seq":2,"sentAt":3}]`)
		untilClosed(ws)
	})
	c, err := dial(t, url).Connect(context.Background(), 0, eio.ConnectPacket("tok"))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	p, err := c.Next()
	if err != nil || p.Kind != eio.Event {
		t.Fatalf("Next = %v, %v", p.Kind, err)
	}
	_, args, _ := eio.SplitEvent(p.Data)
	if seq, sentAt, err := eio.BenchFields(args); seq != 1 || sentAt != 2 || err != nil {
		t.Errorf("BenchFields = %d, %d, %v", seq, sentAt, err)
	}
	if p, err := c.Next(); !errors.Is(err, eio.ErrMalformed) {
		t.Errorf("Next = %v, %v; want ErrMalformed", p.Kind, err)
	}
	if p, err := c.Next(); p.Kind != eio.Ping || err != nil {
		t.Errorf("Next = %v, %v; want ping", p.Kind, err)
	}
	if err := c.Pong(); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Next(); p.Kind != eio.Event || err != nil || !strings.Contains(string(p.Data), `"seq":2`) {
		t.Errorf("Next = %v %q, %v", p.Kind, p.Data, err)
	}
	if !c.Close(5 * time.Second) {
		t.Error("Close: the server's close frame did not arrive")
	}
}

func TestConnectRefused(t *testing.T) {
	url := fakeServer(t, func(t *testing.T, ws *websocket.Conn, _ *http.Request) {
		send(t, ws, openPacket)
		expect(t, ws, `40{"token":"bad"}`)
		send(t, ws, `44{"message":"unauthorized","data":{"code":"token_invalid"}}`)
		untilClosed(ws)
	})
	_, err := dial(t, url).Connect(context.Background(), 0, eio.ConnectPacket("bad"))
	var refused *eio.RefusedError
	if eio.Aborted(err) || !errors.As(err, &refused) || refused.Message != "unauthorized" || refused.Code != "token_invalid" {
		t.Fatalf("Connect = %v, want RefusedError unauthorized/token_invalid", err)
	}
	if got := err.Error(); got != "eio: connect_error: unauthorized (token_invalid)" {
		t.Errorf("Error() = %q", got)
	}
}

func TestConnectFails(t *testing.T) {
	tests := []struct {
		name   string
		script func(t *testing.T, ws *websocket.Conn)
		stage  string
		want   error // nil: any
	}{
		{"no open", func(t *testing.T, ws *websocket.Conn) { send(t, ws, `40{"sid":"x"}`) }, eio.StageOpen, eio.ErrUnexpected},
		{"bad open", func(t *testing.T, ws *websocket.Conn) { send(t, ws, `0`) }, eio.StageOpen, eio.ErrMalformed},
		{"closed before open", func(t *testing.T, ws *websocket.Conn) {}, eio.StageOpen, nil},
		{"closed before connect", func(t *testing.T, ws *websocket.Conn) {
			send(t, ws, openPacket)
			expect(t, ws, `40{"token":"t"}`)
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
		}, eio.StageConnect, nil},
		{"event before connect", func(t *testing.T, ws *websocket.Conn) {
			send(t, ws, openPacket)
			expect(t, ws, `40{"token":"t"}`)
			send(t, ws, `42["x"]`)
		}, eio.StageConnect, eio.ErrUnexpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := fakeServer(t, func(t *testing.T, ws *websocket.Conn, _ *http.Request) { tt.script(t, ws) })
			_, err := dial(t, url).Connect(context.Background(), 0, eio.ConnectPacket("t"))
			var e *eio.Error
			if !errors.As(err, &e) || e.Stage != tt.stage || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Connect = %v; want stage %s, %v", err, tt.stage, tt.want)
			}
		})
	}
}

func TestConnectHTTPError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer ts.Close()
	_, err := dial(t, ts.URL).Connect(context.Background(), 0, eio.ConnectPacket("t"))
	var e *eio.Error
	if !errors.As(err, &e) || e.Stage != eio.StageDial || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("Connect = %v, want a dial error with HTTP 403", err)
	}
}

// A server that never answers: ctx's deadline and its cancellation both end
// the handshake.
func TestConnectContext(t *testing.T) {
	release := make(chan struct{})
	url := fakeServer(t, func(t *testing.T, ws *websocket.Conn, _ *http.Request) {
		send(t, ws, openPacket)
		<-release
	})
	defer close(release)
	d := dial(t, url)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := d.Connect(ctx, 0, eio.ConnectPacket("t")); !errors.Is(err, context.DeadlineExceeded) || !eio.Aborted(err) {
		t.Errorf("Connect after the deadline = %v", err)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if _, err := d.Connect(ctx, 0, eio.ConnectPacket("t")); !errors.Is(err, context.Canceled) || !eio.Aborted(err) {
		t.Errorf("Connect after cancel = %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Connect returned %v after cancel", took)
	}
}

func TestSources(t *testing.T) {
	seen := make(chan string, 4)
	url := fakeServer(t, func(t *testing.T, ws *websocket.Conn, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		seen <- host
		send(t, ws, openPacket)
		expect(t, ws, `40{"token":"t"}`)
		send(t, ws, `40{"sid":"x"}`)
		untilClosed(ws)
	})
	d := dial(t, url, net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3"))
	for i, want := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2"} {
		c, err := d.Connect(context.Background(), i, eio.ConnectPacket("t"))
		if err != nil {
			t.Fatalf("Connect %d: %v", i, err)
		}
		if got := <-seen; got != want {
			t.Errorf("connection %d came from %s, want %s", i, got, want)
		}
		c.Close(5 * time.Second)
	}
}

// SendClose and CloseNow end a connection that another goroutine reads.
func TestSendClose(t *testing.T) {
	url := fakeServer(t, func(t *testing.T, ws *websocket.Conn, _ *http.Request) {
		send(t, ws, openPacket)
		expect(t, ws, `40{"token":"t"}`)
		send(t, ws, `40{"sid":"x"}`)
		untilClosed(ws)
	})
	c, err := dial(t, url).Connect(context.Background(), 0, eio.ConnectPacket("t"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := c.Next()
		c.Release()
		done <- err
	}()
	if err := c.SendClose(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !eio.IsNormalClose(err) {
		t.Errorf("reader got %v, want the normal close", err)
	}
	c.CloseNow()
	c.CloseNow() // twice is fine
}

func TestNewDialer(t *testing.T) {
	for _, tt := range []struct{ in, path, want string }{
		{"http://127.0.0.1:3000", "", "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"},
		{"https://h/x?y=1#f", "", "wss://h/socket.io/?EIO=4&transport=websocket"},
		{"ws://h:1", "/rt/", "ws://h:1/rt/?EIO=4&transport=websocket"},
	} {
		d, err := eio.NewDialer(eio.DialerConfig{URL: tt.in, Path: tt.path})
		if err != nil || d.URL() != tt.want {
			t.Errorf("NewDialer(%q).URL() = %v, %v; want %q", tt.in, d, err, tt.want)
		}
	}
	for _, in := range []string{"", "127.0.0.1:3000", "ftp://h", "http://", "http://h:1/%zz"} {
		if _, err := eio.NewDialer(eio.DialerConfig{URL: in}); err == nil {
			t.Errorf("NewDialer(%q) did not fail", in)
		}
	}
}

func TestConnectPacket(t *testing.T) {
	if got := string(eio.ConnectPacket(`a"b`)); got != `40{"token":"a\"b"}` {
		t.Errorf("ConnectPacket = %s", got)
	}
}
