package engineio_test

import (
	"bufio"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio/engineio"
)

// TestLikeNode runs the same raw exchanges (HTTP requests and WebSocket
// frames) against Node's engine.io 6.6 (testdata/node-engineio-server.js,
// an echo server) and against herald's Server with the echoing recorder,
// and compares what a client observes: status codes, bodies (the sid
// replaced by <sid>), the headers a client acts on, WebSocket messages
// and close codes. Where herald departs from Node on purpose, the exchange
// names the observation in differ, with both answers.
//
// It needs node and `npm ci` in testdata/; it skips without them, unless
// HERALD_INTEGRATION=1.
func TestLikeNode(t *testing.T) {
	nodes := map[string]*nodeTarget{}
	for _, x := range likeNodeExchanges {
		key := x.cfg.key()
		if nodes[key] == nil {
			nodes[key] = startNodeTarget(t, x.cfg)
		}
	}
	for _, x := range likeNodeExchanges {
		t.Run(x.name, func(t *testing.T) {
			node := runLike(t, nodes[x.cfg.key()], x.run)
			e := newEnv(t, x.cfg.herald())
			herald := runLike(t, heraldTarget{e}, x.run)
			compareLike(t, node, herald, x.differ)
		})
	}
}

// likeConfig is a server's configuration, in node-engineio-server.js's
// terms (engine.io's options); zero values are the defaults of both.
type likeConfig struct {
	PingInterval      int      `json:"pingInterval,omitempty"` // ms
	PingTimeout       int      `json:"pingTimeout,omitempty"`
	UpgradeTimeout    int      `json:"upgradeTimeout,omitempty"`
	MaxHTTPBufferSize int64    `json:"maxHttpBufferSize,omitempty"`
	Transports        []string `json:"transports,omitempty"`
	CORS              bool     `json:"cors,omitempty"`
}

func (c likeConfig) key() string {
	b, _ := json.Marshal(c)
	return string(b)
}

func (c likeConfig) herald() engineio.Config {
	cfg := engineio.Config{
		PingInterval:   time.Duration(c.PingInterval) * time.Millisecond,
		PingTimeout:    time.Duration(c.PingTimeout) * time.Millisecond,
		UpgradeTimeout: time.Duration(c.UpgradeTimeout) * time.Millisecond,
		MaxPayload:     c.MaxHTTPBufferSize,
		Transports:     c.Transports,
	}
	if c.CORS {
		cfg.AllowOrigin = func(string) bool { return true }
	}
	return cfg
}

// likeState is what a test may wait for on a server.
type likeState struct {
	Exists    bool   `json:"exists"`
	Transport string `json:"transport"`
	Parked    bool   `json:"parked"`
	Posting   bool   `json:"posting"`
	Upgrading bool   `json:"upgrading"`
}

// likeTarget is a server under comparison.
type likeTarget interface {
	url() string // http://127.0.0.1:P/engine.io/
	state(t *testing.T, sid string) likeState
	closeSession(t *testing.T, sid string)
}

type heraldTarget struct{ e *env }

func (h heraldTarget) url() string { return h.e.url }

func (h heraldTarget) state(t *testing.T, sid string) likeState {
	up, _ := h.e.srv.Upgrading(sid)
	return likeState{Parked: h.e.srv.Parked(sid), Posting: h.e.srv.Posting(sid), Upgrading: up}
}

func (h heraldTarget) closeSession(t *testing.T, sid string) { h.e.session(sid).Close() }

type nodeTarget struct {
	s    *nodeclient.Script
	base string
}

func startNodeTarget(t *testing.T, cfg likeConfig) *nodeTarget {
	t.Helper()
	s := nodeclient.StartScript(t, "node-engineio-server.js", cfg)
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	m, err := s.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "listening" || m.Type == "error" })
	if err != nil {
		t.Fatalf("node-engineio-server.js did not start: %v\n%s", err, s.Stderr())
	}
	var l struct {
		Port int `json:"port"`
	}
	if m.Type != "listening" || m.Decode(&l) != nil || l.Port == 0 {
		t.Fatalf("node-engineio-server.js did not start: %s\n%s", m, s.Stderr())
	}
	return &nodeTarget{s: s, base: fmt.Sprintf("http://127.0.0.1:%d/engine.io/", l.Port)}
}

func (n *nodeTarget) url() string { return n.base }

func (n *nodeTarget) request(t *testing.T, cmd map[string]any) nodeclient.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	m, err := n.s.Request(ctx, cmd)
	if err != nil {
		t.Fatalf("node-engineio-server.js %v: %v", cmd, err)
	}
	return m
}

func (n *nodeTarget) state(t *testing.T, sid string) likeState {
	var st likeState
	if err := n.request(t, map[string]any{"cmd": "state", "sid": sid}).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (n *nodeTarget) closeSession(t *testing.T, sid string) {
	n.request(t, map[string]any{"cmd": "closeSession", "sid": sid})
}

// likeObs is one observation of an exchange.
type likeObs struct{ label, text string }

// likeRun runs an exchange's steps against one server and records what
// they observe, in the order of the steps.
type likeRun struct {
	t   *testing.T
	tg  likeTarget
	hc  *http.Client
	sid string // the exchange's session, once opened
	obs []likeObs
}

func runLike(t *testing.T, tg likeTarget, steps func(x *likeRun)) []likeObs {
	t.Helper()
	// One connection per request: no request waits behind another's body.
	tr := &http.Transport{DisableCompression: true, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	x := &likeRun{t: t, tg: tg, hc: &http.Client{Transport: tr, Timeout: eventually}}
	steps(x)
	return x.obs
}

func (x *likeRun) record(label, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	if x.sid != "" {
		text = strings.ReplaceAll(text, x.sid, "<sid>")
	}
	x.obs = append(x.obs, likeObs{label, text})
}

// query replaces SID in q with the exchange's sid.
func (x *likeRun) query(q string) string { return strings.ReplaceAll(q, "SID", x.sid) }

// recordedHeaders are the response headers compared, when present.
var recordedHeaders = []string{
	"Content-Type", "Cache-Control", "Content-Encoding",
	"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
	"Access-Control-Allow-Methods", "Access-Control-Allow-Headers", "Vary",
}

func (x *likeRun) recordResponse(label string, resp *http.Response, err error) {
	if err != nil {
		x.record(label, "no response")
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		x.record(label, "%d, body cut: %v", resp.StatusCode, errors.Unwrap(err) != nil)
		return
	}
	var zr io.ReadCloser
	switch resp.Header.Get("Content-Encoding") {
	case "gzip":
		zr, err = gzip.NewReader(strings.NewReader(string(body)))
	case "deflate":
		zr, err = zlib.NewReader(strings.NewReader(string(body)))
	}
	if zr != nil {
		body, err = io.ReadAll(zr)
	}
	if err != nil {
		x.record(label, "%d, body does not decode: %v", resp.StatusCode, err)
		return
	}
	var h []string
	for _, k := range recordedHeaders {
		if vs := resp.Header.Values(k); len(vs) > 0 {
			h = append(h, k+": "+strings.Join(vs, ", "))
		}
	}
	x.record(label, "%d %q [%s]", resp.StatusCode, body, strings.Join(h, "; "))
}

func (x *likeRun) newRequest(method, q, body string, header http.Header) *http.Request {
	var rd io.Reader
	if body != "" || method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, x.tg.url()+"?"+x.query(q), rd)
	if err != nil {
		x.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	return req
}

// do sends a request and records its response.
func (x *likeRun) do(label, method, q, body string, header http.Header) {
	resp, err := x.hc.Do(x.newRequest(method, q, body, header))
	x.recordResponse(label, resp, err)
}

func (x *likeRun) get(label, q string)        { x.do(label, http.MethodGet, q, "", nil) }
func (x *likeRun) post(label, q, body string) { x.do(label, http.MethodPost, q, body, nil) }

// goGet sends a GET and returns a function that records its response.
func (x *likeRun) goGet(label, q string) (wait func()) {
	req := x.newRequest(http.MethodGet, q, "", nil)
	type result struct {
		resp *http.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, err := x.hc.Do(req)
		ch <- result{resp, err}
	}()
	return func() {
		r := <-ch
		x.recordResponse(label, r.resp, r.err)
	}
}

// handshake opens a long-polling session and records the open packet.
func (x *likeRun) handshake(label, q string) { x.handshakeWith(label, q, nil) }

func (x *likeRun) handshakeWith(label, q string, header http.Header) {
	resp, err := x.hc.Do(x.newRequest(http.MethodGet, q, "", header))
	if err != nil {
		x.t.Fatalf("%s: %v", label, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var o open
	if resp.StatusCode == 200 && strings.HasPrefix(string(body), "0") && json.Unmarshal(body[1:], &o) == nil {
		x.sid = o.SID
	}
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	x.recordResponse(label, resp, nil)
}

// waitFor waits until cond holds of the session's state.
func (x *likeRun) waitFor(what string, cond func(likeState) bool) {
	x.t.Helper()
	waitUntil(x.t, what, func() bool { return cond(x.tg.state(x.t, x.sid)) })
}

func (x *likeRun) waitParked() { x.waitFor("GET parked", func(s likeState) bool { return s.Parked }) }

// rawPost starts a POST whose body stalls after part.
func (x *likeRun) rawPost(q, part string, length int) net.Conn {
	host := strings.TrimSuffix(strings.TrimPrefix(x.tg.url(), "http://"), "/engine.io/")
	c, err := net.DialTimeout("tcp", host, eventually)
	if err != nil {
		x.t.Fatal(err)
	}
	x.t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(eventually))
	fmt.Fprintf(c, "POST /engine.io/?%s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n%s",
		x.query(q), host, length, part)
	return c
}

// rawResult records the response to a raw request.
func (x *likeRun) rawResult(label string, c net.Conn) {
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodPost})
	x.recordResponse(label, resp, err)
}

// dial opens a WebSocket and records the handshake's outcome; it returns
// nil when refused.
func (x *likeRun) dial(label, q string) *websocket.Conn {
	url := "ws" + strings.TrimPrefix(x.tg.url(), "http") + "?" + x.query(q)
	d := websocket.Dialer{HandshakeTimeout: eventually}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		if resp == nil {
			x.record(label, "dial failed")
			return nil
		}
		x.recordResponse(label, resp, nil)
		return nil
	}
	x.t.Cleanup(func() { c.Close() })
	x.record(label, "%d", resp.StatusCode)
	return c
}

// wsHandshake opens a WebSocket session and records its open packet.
func (x *likeRun) wsHandshake(label string) *websocket.Conn {
	c := x.dial(label+" dial", "EIO=4&transport=websocket")
	if c == nil {
		x.t.Fatalf("%s: refused", label)
	}
	_ = c.SetReadDeadline(time.Now().Add(eventually))
	_, m, err := c.ReadMessage()
	if err != nil {
		x.t.Fatalf("%s: %v", label, err)
	}
	var o open
	if len(m) > 0 && json.Unmarshal(m[1:], &o) == nil {
		x.sid = o.SID
	}
	x.record(label, "%q", m)
	return c
}

func (x *likeRun) send(c *websocket.Conn, op int, data string) {
	_ = c.SetWriteDeadline(time.Now().Add(eventually))
	_ = c.WriteMessage(op, []byte(data)) // a failure shows in what follows
}

// recv records the next WebSocket message, or how the connection ended.
func (x *likeRun) recv(label string, c *websocket.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(eventually))
	op, m, err := c.ReadMessage()
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
		x.record(label, "close %d", ce.Code)
	case err != nil:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			x.record(label, "nothing")
		} else {
			x.record(label, "broken")
		}
	case op == websocket.BinaryMessage:
		x.record(label, "binary %q", m)
	default:
		x.record(label, "text %q", m)
	}
}

// likeDiff is a documented difference: what Node answers, what herald
// answers.
type likeDiff struct{ node, herald string }

func compareLike(t *testing.T, node, herald []likeObs, differ map[string]likeDiff) {
	t.Helper()
	if len(node) != len(herald) {
		t.Fatalf("%d observations of Node, %d of herald:\nNode:   %v\nherald: %v", len(node), len(herald), node, herald)
	}
	seen := map[string]bool{}
	for i := range node {
		n, h := node[i], herald[i]
		if n.label != h.label {
			t.Fatalf("step %d: %q on Node, %q on herald", i, n.label, h.label)
		}
		seen[n.label] = true
		if d, ok := differ[n.label]; ok {
			if n.text != d.node {
				t.Errorf("%s: Node answered\n\t%s\nwhere the test expects\n\t%s", n.label, n.text, d.node)
			}
			if h.text != d.herald {
				t.Errorf("%s: herald answered\n\t%s\nwant (herald's documented behaviour)\n\t%s", n.label, h.text, d.herald)
			}
			continue
		}
		if n.text != h.text {
			t.Errorf("%s:\n\tNode:   %s\n\therald: %s", n.label, n.text, h.text)
		}
	}
	for label := range differ {
		if !seen[label] {
			t.Errorf("differ names %q, which no step observed", label)
		}
	}
}

const (
	handshakeQuery = "EIO=4&transport=polling"
	pollQuery      = "EIO=4&transport=polling&sid=SID"
	wsSIDQuery     = "EIO=4&transport=websocket&sid=SID"
)

var likeNodeExchanges = []struct {
	name   string
	cfg    likeConfig
	run    func(x *likeRun)
	differ map[string]likeDiff
}{
	{name: "handshake", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery+"&t=Pabc123")
	}},
	{name: "handshake configured", cfg: likeConfig{PingInterval: 1500, PingTimeout: 1000, MaxHTTPBufferSize: 4096}, run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
	}},
	{name: "handshake polling only", cfg: likeConfig{Transports: []string{"polling"}}, run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.get("websocket without upgrade", "EIO=4&transport=websocket")
	}},
	{name: "handshake errors", run: func(x *likeRun) {
		x.get("no transport", "EIO=4")
		x.get("unknown transport", "EIO=4&transport=flash")
		x.do("POST handshake", http.MethodPost, handshakeQuery, "4x", nil)
		x.do("PUT handshake", http.MethodPut, handshakeQuery, "", nil)
		x.do("OPTIONS handshake", http.MethodOptions, handshakeQuery, "", nil)
		x.get("websocket without upgrade", "EIO=4&transport=websocket")
		x.get("EIO 3", "EIO=3&transport=polling")
		x.get("no EIO", "transport=polling")
		x.get("unknown sid GET", "EIO=4&transport=polling&sid=nope")
		x.post("unknown sid POST", "EIO=4&transport=polling&sid=nope", "4x")
		x.get("unknown transport and sid", "EIO=4&transport=x&sid=nope")
	}},
	{name: "errors with a live sid", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.get("transport mismatch", "EIO=4&transport=websocket&sid=SID")
		x.get("protocol mismatch", "EIO=3&transport=polling&sid=SID")
		x.do("PUT", http.MethodPut, pollQuery, "", nil)
		x.do("OPTIONS", http.MethodOptions, pollQuery, "", nil)
		x.post("still open", pollQuery, "4alive")
		x.get("GET", pollQuery)
	}},
	{name: "echo", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST", pollQuery, "4hello")
		x.get("GET", pollQuery)
		x.post("POST UTF-8", pollQuery, "4héllo ✓")
		x.get("GET UTF-8", pollQuery)
		x.post("POST empty message", pollQuery, "4")
		x.get("GET empty message", pollQuery)
	}},
	{name: "batched payloads", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST", pollQuery, "4a\x1e4b\x1e4\x1e4c")
		x.get("GET", pollQuery)
		x.post("POST ignored packets", pollQuery, "6\x1e5\x1e3\x1e0\x1e4d")
		x.get("GET", pollQuery)
	}},
	{name: "binary over polling", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST", pollQuery, "bAQID\x1e4t\x1eb")
		x.get("GET", pollQuery)
	}},
	{name: "websocket session", run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		x.send(c, websocket.TextMessage, "4hello ✓")
		x.recv("text echo", c)
		x.send(c, websocket.BinaryMessage, "\x00\xffbin")
		x.recv("binary echo", c)
		x.send(c, websocket.TextMessage, "bAQID")
		x.recv("base64 text echo", c)
		x.send(c, websocket.TextMessage, "6")
		x.send(c, websocket.TextMessage, "4after noop")
		x.recv("after noop", c)
		x.post("POST on a websocket session", pollQuery, "4x")
		x.get("GET on a websocket session", pollQuery)
	}},
	{name: "POST close while GET parked", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		parked := x.goGet("parked GET", pollQuery)
		x.waitParked()
		x.post("POST close", pollQuery, "1")
		parked()
		x.get("GET after", pollQuery)
	}},
	{name: "POST close without GET", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST", pollQuery, "4a\x1e1\x1e4b")
		x.get("GET after", pollQuery)
	}},
	{name: "POST abc", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST abc", pollQuery, "abc")
		x.get("GET after", pollQuery)
	}},
	{name: "POST ping", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST ping", pollQuery, "2")
		x.get("GET after", pollQuery)
	}},
	{name: "binary content type", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.do("POST", http.MethodPost, pollQuery, "4x", http.Header{"Content-Type": {"application/octet-stream"}})
		x.get("GET after", pollQuery)
	}},
	{name: "overlapping GET", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		parked := x.goGet("parked GET", pollQuery)
		x.waitParked()
		x.get("second GET", pollQuery)
		parked()
		x.get("GET after", pollQuery)
	}},
	{name: "overlapping POST", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		first := x.rawPost(pollQuery, "4par", 10)
		x.waitFor("POST reading its body", func(s likeState) bool { return s.Posting })
		x.post("second POST", pollQuery, "4b")
		x.rawResult("first POST", first)
		x.get("GET after", pollQuery)
	}, differ: map[string]likeDiff{
		// Node destroys the first POST's connection; herald answers it.
		"first POST": {node: "no response", herald: `400 "" []`},
	}},
	{name: "oversized POST", cfg: likeConfig{MaxHTTPBufferSize: 100}, run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST at the bound", pollQuery, "4"+strings.Repeat("x", 99))
		x.get("GET", pollQuery)
		x.post("POST past the bound", pollQuery, "4"+strings.Repeat("x", 100))
		x.post("POST after", pollQuery, "4y")
	}, differ: map[string]likeDiff{
		// Node answers 413 and keeps the session; herald closes it (see
		// the package doc: every request has a bound).
		"POST after": {node: `200 "ok" [Content-Type: text/html; Cache-Control: no-store]`, herald: `400 "{\"code\":1,\"message\":\"Session ID unknown\"}" [Content-Type: application/json]`},
	}},
	{name: "too many packets", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST 10,001 packets", pollQuery, strings.Repeat("6\x1e", engineio.DefaultMaxPayloadPackets)+"4last")
		x.get("GET after", pollQuery)
	}, differ: map[string]likeDiff{
		// Node has no bound on the packets of a payload; herald's is
		// Config.MaxPayloadPackets, past which the session closes.
		"POST 10,001 packets": {node: `200 "ok" [Content-Type: text/html; Cache-Control: no-store]`, herald: `400 "" []`},
		"GET after":           {node: `200 "4last" [Content-Type: text/plain; charset=UTF-8; Cache-Control: no-store]`, herald: `400 "{\"code\":1,\"message\":\"Session ID unknown\"}" [Content-Type: application/json]`},
	}},
	{name: "upgrade", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		parked := x.goGet("parked GET", pollQuery)
		x.waitParked()
		c := x.dial("dial", wsSIDQuery)
		x.send(c, websocket.TextMessage, "2probe")
		x.recv("probe", c)
		parked()
		x.post("POST while upgrading", pollQuery, "4during")
		x.send(c, websocket.TextMessage, "5")
		x.recv("queued echo", c)
		x.send(c, websocket.TextMessage, "4ws")
		x.recv("echo", c)
		x.send(c, websocket.BinaryMessage, "\x01\x02")
		x.recv("binary echo", c)
		x.get("GET after the upgrade", pollQuery)
		x.post("POST after the upgrade", pollQuery, "4x")
		c2 := x.dial("second WebSocket", wsSIDQuery)
		x.recv("second WebSocket closed", c2)
		x.send(c, websocket.TextMessage, "4still")
		x.recv("still open", c)
	}},
	{name: "upgrade without probe", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		c := x.dial("dial", wsSIDQuery)
		x.send(c, websocket.TextMessage, "5")
		x.send(c, websocket.TextMessage, "4x")
		x.recv("echo", c)
	}},
	{name: "poll between probe and upgrade", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		c := x.dial("dial", wsSIDQuery)
		x.send(c, websocket.TextMessage, "2probe")
		x.recv("probe", c)
		x.get("GET", pollQuery)
	}},
	{name: "second upgrade while upgrading", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		c := x.dial("dial", wsSIDQuery)
		x.send(c, websocket.TextMessage, "2probe")
		x.recv("probe", c)
		c2 := x.dial("second dial", wsSIDQuery)
		x.recv("second WebSocket closed", c2)
		x.send(c, websocket.TextMessage, "5")
		x.send(c, websocket.TextMessage, "4x")
		x.recv("echo", c)
	}},
	{name: "upgrade timeout", cfg: likeConfig{UpgradeTimeout: 200}, run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		c := x.dial("dial", wsSIDQuery)
		x.send(c, websocket.TextMessage, "2probe")
		x.recv("probe", c)
		x.recv("timed out", c)
		x.waitFor("upgrade abandoned", func(s likeState) bool { return !s.Upgrading })
		x.post("POST", pollQuery, "4x")
		x.get("GET", pollQuery)
	}},
	{name: "unexpected packet during upgrade", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		c := x.dial("dial", wsSIDQuery)
		x.send(c, websocket.TextMessage, "2probe")
		x.recv("probe", c)
		x.send(c, websocket.TextMessage, "4dropped")
		x.recv("closed", c)
		x.waitFor("upgrade abandoned", func(s likeState) bool { return !s.Upgrading })
		x.post("POST", pollQuery, "4y")
		x.get("GET", pollQuery)
	}},
	{name: "GET parked at the upgrade", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		c := x.dial("dial", wsSIDQuery)
		parked := x.goGet("parked GET", pollQuery)
		x.waitParked()
		x.send(c, websocket.TextMessage, "5")
		parked()
		x.send(c, websocket.TextMessage, "4x")
		x.recv("echo", c)
	}, differ: map[string]likeDiff{
		// Node's polling transport closes with the close packet to the
		// parked GET; herald answers it as a GET that came after the
		// upgrade (see upgrade.go). A client that paused polling, as
		// engine.io-client does before "5", has no GET parked.
		"parked GET": {node: `200 "1" [Content-Type: text/plain; charset=UTF-8; Cache-Control: no-store]`, herald: `400 "{\"code\":3,\"message\":\"Bad request\"}" [Content-Type: application/json]`},
	}},
	{name: "POST in flight at the upgrade", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		c := x.dial("dial", wsSIDQuery)
		x.send(c, websocket.TextMessage, "2probe")
		x.recv("probe", c)
		post := x.rawPost(pollQuery, "4par", 10)
		x.waitFor("POST reading its body", func(s likeState) bool { return s.Posting })
		x.send(c, websocket.TextMessage, "5")
		x.rawResult("POST", post)
		x.send(c, websocket.TextMessage, "4x")
		x.recv("echo", c)
	}, differ: map[string]likeDiff{
		// Node destroys the POST's connection; herald answers it.
		"POST": {node: "no response", herald: `400 "" []`},
	}},
	{name: "websocket client closes", run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(eventually))
		x.recv("closed", c)
	}},
	{name: "lenient payloads", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("base64 without padding", pollQuery, "bAQ")
		x.get("GET", pollQuery)
	}, differ: map[string]likeDiff{
		// Node's Buffer.from(s, "base64") takes unpadded and malformed
		// base64; herald's decoder refuses it: "parse error".
		"GET": {node: `200 "bAQ==" [Content-Type: text/plain; charset=UTF-8; Cache-Control: no-store]`, herald: `400 "{\"code\":1,\"message\":\"Session ID unknown\"}" [Content-Type: application/json]`},
	}},
	{name: "invalid UTF-8 in a POST", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		for i, body := range []string{
			"4a\xffb", "4\xff\xfe", "4\xe2\x82b", "4\xe2\x82", "4\xf0\x9f\x98", "4\xf0\x9f\x98\x80\xed\xa0\x80",
			"4\xc0\xaf", "4\xe0\x80\xaf", "4\xf4\x90\x80\x80", "4\xf8\x88\x80\x80\x80", "4\xef\xbf\xbd\x80",
			"bAQID\x1e4\xff",
		} {
			x.post(fmt.Sprint("POST ", i), pollQuery, body)
			x.get(fmt.Sprint("GET ", i), pollQuery)
		}
	}},
	{name: "websocket session upgraded again", run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		c2 := x.dial("second WebSocket", wsSIDQuery)
		x.send(c2, websocket.TextMessage, "2probe")
		x.recv("probe", c2)
		x.send(c, websocket.TextMessage, "4first")
		x.recv("first still open", c)
	}, differ: map[string]likeDiff{
		// Node runs an upgrade from a WebSocket to another; herald
		// refuses it as it refuses one after an upgrade.
		"probe": {node: `text "3probe"`, herald: "close 1005"},
	}},
	{name: "polling with upgrade headers", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		if c := x.dial("dial", pollQuery); c != nil {
			x.recv("read", c)
		} else {
			x.record("read", "-")
		}
	}, differ: map[string]likeDiff{
		// Node completes the WebSocket handshake and closes it (polling
		// does not handle upgrades); herald refuses the handshake.
		"dial": {node: "101", herald: `400 "Bad request" [Content-Type: text/html]`},
		"read": {node: "close 1005", herald: "-"},
	}},
	{name: "websocket refused", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.dial("unknown sid", "EIO=4&transport=websocket&sid=nope")
		x.dial("unknown transport", "EIO=4&transport=flash")
		x.dial("protocol mismatch", "EIO=3&transport=websocket&sid=SID")
		c := x.dial("EIO 3", "EIO=3&transport=websocket")
		if c != nil {
			x.recv("EIO 3 read", c)
		} else {
			x.record("EIO 3 read", "-")
		}
	}, differ: map[string]likeDiff{
		// Node completes the handshake, then writes its 400 response
		// into the WebSocket; herald answers 400 before.
		"EIO 3":      {node: "101", herald: `400 "Unsupported protocol version" [Content-Type: text/html]`},
		"EIO 3 read": {node: "broken", herald: "-"},
	}},
	{name: "websocket not served", cfg: likeConfig{Transports: []string{"polling"}}, run: func(x *likeRun) {
		x.dial("dial", "EIO=4&transport=websocket")
	}, differ: map[string]likeDiff{
		// Without websocket in its transports Node has no upgrade
		// listener: the request is served as a poll would be.
		"dial": {node: `400 "{\"code\":0,\"message\":\"Transport unknown\"}" [Content-Type: application/json]`, herald: `400 "Transport unknown" [Content-Type: text/html]`},
	}},
	{name: "websocket invalid UTF-8", run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		x.send(c, websocket.TextMessage, "4\xff\xfe")
		x.recv("closed", c)
	}},
	{name: "websocket message too large", cfg: likeConfig{MaxHTTPBufferSize: 100}, run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		x.send(c, websocket.TextMessage, "4"+strings.Repeat("x", 99))
		x.recv("at the bound", c)
		x.send(c, websocket.BinaryMessage, strings.Repeat("y", 101))
		x.recv("past the bound", c)
	}},
	{name: "websocket parse error", run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		x.send(c, websocket.TextMessage, "x")
		x.recv("closed", c)
	}},
	{name: "websocket ping from the client", run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		x.send(c, websocket.TextMessage, "2")
		x.recv("closed", c)
	}},
	{name: "compression", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		big := "4" + strings.Repeat("héllo ", 200)
		for _, ae := range []string{"gzip", "deflate", "gzip, deflate, br", "deflate, gzip", "gzip;q=0.5, deflate", "*", "identity", "gzip;q=0, *"} {
			x.post("POST for "+ae, pollQuery, big)
			x.do("GET with "+ae, http.MethodGet, pollQuery, "", http.Header{"Accept-Encoding": {ae}})
		}
		x.post("POST small", pollQuery, "4small")
		x.do("GET small", http.MethodGet, pollQuery, "", http.Header{"Accept-Encoding": {"gzip"}})
	}},
	{name: "CORS", cfg: likeConfig{CORS: true}, run: func(x *likeRun) {
		origin := http.Header{"Origin": {"https://app.example"}}
		x.handshakeWith("handshake", handshakeQuery, origin)
		x.do("POST", http.MethodPost, pollQuery, "4x", origin)
		x.do("GET", http.MethodGet, pollQuery, "", origin)
		x.do("error", http.MethodGet, "EIO=4&transport=flash", "", origin)
		x.do("preflight", http.MethodOptions, handshakeQuery, "", http.Header{
			"Origin":                         {"https://app.example"},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"content-type,x-token"},
		})
		x.do("preflight without request headers", http.MethodOptions, handshakeQuery, "", origin)
	}},
	{name: "server closes a session, GET parked", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		parked := x.goGet("parked GET", pollQuery)
		x.waitParked()
		x.tg.closeSession(x.t, x.sid)
		parked()
		x.get("GET after", pollQuery)
	}},
	{name: "server closes a session, next GET", run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.post("POST", pollQuery, "4queued")
		x.tg.closeSession(x.t, x.sid)
		x.get("GET", pollQuery)
		x.get("next GET", pollQuery)
		x.get("GET after", pollQuery)
	}},
	{name: "server closes a websocket session", run: func(x *likeRun) {
		c := x.wsHandshake("handshake")
		x.send(c, websocket.TextMessage, "4last")
		x.recv("echo", c)
		x.tg.closeSession(x.t, x.sid)
		x.recv("closed", c)
	}},
	{name: "heartbeat", cfg: likeConfig{PingInterval: 100, PingTimeout: 5000}, run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.get("ping", pollQuery)
		x.post("pong", pollQuery, "3")
		x.get("next ping", pollQuery)
		c := x.wsHandshake("websocket handshake")
		x.recv("websocket ping", c)
		x.send(c, websocket.TextMessage, "3")
		x.recv("websocket next ping", c)
	}},
	{name: "ping timeout", cfg: likeConfig{PingInterval: 50, PingTimeout: 300}, run: func(x *likeRun) {
		x.handshake("handshake", handshakeQuery)
		x.get("ping", pollQuery)
		parked := x.goGet("parked GET", pollQuery)
		parked()
		x.get("GET after", pollQuery)
	}},
}
