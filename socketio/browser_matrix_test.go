package socketio_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/testenv"
	"github.com/herald-rt/herald/socketio"
)

// bmWhoEvent is acked with the server's view of the socket that sent it.
var bmWhoEvent = events.Define[echoPayload]("bm_who")

type bmWho struct {
	SocketID  string `json:"socketId"`
	UserID    string `json:"userId"`
	Transport string `json:"transport"`
}

// bmResult is what testdata/browser-matrix.js reports for one case: what
// the page observed, nothing judged.
type bmResult struct {
	Error            *string                             `json:"error"`
	Loaded           bool                                `json:"loaded"`
	Features         struct{ Timeout, EmitWithAck bool } `json:"features"`
	ConnectTransport string                              `json:"connectTransport"`
	Upgraded         *string                             `json:"upgraded"`
	SocketID         string                              `json:"socketId"`
	Authenticated    string                              `json:"authenticated"`
	JobProgress      struct {
		Args    int    `json:"args"`
		HasAck  bool   `json:"hasAck"`
		Payload string `json:"payload"`
	} `json:"jobProgress"`
	AckCallback       *echoPayload `json:"ackCallback"`
	AckTimeout        *echoPayload `json:"ackTimeout"`
	AckPromise        *echoPayload `json:"ackPromise"`
	AckPromiseTimeout *echoPayload `json:"ackPromiseTimeout"`
	CrossOrigin       string       `json:"crossOrigin"`
	BadOrigin         string       `json:"badOrigin"`
	FileAck           string       `json:"fileAck"`
	FileEvent         string       `json:"fileEvent"`
	Who               *bmWho       `json:"who"`
	Transport         string       `json:"transport"`
	Drained           bool         `json:"drained"`
}

type bmLine struct {
	Case    string          `json:"case"`
	Result  json.RawMessage `json:"result"`
	Console []string        `json:"console"`
}

// TestBrowserClientMatrix runs the browser bundle (dist/socket.io.min.js) of
// every socket.io-client release of TestClientMatrix in headless Chromium,
// over each transport, from a page served by the same origin as the herald
// Server: handshake auth, the transport (and the upgrade to WebSocket when
// allowed), a server emit (exact JSON), client->server acks with the
// callback, timeout() (4.4+) and emitWithAck() (4.6+) APIs, and the server's
// view of the socket (id, user, transport); then the client disconnects and
// every request of its session must end. testdata/browser-matrix.js drives
// the browser and reports; this test judges.
//
// The page waits for those requests before its browser context is closed.
// Closing it with a long-poll in flight aborts the poll, and an abort that
// lands while the server is just taking the poll is a data race upstream
// (servers/engine v3.0.5: transports/polling.go onPollRequest sets
// HttpContext.Cleanup unsynchronized while types/http-context.go's context
// watcher reads it on cancellation), which -race reports. TestClientMatrix
// under -race reports the same race now and then.
func TestBrowserClientMatrix(t *testing.T) {
	node := testenv.RequireNode(t)
	chromium := testenv.RequireChromium(t)
	testdata := testenv.TestdataDir(t)
	bundles := make(map[string][]byte) // version -> bundle
	for _, cv := range matrixClients {
		bundles[cv.version] = browserBundle(t, testdata, cv)
	}

	ts := startBrowserMatrixServer(t, socketio.Config{Now: func() time.Time { return matrixNow }}, bundles)
	must(t, socketio.OnAck(ts.Server, echoEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		return echoPayload{Text: strings.ToUpper(p.Text)}, nil
	}))
	registerFileHandler(t, ts)
	// Cross-origin servers: one that allows the pages' origin (CORS with
	// credentials for polling, the Origin check for WebSocket), one that
	// does not.
	xts := startServer(t, socketio.Config{AllowedOrigins: []string{ts.URL}})
	bad := startServer(t, socketio.Config{AllowedOrigins: []string{"https://elsewhere.example"}})
	must(t, socketio.OnAck(ts.Server, bmWhoEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (bmWho, error) {
		return bmWho{SocketID: s.ID(), UserID: s.UserID(), Transport: s.Transport()}, nil
	}))

	type bmCase struct {
		Name string `json:"name"`
		URL  string `json:"url"`
		cv   matrixClient
		tr   matrixTransport
		user string
	}
	var cases []bmCase
	for _, cv := range matrixClients {
		for _, tr := range matrixTransports {
			user := "bm-" + cv.version + "-" + tr.name
			q := url.Values{
				"v":          {cv.version},
				"user":       {user},
				"token":      {ts.token(t, user)},
				"transports": {strings.Join(tr.transports, ",")},
				"upgrade":    {map[bool]string{true: "1", false: "0"}[tr.upgrade]},
				"x":          {xts.URL},
				"xtoken":     {xts.token(t, user)},
				"bad":        {bad.URL},
				"badtoken":   {bad.token(t, user)},
			}
			cases = append(cases, bmCase{Name: cv.version + "/" + tr.name, URL: ts.URL + "/page?" + q.Encode(), cv: cv, tr: tr, user: user})
		}
	}
	lines := runBrowserMatrix(t, node, chromium, 50*time.Second, cases, false)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := pageResult[bmResult](t, lines, c.Name)
			checkBrowserResult(t, r, c.cv, c.tr, c.user)
		})
	}
}

// browserBundle reads cv's browser bundle from testdata/node_modules and
// checks its release.
func browserBundle(t *testing.T, testdata string, cv matrixClient) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, "node_modules", cv.pkg, "dist", "socket.io.min.js"))
	testenv.Require(t, "testdata/node_modules/"+cv.pkg+"/dist/socket.io.min.js", "run `npm ci` in testdata/", err == nil)
	if !bytes.Contains(b[:min(len(b), 200)], []byte("Socket.IO v"+cv.version+"\n")) {
		t.Fatalf("%s/dist/socket.io.min.js is not Socket.IO v%s (run npm ci in testdata)", cv.pkg, cv.version)
	}
	return b
}

// runBrowserMatrix runs testdata/browser-matrix.js with cases (each one
// {"name", "url", ...}), all at once when parallel, and returns its lines
// by case name. It fails t if the script does not finish within
// timeout; a missing line is for the caller to judge.
// pageResult decodes the result of page name from browser-matrix.js's
// lines, failing t when there is none or when the page reported an error
// (R's Error field).
func pageResult[R interface{ pageError() *string }](t *testing.T, lines map[string]bmLine, name string) R {
	t.Helper()
	var r R
	l, ok := lines[name]
	if !ok {
		t.Fatal("no result from browser-matrix.js")
	}
	t.Logf("result: %s", l.Result)
	if err := json.Unmarshal(l.Result, &r); err != nil {
		t.Fatalf("result: %v", err)
	}
	if e := r.pageError(); e != nil {
		t.Fatalf("page: %s\nconsole:\n%s", *e, strings.Join(l.Console, "\n"))
	}
	return r
}

func runBrowserMatrix(t *testing.T, node, chromium string, timeout time.Duration, cases any, parallel bool) map[string]bmLine {
	t.Helper()
	arg, err := json.Marshal(cases)
	must(t, err)
	args := []string{filepath.Join(testenv.TestdataDir(t), "browser-matrix.js")}
	if parallel {
		args = append(args, "--parallel")
	}
	args = append(args, string(arg))
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Env = append(os.Environ(), "HERALD_CHROMIUM="+chromium)
	// SIGTERM lets playwright close Chromium; SIGKILL follows if it hangs.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	if stderr.Len() > 0 {
		t.Logf("browser-matrix.js stderr:\n%s", stderr.Bytes())
	}
	if ctx.Err() != nil {
		t.Fatalf("browser-matrix.js did not finish in time: %v\nstdout:\n%s", ctx.Err(), out)
	}

	lines := make(map[string]bmLine)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var l bmLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Case == "" {
			t.Logf("browser-matrix.js: %s", sc.Bytes())
			continue
		}
		lines[l.Case] = l
	}
	if runErr != nil {
		t.Errorf("browser-matrix.js: %v", runErr)
	}
	return lines
}

func checkBrowserResult(t *testing.T, r bmResult, cv matrixClient, tr matrixTransport, user string) {
	t.Helper()
	if !r.Loaded {
		t.Fatal("bundle not loaded")
	}
	if r.Features.Timeout != cv.timeout || r.Features.EmitWithAck != cv.emitWithAck {
		t.Errorf("features = %+v, want timeout %v emitWithAck %v", r.Features, cv.timeout, cv.emitWithAck)
	}
	// A client that upgrades may have done so before connect (4.8 probes
	// at once), so connect may report either transport then.
	if want := tr.transports[0]; r.ConnectTransport != want && !(tr.upgrade && r.ConnectTransport == "websocket") {
		t.Errorf("connected over %q, want %q", r.ConnectTransport, want)
	}
	wantFinal := tr.transports[0]
	if tr.upgrade {
		wantFinal = "websocket"
		if r.Upgraded == nil || *r.Upgraded != "websocket" {
			t.Errorf("upgrade = %v, want websocket", r.Upgraded)
		}
	} else if r.Upgraded != nil {
		t.Errorf("upgraded to %q, want no upgrade", *r.Upgraded)
	}
	if r.Transport != wantFinal {
		t.Errorf("final transport %q, want %q", r.Transport, wantFinal)
	}
	var greeting events.AuthenticatedPayload
	if err := json.Unmarshal([]byte(r.Authenticated), &greeting); err != nil || greeting.UserID != user {
		t.Errorf("authenticated = %s (%v), want user %q", r.Authenticated, err, user)
	}
	want := fmt.Sprintf(`{"jobId":"b-%s","progress":40,"message":"héllo \"q\"","timestamp":"2025-01-02T03:04:05Z"}`, user)
	if jp := r.JobProgress; jp.Args != 1 || jp.HasAck || jp.Payload != want {
		t.Errorf("job_progress = %+v, want one arg %s and no ack", jp, want)
	}
	checkAck := func(api string, got *echoPayload, have bool, text string) {
		t.Helper()
		switch {
		case !have && got != nil:
			t.Errorf("%s ack = %+v from a client without that API", api, *got)
		case have && (got == nil || got.Text != text):
			t.Errorf("%s ack = %+v, want %q", api, got, text)
		}
	}
	checkAck("callback", r.AckCallback, true, "CALLBACK")
	checkAck("timeout().emit", r.AckTimeout, cv.timeout, "TIMEOUT")
	checkAck("emitWithAck", r.AckPromise, cv.emitWithAck, "PROMISE")
	checkAck("timeout().emitWithAck", r.AckPromiseTimeout, cv.emitWithAck, "PROMISE TIMEOUT")
	// withCredentials to an allowed origin connects, over the case's
	// transports; an origin outside the allowlist is refused.
	if r.CrossOrigin != wantFinal && !(tr.upgrade && r.CrossOrigin == "polling") {
		t.Errorf("cross-origin connection with withCredentials = %q, want connected over %q", r.CrossOrigin, wantFinal)
	}
	if !strings.HasPrefix(r.BadOrigin, "connect_error") {
		t.Errorf("connection from a refused origin = %q, want connect_error", r.BadOrigin)
	}
	// Every binary value the page sent comes back as an ArrayBuffer.
	wantFile := `{"name":"f back","data":{"ArrayBuffer":[3,2,1]},"parts":[{"ArrayBuffer":[5,4]},{"ArrayBuffer":[8,7,6]}],"meta":{"thumb":{"ArrayBuffer":[0,255]}}}`
	if !sameJSON([]byte(r.FileAck), wantFile) {
		t.Errorf("file ack = %s, want %s", r.FileAck, wantFile)
	}
	if !sameJSON([]byte(r.FileEvent), strings.TrimSuffix(wantFile, "}")+`,"timestamp":"2025-01-02T03:04:05Z"}`) {
		t.Errorf("file event = %s, want %s with the timestamp", r.FileEvent, wantFile)
	}
	if !r.Drained {
		t.Error("the closed session's requests did not all end")
	}
	if w := r.Who; w == nil || w.SocketID != r.SocketID || w.UserID != user || w.Transport != wantFinal {
		t.Errorf("server sees %+v, want socket %q of %q over %q", w, r.SocketID, user, wantFinal)
	}
}

// startBrowserMatrixServer serves, on one loopback origin, a herald Server
// with cfg (same-origin only; its Verifier, HS256 without leeway, is set
// here) and the pages of the browser tests:
//
//	GET  /page?v=VERSION&...         a page that loads VERSION's bundle
//	GET  /client/VERSION/socket.io.min.js
//	POST /test/emit?user=USER         EmitToUser(USER, job_progress)
//	GET  /test/token?user=USER&ttl=D  {token, exp}: a token of USER that
//	                                  expires in D (a Go duration, whole seconds)
func startBrowserMatrixServer(t *testing.T, cfg socketio.Config, bundles map[string][]byte) *testServer {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	// No Leeway: a token is refused from its exp on, so that expiry
	// timings are the tokens' own.
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}}, Leeway: 0})
	must(t, err)
	cfg.Verifier = v
	srv, err := socketio.New(cfg)
	must(t, err)
	ts := &testServer{Server: srv, secret: secret}

	mux := http.NewServeMux()
	mux.Handle(srv.Path(), srv)
	mux.HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) {
		version := r.URL.Query().Get("v")
		if _, ok := bundles[version]; !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "<!doctype html>\n<meta charset=\"utf-8\">\n<title>herald browser matrix %[1]s</title>\n<script src=\"/client/%[1]s/socket.io.min.js\"></script>\n", html.EscapeString(version))
	})
	mux.HandleFunc("GET /client/{version}/socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		b, ok := bundles[r.PathValue("version")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /test/emit", func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		err := ts.EmitToUser(r.Context(), user, events.JobProgress, events.JobProgressPayload{JobID: "b-" + user, Progress: 40, Message: "héllo \"q\""})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})

	mux.HandleFunc("GET /test/token", func(w http.ResponseWriter, r *http.Request) {
		ttl, err := time.ParseDuration(r.URL.Query().Get("ttl"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// "exp" has no fraction: the token expires at exp exactly.
		exp := time.Now().Add(ttl).Truncate(time.Second)
		tok, err := auth.Sign("HS256", "", secret, map[string]any{"sub": r.URL.Query().Get("user"), "exp": exp.Unix()})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "exp": exp.UTC()})
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// http.Server.Shutdown does not close WebSockets: the Server does.
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("http Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	ts.URL = "http://" + ln.Addr().String()
	return ts
}

func (r bmResult) pageError() *string { return r.Error }
func (r bxResult) pageError() *string { return r.Error }
