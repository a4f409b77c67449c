package eio_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/bench/internal/eio"
)

// answer is what the fake long-polling server answers to one request.
type answer struct {
	status int // 0 = 200
	body   string
}

// pollServer is a fake Engine.IO long-polling endpoint with one session,
// "s1": the test scripts the answers to its GETs and reads its POSTs.
type pollServer struct {
	URL   string
	open  answer      // the handshake GET's answer
	gets  chan answer // the session's GETs take these, in order; they wait for one
	posts chan string // the bodies of the session's POSTs
	conns atomic.Int64
	hosts chan string // the remote host of every handshake
	stop  chan struct{}
}

const pollOpen = `0{"sid":"s1","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

func newPollServer(t *testing.T, open answer) *pollServer {
	t.Helper()
	s := &pollServer{open: open, gets: make(chan answer, 100), posts: make(chan string, 100), hosts: make(chan string, 100), stop: make(chan struct{})}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	ts.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	ts.Start()
	s.URL = ts.URL
	t.Cleanup(func() {
		close(s.stop) // parked GETs return
		ts.Close()
	})
	return s
}

func (s *pollServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.URL.Path != "/socket.io/" || q.Get("EIO") != "4" || q.Get("transport") != "polling" {
		http.Error(w, "bad url "+r.URL.String(), http.StatusBadRequest)
		return
	}
	reply := func(a answer) {
		w.WriteHeader(max(a.status, http.StatusOK))
		_, _ = io.WriteString(w, a.body)
	}
	switch sid := q.Get("sid"); {
	case sid == "" && r.Method == http.MethodGet:
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		select {
		case s.hosts <- host:
		default:
		}
		reply(s.open)
	case sid != "s1":
		reply(answer{http.StatusBadRequest, `{"code":1,"message":"Session ID unknown"}`})
	case r.Method == http.MethodPost:
		if ct := r.Header.Get("Content-Type"); ct != "text/plain;charset=UTF-8" {
			reply(answer{http.StatusBadRequest, "content type " + ct})
			return
		}
		b, _ := io.ReadAll(r.Body)
		s.posts <- string(b)
		reply(answer{body: "ok"})
	default:
		select {
		case a := <-s.gets:
			reply(a)
		case <-r.Context().Done():
		case <-s.stop:
		}
	}
}

// expectPost reads the next POST's body.
func (s *pollServer) expectPost(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-s.posts:
		if got != want {
			t.Errorf("POST %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("no POST %q within 10s", want)
	}
}

func pollDial(t *testing.T, url string, sources ...net.IP) *eio.PollDialer {
	t.Helper()
	d, err := eio.NewPollDialer(eio.DialerConfig{URL: url, Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.CloseIdleConnections)
	return d
}

// next is Next with a check of the kind.
func next(t *testing.T, c *eio.PollConn, kind eio.Kind) eio.Packet {
	t.Helper()
	p, err := c.Next()
	if err != nil || p.Kind != kind {
		t.Fatalf("Next = %v %q, %v; want %v", p.Kind, p.Data, err, kind)
	}
	return p
}

func TestPollConnect(t *testing.T) {
	s := newPollServer(t, answer{body: pollOpen})
	pad := strings.Repeat("x", 100_000) // larger than any pooled buffer
	s.gets <- answer{body: "2"}         // a ping during the handshake is answered
	s.gets <- answer{body: "40{\"sid\":\"x\"}\x1e42[\"authenticated\",{}]\x1e42[\"bench\",{\"seq\":1,\"sentAt\":2,\"pad\":\"" + pad + "\"}]"}
	c, err := pollDial(t, s.URL).Connect(context.Background(), 0, eio.ConnectPacket("tok"))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer c.CloseNow()
	defer c.Release()
	s.expectPost(t, `40{"token":"tok"}`)
	s.expectPost(t, "3")

	// What came with the CONNECT is kept.
	if p := next(t, c, eio.Event); !strings.HasPrefix(string(p.Data), `["authenticated"`) {
		t.Errorf("first event %q, want authenticated", p.Data)
	}
	p := next(t, c, eio.Event)
	_, args, _ := eio.SplitEvent(p.Data)
	if seq, sentAt, err := eio.BenchFields(args); seq != 1 || sentAt != 2 || err != nil {
		t.Errorf("BenchFields = %d, %d, %v", seq, sentAt, err)
	}

	s.gets <- answer{body: "4x\x1e2\x1e42[\"bench\",{\"seq\":2,\"sentAt\":3}]"}
	if p, err := c.Next(); !errors.Is(err, eio.ErrMalformed) {
		t.Errorf("Next = %v, %v; want ErrMalformed", p.Kind, err)
	}
	next(t, c, eio.Ping)
	if err := c.Pong(); err != nil {
		t.Fatal(err)
	}
	s.expectPost(t, "3")
	if p := next(t, c, eio.Event); !strings.Contains(string(p.Data), `"seq":2`) {
		t.Errorf("event %q, want seq 2", p.Data)
	}

	// The server's close packet ends the session.
	s.gets <- answer{body: "6\x1e1"}
	next(t, c, eio.Noop)
	for range 2 {
		if _, err := c.Next(); !errors.Is(err, eio.ErrClosed) {
			t.Errorf("Next after the close packet = %v, want ErrClosed", err)
		}
	}
	// Every request went over one kept-alive connection.
	if n := s.conns.Load(); n != 1 {
		t.Errorf("%d TCP connections, want 1 (keep-alive)", n)
	}
}

func TestPollConnectRefused(t *testing.T) {
	s := newPollServer(t, answer{body: pollOpen})
	s.gets <- answer{body: `44{"message":"unauthorized","data":{"code":"token_invalid"}}`}
	_, err := pollDial(t, s.URL).Connect(context.Background(), 0, eio.ConnectPacket("bad"))
	var refused *eio.RefusedError
	if eio.Aborted(err) || !errors.As(err, &refused) || refused.Message != "unauthorized" || refused.Code != "token_invalid" {
		t.Fatalf("Connect = %v, want RefusedError unauthorized/token_invalid", err)
	}
	s.expectPost(t, `40{"token":"bad"}`)
	s.expectPost(t, "1") // the session is closed
}

func TestPollConnectFails(t *testing.T) {
	tests := []struct {
		name  string
		open  answer
		gets  []answer
		stage string
		want  error  // nil: any
		text  string // in the error
	}{
		{"handshake refused", answer{http.StatusForbidden, "no"}, nil, eio.StageDial, nil, "HTTP 403: no"},
		{"no open", answer{body: `40{"sid":"x"}`}, nil, eio.StageOpen, eio.ErrUnexpected, ""},
		{"bad open", answer{body: `0`}, nil, eio.StageOpen, eio.ErrMalformed, ""},
		{"open without sid", answer{body: `0{"upgrades":[]}`}, nil, eio.StageOpen, eio.ErrMalformed, "sid"},
		{"event before connect", answer{body: pollOpen}, []answer{{body: `42["x"]`}}, eio.StageConnect, eio.ErrUnexpected, ""},
		{"closed before connect", answer{body: pollOpen}, []answer{{body: `1`}}, eio.StageConnect, eio.ErrClosed, ""},
		{"poll refused", answer{body: pollOpen}, []answer{{http.StatusBadRequest, `{"code":3}`}}, eio.StageConnect, nil, "GET: HTTP 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newPollServer(t, tt.open)
			for _, a := range tt.gets {
				s.gets <- a
			}
			_, err := pollDial(t, s.URL).Connect(context.Background(), 0, eio.ConnectPacket("t"))
			var e *eio.Error
			if !errors.As(err, &e) || e.Stage != tt.stage || tt.want != nil && !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Connect = %v; want stage %s, %v, %q", err, tt.stage, tt.want, tt.text)
			}
		})
	}
}

// A server that never answers the poll: ctx's deadline and its
// cancellation both end the handshake.
func TestPollConnectContext(t *testing.T) {
	s := newPollServer(t, answer{body: pollOpen})
	d := pollDial(t, s.URL)

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

// SendClose posts the close packet while another goroutine polls; CloseNow
// cuts a parked poll at once.
func TestPollSendCloseAndCloseNow(t *testing.T) {
	s := newPollServer(t, answer{body: pollOpen})
	d := pollDial(t, s.URL)
	connect := func() *eio.PollConn {
		t.Helper()
		s.gets <- answer{body: `40{"sid":"x"}`}
		c, err := d.Connect(context.Background(), 0, eio.ConnectPacket("t"))
		if err != nil {
			t.Fatal(err)
		}
		s.expectPost(t, `40{"token":"t"}`)
		return c
	}
	read := func(c *eio.PollConn) chan error {
		done := make(chan error, 1)
		go func() {
			defer c.Release()
			for {
				if _, err := c.Next(); err != nil {
					done <- err
					return
				}
			}
		}()
		return done
	}

	c := connect()
	done := read(c)
	if err := c.SendClose(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	s.expectPost(t, "1")
	// As Node and herald do: the parked poll gets a noop, the next one a 400.
	s.gets <- answer{body: "6"}
	s.gets <- answer{http.StatusBadRequest, `{"code":1,"message":"Session ID unknown"}`}
	var he *eio.HTTPError
	if err := <-done; !errors.As(err, &he) || he.Status != http.StatusBadRequest || he.Method != http.MethodGet {
		t.Errorf("reader got %v, want the GET's HTTP 400", err)
	}
	c.CloseNow()

	c = connect()
	done = read(c)
	start := time.Now()
	c.CloseNow()
	c.CloseNow() // twice is fine
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("reader got %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the reader ended %v after CloseNow", took)
	}
	if err := c.SendClose(time.Now().Add(time.Second)); !errors.Is(err, context.Canceled) {
		t.Errorf("SendClose after CloseNow = %v, want context.Canceled", err)
	}
}

func TestPollSources(t *testing.T) {
	s := newPollServer(t, answer{body: pollOpen})
	d := pollDial(t, s.URL, net.ParseIP("127.0.0.2"), net.ParseIP("127.0.0.3"))
	for i, want := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2"} {
		s.gets <- answer{body: `40{"sid":"x"}`}
		c, err := d.Connect(context.Background(), i, eio.ConnectPacket("t"))
		if err != nil {
			t.Fatalf("Connect %d: %v", i, err)
		}
		s.expectPost(t, `40{"token":"t"}`)
		if got := <-s.hosts; got != want {
			t.Errorf("connection %d came from %s, want %s", i, got, want)
		}
		c.CloseNow()
	}
}

func TestNewPollDialer(t *testing.T) {
	for _, tt := range []struct{ in, path, want string }{
		{"http://127.0.0.1:3000", "", "http://127.0.0.1:3000/socket.io/?EIO=4&transport=polling"},
		{"wss://h/x?y=1#f", "", "https://h/socket.io/?EIO=4&transport=polling"},
		{"ws://h:1", "/rt/", "http://h:1/rt/?EIO=4&transport=polling"},
	} {
		d, err := eio.NewPollDialer(eio.DialerConfig{URL: tt.in, Path: tt.path})
		if err != nil || d.URL() != tt.want {
			t.Errorf("NewPollDialer(%q).URL() = %v, %v; want %q", tt.in, d, err, tt.want)
		}
	}
	for _, in := range []string{"", "127.0.0.1:3000", "ftp://h", "http://", "http://h:1/%zz"} {
		if _, err := eio.NewPollDialer(eio.DialerConfig{URL: in}); err == nil {
			t.Errorf("NewPollDialer(%q) did not fail", in)
		}
	}
}
