package engineio_test

// The tests' side of the wire: a Handler that records what it is told and
// checks the Handler contract, a server on loopback, and a raw Engine.IO
// client made of plain HTTP requests and gorilla/websocket frames.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/socketio/engineio"
)

// eventually bounds every wait for something that must happen: a test that
// would hang fails instead. It is never a timing assertion.
const eventually = 10 * time.Second

// call is one call a Handler received.
type call struct {
	data   string
	binary bool
	reason string // OnClose's; empty for OnMessage
}

func (c call) String() string {
	switch {
	case c.reason != "":
		return "close(" + c.reason + ")"
	case c.binary:
		return fmt.Sprintf("binary(% x)", c.data)
	}
	return fmt.Sprintf("text(%q)", c.data)
}

// recorder is the Handler of every test session. It records the calls,
// echoes messages back unless quiet, and notes any breach of the Handler
// contract (overlapping calls, a call after OnClose, OnClose twice), which
// the env checks once the Server has closed.
type recorder struct {
	quiet bool

	busy     atomic.Int32
	messages chan call     // every OnMessage, in order
	closed   chan struct{} // closed by the first OnClose

	mu       sync.Mutex
	calls    []call
	reason   string
	breaches []string
	sendErrs []error
}

func newRecorder(quiet bool) *recorder {
	return &recorder{quiet: quiet, messages: make(chan call, 100_000), closed: make(chan struct{})}
}

func (r *recorder) enter(name string) {
	if n := r.busy.Add(1); n != 1 {
		r.breach("%s overlaps another call (%d running)", name, n)
	}
}

func (r *recorder) breach(format string, args ...any) {
	r.mu.Lock()
	r.breaches = append(r.breaches, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) OnMessage(s *engineio.Session, data []byte, binary bool) {
	r.enter("OnMessage")
	defer r.busy.Add(-1)
	c := call{data: string(data), binary: binary}
	r.mu.Lock()
	if r.reason != "" {
		r.breaches = append(r.breaches, "OnMessage after OnClose: "+c.String())
	}
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	select {
	case r.messages <- c:
	default:
		r.breach("too many messages for the test")
	}
	if r.quiet {
		return
	}
	m := engineio.NewTextMessage(data)
	if binary {
		m = engineio.NewBinaryMessage(data)
	}
	if err := s.Send(m); err != nil {
		r.mu.Lock()
		r.sendErrs = append(r.sendErrs, err)
		r.mu.Unlock()
	}
}

func (r *recorder) OnClose(s *engineio.Session, reason string) {
	r.enter("OnClose")
	defer r.busy.Add(-1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if reason == "" {
		r.breaches = append(r.breaches, "OnClose with an empty reason")
		reason = "(empty)"
	}
	if r.reason != "" {
		r.breaches = append(r.breaches, fmt.Sprintf("OnClose(%q) after OnClose(%q)", reason, r.reason))
		return
	}
	r.reason = reason
	r.calls = append(r.calls, call{reason: reason})
	close(r.closed)
}

// waitMessage returns the next message the handler received.
func (r *recorder) waitMessage(t testing.TB) call {
	t.Helper()
	select {
	case c := <-r.messages:
		return c
	case <-time.After(eventually):
		t.Fatalf("no message within %v", eventually)
		return call{}
	}
}

// waitClose waits for OnClose and returns its reason.
func (r *recorder) waitClose(t testing.TB) string {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(eventually):
		t.Fatalf("OnClose not called within %v", eventually)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

// expectClose waits for OnClose with reason.
func (r *recorder) expectClose(t testing.TB, reason string) {
	t.Helper()
	if got := r.waitClose(t); got != reason {
		t.Errorf("OnClose reason %q, want %q", got, reason)
	}
}

// isClosed reports whether OnClose has been called.
func (r *recorder) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// history returns the calls so far.
func (r *recorder) history() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// env is a Server on loopback with a recorder per session.
type env struct {
	t     *testing.T
	srv   *engineio.Server
	url   string // http://127.0.0.1:P/engine.io/
	wsURL string
	hc    *http.Client

	mu       sync.Mutex
	recs     map[string]*recorder
	sessions map[string]*engineio.Session
	order    []string // sids in the order of OnSession
}

// newEnv serves cfg (its OnSession is replaced) at /engine.io/ with echoing
// recorders; newQuietEnv's recorders do not echo. The cleanup closes the
// Server and checks every recorder: OnClose once and last, no overlap.
func newEnv(t *testing.T, cfg engineio.Config) *env { return startEnv(t, cfg, false) }

func newQuietEnv(t *testing.T, cfg engineio.Config) *env { return startEnv(t, cfg, true) }

func startEnv(t *testing.T, cfg engineio.Config, quiet bool) *env {
	t.Helper()
	e := &env{t: t, recs: map[string]*recorder{}, sessions: map[string]*engineio.Session{}}
	cfg.OnSession = func(s *engineio.Session) engineio.Handler {
		r := newRecorder(quiet)
		e.mu.Lock()
		e.recs[s.ID()] = r
		e.sessions[s.ID()] = s
		e.order = append(e.order, s.ID())
		e.mu.Unlock()
		return r
	}
	srv, err := engineio.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	hs := httptest.NewServer(mux)
	// Compression is asked for explicitly where a test wants it: the
	// Transport would otherwise ask for gzip and hide Content-Encoding.
	tr := &http.Transport{DisableCompression: true}
	e.hc = &http.Client{Transport: tr}
	e.url = hs.URL + "/engine.io/"
	e.wsURL = "ws" + strings.TrimPrefix(hs.URL, "http") + "/engine.io/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventually)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
		hs.Close()
		tr.CloseIdleConnections()
		e.checkContract()
	})
	return e
}

// checkContract reports every breach of the Handler contract; once the
// Server has closed, every session's OnClose has been called.
func (e *env) checkContract() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, sid := range e.order {
		r := e.recs[sid]
		r.mu.Lock()
		for _, b := range r.breaches {
			e.t.Errorf("session %s: %s", sid, b)
		}
		if r.reason == "" {
			e.t.Errorf("session %s: OnClose was never called (calls %v)", sid, r.calls)
		}
		r.mu.Unlock()
	}
}

// rec returns the recorder of the session sid.
func (e *env) rec(sid string) *recorder {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.recs[sid]
	if r == nil {
		e.t.Fatalf("no session %q", sid)
	}
	return r
}

// session returns the Session sid.
func (e *env) session(sid string) *engineio.Session {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.sessions[sid]
	if s == nil {
		e.t.Fatalf("no session %q", sid)
	}
	return s
}

// reply is an HTTP response, read whole.
type reply struct {
	status int
	body   string
	header http.Header
	close  bool // Connection: close
	err    error
}

func (r reply) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %q", r.status, r.body)
}

// do sends one request to the server with query; it may run on any
// goroutine (errors are in the reply).
func (e *env) do(ctx context.Context, method, query string, body io.Reader, header http.Header) reply {
	req, err := http.NewRequestWithContext(ctx, method, e.url+"?"+query, body)
	if err != nil {
		return reply{err: err}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b), header: resp.Header, close: resp.Close, err: err}
}

func (e *env) mustDo(method, query string, body io.Reader, header http.Header) reply {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	r := e.do(ctx, method, query, body, header)
	if r.err != nil {
		e.t.Fatalf("%s ?%s: %v", method, query, r.err)
	}
	return r
}

func (e *env) get(query string) reply { return e.mustDo(http.MethodGet, query, nil, nil) }

// post sends a payload as engine.io-client does.
func (e *env) post(query, body string) reply {
	e.t.Helper()
	return e.mustDo(http.MethodPost, query, strings.NewReader(body), http.Header{"Content-Type": {"text/plain;charset=UTF-8"}})
}

// goGet sends a GET on a goroutine of its own.
func (e *env) goGet(query string) <-chan reply {
	ch := make(chan reply, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventually)
		defer cancel()
		ch <- e.do(ctx, http.MethodGet, query, nil, nil)
	}()
	return ch
}

// poll returns the query of a long-polling request of the session sid.
func poll(sid string) string { return "EIO=4&transport=polling&sid=" + sid }

// wsQuery returns the query of a WebSocket request of the session sid.
func wsQuery(sid string) string { return "EIO=4&transport=websocket&sid=" + sid }

var openRE = regexp.MustCompile(`^0\{"sid":"([A-Za-z0-9_-]{20})","upgrades":\[("websocket")?\],"pingInterval":\d+,"pingTimeout":\d+,"maxPayload":\d+\}$`)

// open is the open packet's content.
type open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

func parseOpen(t testing.TB, packet string) open {
	t.Helper()
	if !openRE.MatchString(packet) {
		t.Fatalf("open packet %q is not as Node's", packet)
	}
	var o open
	if err := json.Unmarshal([]byte(packet[1:]), &o); err != nil {
		t.Fatalf("open packet %q: %v", packet, err)
	}
	return o
}

// handshake opens a long-polling session and returns its sid.
func (e *env) handshake() string {
	e.t.Helper()
	r := e.get("EIO=4&transport=polling")
	if r.status != http.StatusOK {
		e.t.Fatalf("handshake: %v", r)
	}
	return parseOpen(e.t, r.body).SID
}

// waitUntil waits for cond, checked every millisecond.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, eventually)
		}
		time.Sleep(time.Millisecond)
	}
}

// park sends a GET of the session sid and returns once the server holds it.
func (e *env) park(sid string) <-chan reply {
	e.t.Helper()
	ch := e.goGet(poll(sid))
	waitUntil(e.t, "GET parked", func() bool { return e.srv.Parked(sid) })
	return ch
}

// wait returns the reply of an asynchronous request.
func wait(t testing.TB, ch <-chan reply) reply {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("request: %v", r.err)
		}
		return r
	case <-time.After(eventually):
		t.Fatalf("no reply within %v", eventually)
		return reply{}
	}
}

// expectReply checks a reply's status and body.
func expectReply(t testing.TB, what string, r reply, status int, body string) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("%s: %v", what, r.err)
	}
	if r.status != status || r.body != body {
		t.Errorf("%s: %d %q, want %d %q", what, r.status, r.body, status, body)
	}
}

// errorBody is Node's JSON body of a refused request.
func errorBody(code int, message string) string {
	return fmt.Sprintf(`{"code":%d,"message":%q}`, code, message)
}

// Node's error answers, for requests with a sid that is no longer served.
var (
	unknownSID = errorBody(1, "Session ID unknown")
	badRequest = errorBody(3, "Bad request")
)

// dial opens a WebSocket to the server with query; the connection is
// closed at the test's end.
func (e *env) dial(query string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: eventually}
	c, resp, err := d.Dial(e.wsURL+"?"+query, nil)
	if c != nil {
		e.t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

func (e *env) mustDial(query string) *websocket.Conn {
	e.t.Helper()
	c, _, err := e.dial(query)
	if err != nil {
		e.t.Fatalf("dial ?%s: %v", query, err)
	}
	return c
}

// wsHandshake opens a WebSocket session and returns it and its sid.
func (e *env) wsHandshake() (*websocket.Conn, string) {
	e.t.Helper()
	c := e.mustDial("EIO=4&transport=websocket")
	op, m := readWS(e.t, c)
	if op != websocket.TextMessage {
		e.t.Fatalf("open packet in a frame of type %d", op)
	}
	return c, parseOpen(e.t, m).SID
}

// readWS reads one message.
func readWS(t testing.TB, c *websocket.Conn) (op int, data string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(eventually))
	op, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("WebSocket read: %v", err)
	}
	return op, string(b)
}

// expectWS reads one message and checks it.
func expectWS(t testing.TB, c *websocket.Conn, op int, want string) {
	t.Helper()
	gotOp, got := readWS(t, c)
	if gotOp != op || got != want {
		t.Errorf("WebSocket message %d %q, want %d %q", gotOp, got, op, want)
	}
}

// writeWS writes one message.
func writeWS(t testing.TB, c *websocket.Conn, op int, data string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(eventually))
	if err := c.WriteMessage(op, []byte(data)); err != nil {
		t.Fatalf("WebSocket write: %v", err)
	}
}

// expectWSClose reads until the server's close frame and checks its code
// (websocket.CloseNoStatusReceived for a frame without one, as Node's ws
// sends).
func expectWSClose(t testing.TB, c *websocket.Conn, code int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(eventually))
	for {
		op, b, err := c.ReadMessage()
		if err == nil {
			if op == websocket.TextMessage && string(b) == "2" {
				continue // a ping may come first
			}
			t.Errorf("WebSocket message %d %q, want the close frame", op, b)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("WebSocket read: %v, want a close frame with %d", err, code)
		}
		if ce.Code != code {
			t.Errorf("close code %d, want %d", ce.Code, code)
		}
		return
	}
}

// rawRequest writes a request by hand over a fresh connection and returns
// the connection, for bodies that stall.
func (e *env) rawRequest(head string, body string) net.Conn {
	e.t.Helper()
	host := strings.TrimPrefix(strings.TrimSuffix(e.url, "/engine.io/"), "http://")
	c, err := net.DialTimeout("tcp", host, eventually)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(eventually))
	if _, err := io.WriteString(c, strings.ReplaceAll(head, "\n", "\r\n")+"\r\n"+body); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// readRaw reads an HTTP response from c.
func readRaw(t testing.TB, c net.Conn, method string) reply {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b), header: resp.Header, close: resp.Close, err: err}
}
