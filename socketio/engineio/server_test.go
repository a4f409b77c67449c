package engineio_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/socketio/engineio"
)

func TestNewServerConfig(t *testing.T) {
	onSession := func(*engineio.Session) engineio.Handler { return newRecorder(true) }
	tests := []struct {
		name string
		cfg  engineio.Config
		want []string // substrings of the error, one per problem
	}{
		{"OnSession required", engineio.Config{}, []string{"OnSession is required"}},
		{"negative durations", engineio.Config{
			OnSession: onSession, PingInterval: -1, PingTimeout: -1, UpgradeTimeout: -1, PollBodyTimeout: -1,
		}, []string{"PingInterval", "PingTimeout", "UpgradeTimeout", "PollBodyTimeout"}},
		{"negative bounds", engineio.Config{
			OnSession: onSession, MaxPayload: -1, MaxBufferedBytes: -1, MaxPayloadPackets: -1, CompressionThreshold: -2,
		}, []string{"MaxPayload", "MaxBufferedBytes", "MaxPayloadPackets", "CompressionThreshold"}},
		{"unknown transport", engineio.Config{OnSession: onSession, Transports: []string{"polling", "webtransport"}},
			[]string{`unknown transport "webtransport"`}},
		{"every problem at once", engineio.Config{PingInterval: -1, Transports: []string{"x"}},
			[]string{"OnSession", "PingInterval", `"x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := engineio.NewServer(tc.cfg)
			if err == nil {
				srv.Close(context.Background())
				t.Fatal("NewServer accepted the config")
			}
			if !errors.Is(err, engineio.ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines != len(tc.want) {
				t.Errorf("%d problems reported, want %d: %v", lines, len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestHandshakePolling(t *testing.T) {
	tests := []struct {
		name string
		cfg  engineio.Config
		want string // the open packet, with SID for the sid
	}{
		{"defaults, as Node's", engineio.Config{},
			`0{"sid":"SID","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
		{"configured", engineio.Config{PingInterval: 1500 * time.Millisecond, PingTimeout: time.Second, MaxPayload: 4096},
			`0{"sid":"SID","upgrades":["websocket"],"pingInterval":1500,"pingTimeout":1000,"maxPayload":4096}`},
		{"polling only", engineio.Config{Transports: []string{engineio.Polling}},
			`0{"sid":"SID","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			r := e.get("EIO=4&transport=polling&t=PxYz1")
			if r.status != http.StatusOK {
				t.Fatalf("handshake: %v", r)
			}
			sid := parseOpen(t, r.body).SID
			if got := strings.Replace(r.body, sid, "SID", 1); got != tc.want {
				t.Errorf("open packet\n %s\nwant\n %s", got, tc.want)
			}
			for k, want := range map[string]string{
				"Content-Type":   "text/plain; charset=UTF-8",
				"Cache-Control":  "no-store",
				"Content-Length": strconv.Itoa(len(r.body)),
			} {
				if got := r.header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if n := e.srv.Count(); n != 1 {
				t.Errorf("Count = %d, want 1", n)
			}
			// The session is served: a poll is answered by a message.
			ch := e.park(sid)
			if err := e.session(sid).Send(engineio.NewTextMessage([]byte("hi"))); err != nil {
				t.Fatal(err)
			}
			expectReply(t, "GET", wait(t, ch), http.StatusOK, "4hi")
		})
	}
}

func TestSessionsHaveDistinctIDs(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	seen := map[string]bool{}
	for range 50 {
		sid := e.handshake()
		if seen[sid] {
			t.Fatalf("sid %s given twice", sid)
		}
		seen[sid] = true
	}
	if n := e.srv.Count(); n != 50 {
		t.Errorf("Count = %d, want 50", n)
	}
	if id := engineio.NewID(); !openRE.MatchString(`0{"sid":"` + id + `","upgrades":[],"pingInterval":1,"pingTimeout":1,"maxPayload":1}`) {
		t.Errorf("NewID() = %q, not a 20-character base64id", id)
	}
}

func TestSessionAccessors(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	r := e.mustDo(http.MethodGet, "EIO=4&transport=polling&token=abc&x=1&x=2", nil, http.Header{"X-Test": {"yes"}})
	sid := parseOpen(t, r.body).SID
	s := e.session(sid)
	if s.ID() != sid {
		t.Errorf("ID = %q, want %q", s.ID(), sid)
	}
	if got := s.Header().Get("X-Test"); got != "yes" {
		t.Errorf("Header X-Test = %q", got)
	}
	if q := s.Query(); q.Get("token") != "abc" || len(q["x"]) != 2 || q.Get("EIO") != "4" {
		t.Errorf("Query = %v", q)
	}
	if !strings.HasPrefix(s.RemoteAddr(), "127.0.0.1:") {
		t.Errorf("RemoteAddr = %q", s.RemoteAddr())
	}
	if s.Secure() {
		t.Error("Secure over plain HTTP")
	}
	if got := s.Transport(); got != engineio.Polling {
		t.Errorf("Transport = %q", got)
	}
}

func TestHandshakeWebSocket(t *testing.T) {
	e := newEnv(t, engineio.Config{PingInterval: 2 * time.Second})
	c := e.mustDial("EIO=4&transport=websocket")
	op, m := readWS(t, c)
	if op != websocket.TextMessage {
		t.Fatalf("open packet in frame type %d", op)
	}
	o := parseOpen(t, m)
	if want := `0{"sid":"` + o.SID + `","upgrades":[],"pingInterval":2000,"pingTimeout":20000,"maxPayload":1000000}`; m != want {
		t.Errorf("open packet %s, want %s", m, want)
	}
	if got := e.session(o.SID).Transport(); got != engineio.WebSocket {
		t.Errorf("Transport = %q", got)
	}
}

func TestHandshakeErrors(t *testing.T) {
	pollingOnly := engineio.Config{Transports: []string{engineio.Polling}}
	wsOnly := engineio.Config{Transports: []string{engineio.WebSocket}}
	tests := []struct {
		name   string
		cfg    engineio.Config
		method string
		query  string // SID is replaced by a live session's sid
		status int
		body   string
	}{
		{"no transport", engineio.Config{}, "GET", "EIO=4", 400, errorBody(0, "Transport unknown")},
		{"unknown transport", engineio.Config{}, "GET", "EIO=4&transport=flash", 400, errorBody(0, "Transport unknown")},
		{"transport not served", wsOnly, "GET", "EIO=4&transport=polling", 400, errorBody(0, "Transport unknown")},
		{"unknown transport before unknown sid", engineio.Config{}, "GET", "EIO=4&transport=x&sid=nope", 400, errorBody(0, "Transport unknown")},
		{"POST handshake", engineio.Config{}, "POST", "EIO=4&transport=polling", 400, errorBody(2, "Bad handshake method")},
		{"PUT handshake", engineio.Config{}, "PUT", "EIO=4&transport=polling", 400, errorBody(2, "Bad handshake method")},
		{"OPTIONS without CORS", engineio.Config{}, "OPTIONS", "EIO=4&transport=polling", 400, errorBody(2, "Bad handshake method")},
		{"websocket without upgrade", engineio.Config{}, "GET", "EIO=4&transport=websocket", 400, badRequest},
		{"websocket without upgrade, polling only", pollingOnly, "GET", "EIO=4&transport=websocket", 400, errorBody(0, "Transport unknown")},
		{"EIO 3", engineio.Config{}, "GET", "EIO=3&transport=polling", 400, errorBody(5, "Unsupported protocol version")},
		{"no EIO", engineio.Config{}, "GET", "transport=polling", 400, errorBody(5, "Unsupported protocol version")},
		{"EIO 5", engineio.Config{}, "GET", "EIO=5&transport=polling", 400, errorBody(5, "Unsupported protocol version")},
		{"unknown sid GET", engineio.Config{}, "GET", "EIO=4&transport=polling&sid=nope", 400, unknownSID},
		{"unknown sid POST", engineio.Config{}, "POST", "EIO=4&transport=polling&sid=nope", 400, unknownSID},
		{"transport mismatch", engineio.Config{}, "GET", "EIO=4&transport=websocket&sid=SID", 400, badRequest},
		{"protocol mismatch", engineio.Config{}, "GET", "EIO=3&transport=polling&sid=SID", 400, badRequest},
		{"other method with a sid", engineio.Config{}, "PUT", "EIO=4&transport=polling&sid=SID", 500, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			q := tc.query
			if strings.Contains(q, "SID") { // a live session only where needed
				q = strings.ReplaceAll(q, "SID", e.handshake())
			}
			r := e.mustDo(tc.method, q, nil, nil)
			expectReply(t, tc.method, r, tc.status, tc.body)
			if tc.body != "" {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
			}
		})
	}
}

func TestHandshakeErrorsWebSocket(t *testing.T) {
	pollingOnly := engineio.Config{Transports: []string{engineio.Polling}}
	tests := []struct {
		name  string
		cfg   engineio.Config
		query string // SID is replaced by a live polling session's sid
		body  string
	}{
		{"unknown transport", engineio.Config{}, "EIO=4&transport=flash", "Transport unknown"},
		{"websocket not served", pollingOnly, "EIO=4&transport=websocket", "Transport unknown"},
		{"unknown sid", engineio.Config{}, "EIO=4&transport=websocket&sid=nope", "Session ID unknown"},
		{"protocol mismatch", engineio.Config{}, "EIO=3&transport=websocket&sid=SID", "Bad request"},
		{"polling transport with upgrade headers", engineio.Config{}, "EIO=4&transport=polling&sid=SID", "Bad request"},
		// Node's engine.io completes the WebSocket handshake and then
		// writes its 400 into the open WebSocket; herald answers before.
		{"EIO 3", engineio.Config{}, "EIO=3&transport=websocket", "Unsupported protocol version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			q := tc.query
			if strings.Contains(q, "SID") { // a live session only where needed
				q = strings.ReplaceAll(q, "SID", e.handshake())
			}
			c, resp, err := e.dial(q)
			if err == nil {
				c.Close()
				t.Fatal("WebSocket handshake accepted")
			}
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != 400 || body != tc.body {
				t.Errorf("%d %q, want 400 %q", resp.StatusCode, body, tc.body)
			}
			// As Node's abortUpgrade.
			if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
				t.Errorf("Content-Type %q, want text/html", ct)
			}
			if !resp.Close {
				t.Error("no Connection: close")
			}
		})
	}
}

func TestInvalidOrigin(t *testing.T) {
	// net/http refuses such a header before any handler runs; behind a
	// handler that passes it on, the server answers as Node does.
	srv, err := engineio.NewServer(engineio.Config{OnSession: func(*engineio.Session) engineio.Handler { return newRecorder(true) }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	req := httptest.NewRequest(http.MethodGet, "/engine.io/?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://a.example\x01")
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code != 400 || w.Body.String() != badRequest {
		t.Errorf("%d %q, want 400 %q", w.Code, w.Body.String(), badRequest)
	}
	if n := srv.Count(); n != 0 {
		t.Errorf("Count = %d, want 0", n)
	}
}

func TestCORS(t *testing.T) {
	const allowed = "https://app.example"
	e := newEnv(t, engineio.Config{AllowOrigin: func(o string) bool { return o == allowed }})
	corsHeaders := []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Vary",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Headers"}
	cors := func(r reply) map[string]string {
		m := map[string]string{}
		for _, k := range corsHeaders {
			if vs := r.header.Values(k); len(vs) > 0 {
				m[k] = strings.Join(vs, ", ")
			}
		}
		return m
	}
	normal := map[string]string{
		"Access-Control-Allow-Origin":      allowed,
		"Access-Control-Allow-Credentials": "true",
		"Vary":                             "Origin",
	}
	sid := e.handshake()
	tests := []struct {
		name    string
		method  string
		query   string
		header  http.Header
		status  int
		body    string
		headers map[string]string
	}{
		{"handshake", "GET", "EIO=4&transport=polling", http.Header{"Origin": {allowed}}, 200, "", normal},
		{"POST", "POST", poll(sid), http.Header{"Origin": {allowed}, "Content-Type": {"text/plain;charset=UTF-8"}}, 200, "ok", normal},
		{"error", "GET", "EIO=4&transport=flash", http.Header{"Origin": {allowed}}, 400, errorBody(0, "Transport unknown"), normal},
		{"other origin", "GET", "EIO=4&transport=polling", http.Header{"Origin": {"https://evil.example"}}, 200, "", map[string]string{}},
		{"no origin", "GET", "EIO=4&transport=polling", nil, 200, "", map[string]string{}},
		{"preflight", "OPTIONS", "EIO=4&transport=polling", http.Header{
			"Origin":                         {allowed},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"content-type,x-token"},
		}, 204, "", map[string]string{ // net/http drops the cors package's Content-Length: 0 from a 204
			"Access-Control-Allow-Origin":      allowed,
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "GET,HEAD,PUT,PATCH,POST,DELETE",
			"Access-Control-Allow-Headers":     "content-type,x-token",
			"Vary":                             "Origin, Access-Control-Request-Headers",
		}},
		{"preflight without request headers", "OPTIONS", poll(sid), http.Header{"Origin": {allowed}}, 204, "", map[string]string{
			"Access-Control-Allow-Origin":      allowed,
			"Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods":     "GET,HEAD,PUT,PATCH,POST,DELETE",
			"Vary":                             "Origin, Access-Control-Request-Headers",
		}},
		// Node's cors answers every preflight 204, with no
		// Access-Control-Allow-Origin for an origin it refuses; herald
		// leaves such a request to the protocol, which refuses it.
		{"preflight from another origin", "OPTIONS", "EIO=4&transport=polling", http.Header{"Origin": {"https://evil.example"}},
			400, errorBody(2, "Bad handshake method"), map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.NewReader("")
			if tc.method == "POST" {
				body = strings.NewReader("4x")
			}
			r := e.mustDo(tc.method, tc.query, body, tc.header)
			if r.status != tc.status || (tc.body != "" || tc.status == 204) && r.body != tc.body {
				t.Errorf("%d %q, want %d %q", r.status, r.body, tc.status, tc.body)
			}
			got := cors(r)
			for k, want := range tc.headers {
				if got[k] != want {
					t.Errorf("%s: %q, want %q", k, got[k], want)
				}
			}
			for k, v := range got {
				if _, ok := tc.headers[k]; !ok {
					t.Errorf("unexpected %s: %q", k, v)
				}
			}
		})
	}
}

func TestServerClose(t *testing.T) {
	e := newEnv(t, engineio.Config{})
	parkedSID := e.handshake()
	parked := e.park(parkedSID)
	idleSID := e.handshake()
	ws, wsSID := e.wsHandshake()

	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close has waited for every OnClose.
	for _, sid := range []string{parkedSID, idleSID, wsSID} {
		if !e.rec(sid).isClosed() {
			t.Errorf("session %s not told by the time Close returned", sid)
		}
		e.rec(sid).expectClose(t, engineio.ReasonForcedClose)
	}
	expectReply(t, "parked GET", wait(t, parked), 200, "1")
	expectWSClose(t, ws, websocket.CloseNoStatusReceived)
	expectReply(t, "GET after Close", e.get(poll(idleSID)), 400, unknownSID)
	if n := e.srv.Count(); n != 0 {
		t.Errorf("Count after Close = %d", n)
	}

	expectReply(t, "handshake after Close", e.get("EIO=4&transport=polling"), 403, errorBody(4, "Forbidden"))
	_, resp, err := e.dial("EIO=4&transport=websocket")
	if err == nil || resp == nil {
		t.Fatalf("WebSocket handshake after Close: %v", err)
	}
	// Node's abortUpgrade answers 400 whatever the code.
	if body := readAll(t, resp); resp.StatusCode != 400 || body != "Forbidden" {
		t.Errorf("WebSocket handshake after Close: %d %q, want 400 Forbidden", resp.StatusCode, body)
	}
	if err := e.session(idleSID).Send(engineio.NewTextMessage([]byte("late"))); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := e.srv.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestServerCloseDuringHandshakes(t *testing.T) {
	// Every session that OnSession saw is closed by Close, however its
	// handshake and Close interleave.
	e := newEnv(t, engineio.Config{})
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		conns    []*websocket.Conn
		dialErrs []error
	)
	stop := make(chan struct{})
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					ctx, cancel := context.WithTimeout(context.Background(), eventually)
					e.do(ctx, http.MethodGet, "EIO=4&transport=polling", nil, nil)
					cancel()
					continue
				}
				d := websocket.Dialer{HandshakeTimeout: eventually}
				c, resp, err := d.Dial(e.wsURL+"?EIO=4&transport=websocket", nil)
				if err != nil {
					// Refused once closed: 400 "Forbidden" (Node's
					// abortUpgrade), nothing else.
					if resp == nil || resp.StatusCode != 400 || readAll(t, resp) != "Forbidden" {
						mu.Lock()
						dialErrs = append(dialErrs, err)
						mu.Unlock()
					}
					continue
				}
				// Whatever the timing, the session opens: the open
				// packet, or the close frame if it closed at once.
				_ = c.SetReadDeadline(time.Now().Add(eventually))
				if op, m, err := c.ReadMessage(); err == nil && (op != websocket.TextMessage || !strings.HasPrefix(string(m), "0{")) {
					mu.Lock()
					dialErrs = append(dialErrs, fmt.Errorf("first message %q", m))
					mu.Unlock()
				}
				mu.Lock()
				conns = append(conns, c) // open until the end
				mu.Unlock()
			}
		})
	}
	waitUntil(t, "some sessions", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return len(e.order) >= 20
	})
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := e.srv.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	close(stop)
	wg.Wait()
	e.mu.Lock()
	sids := append([]string(nil), e.order...)
	e.mu.Unlock()
	for _, sid := range sids {
		select {
		case <-e.rec(sid).closed:
		case <-time.After(eventually):
			t.Errorf("session %s, opened as Close ran, is still open", sid)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	for _, err := range dialErrs {
		t.Errorf("WebSocket handshake: %v", err)
	}
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1024)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func TestSecure(t *testing.T) {
	got := make(chan bool, 1)
	srv, err := engineio.NewServer(engineio.Config{OnSession: func(s *engineio.Session) engineio.Handler {
		got <- s.Secure()
		return newRecorder(true)
	}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	defer srv.Close(context.Background())
	c := hs.Client()
	defer c.CloseIdleConnections()
	resp, err := c.Get(hs.URL + "/engine.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if !recvT(t, got) {
		t.Error("Secure over TLS = false")
	}
}

func TestLogger(t *testing.T) {
	logs := &logRecorder{}
	e := newEnv(t, engineio.Config{Logger: slog.New(logs)})
	sid := e.handshake()
	a, b := e.goGet(poll(sid)), e.goGet(poll(sid))
	wait(t, a)
	wait(t, b)
	e.rec(sid).expectClose(t, engineio.ReasonTransportError)
	if !logs.has("engineio: overlapping poll", sid) {
		t.Errorf("no debug record of the overlap: %v", logs.msgs())
	}
}

// logRecorder is a slog.Handler that keeps every record's message and sid.
type logRecorder struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	sid := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "sid" {
			sid = a.Value.String()
		}
		return true
	})
	l.mu.Lock()
	l.recs = append(l.recs, r.Message+" "+sid)
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) has(msg, sid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.recs, msg+" "+sid)
}

func (l *logRecorder) msgs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.recs)
}
