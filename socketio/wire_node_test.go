package socketio_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// Differential tests of the wire: each runs one raw Engine.IO exchange
// (net/http and gorilla/websocket, no socket.io-client) against the
// reference Node server (socket.io 4.8 and engine.io 6.6,
// testdata/node-server.js) and against herald, many times over, and
// compares what the client saw, try by try, as short outcome strings. Where
// the protocol defines the answer, Node's outcomes are also checked against
// it, so that a reference that changes under us shows as such.

// wireUser is the user every differential test connects as (its own user
// per try where sockets of earlier tries could get in the way).
const wireUser = "alice"

// wireBarrier is a namespace that neither server lets a client join without
// auth (herald has no such namespace; node-server.js wants a user). A CONNECT
// to it is answered with a CONNECT_ERROR and changes nothing else: its
// answer tells that the session is still open.
const wireBarrier = "/wire-barrier"

type wirePingPayload struct {
	Try string `json:"try"`
}

// wirePing is the event TestWireEventRightAfterConnect sends. herald has a
// handler for it; node-server.js reports every event it gets.
var wirePing = events.Define[wirePingPayload]("wire_ping")

type wireSeqPayload struct {
	Seq int `json:"seq"`
}

// wireSeq numbers the events of TestWireUpgradeUnderLoad's stream.
var wireSeq = events.Define[wireSeqPayload]("wire_seq")

// wireServer is one side of a differential test.
type wireServer struct {
	name string // "Node" or "herald"
	url  string // base URL, "http://127.0.0.1:PORT"
	// auth is the handshake auth (the CONNECT payload) of user.
	auth func(user string) map[string]any
	// greets: the server sends the "authenticated" event right after the
	// CONNECT answer (herald does, node-server.js does not).
	greets bool
	// emit sends ev with payload to every socket of user and returns once
	// the server has taken it.
	emit func(ctx context.Context, user string, ev events.Event, payload any) error
	// ready waits within ctx until the server has put the socket that c
	// connected for user in the user's room.
	ready func(ctx context.Context, c *nodeclient.Client, user string) error
	// pinged waits within ctx for wire_ping {try} to reach the server.
	pinged func(ctx context.Context, try string) bool
	// http: its own connection pool, closed when the test ends.
	http *http.Client
}

// startWireServers starts a Node server (on its own Redis) and a herald
// Server, in that order.
func startWireServers(t *testing.T) []*wireServer {
	t.Helper()
	r := redistest.Start(t)
	ns := nodeclient.StartNodeServer(testCtx(t, 30*time.Second), t, nodeclient.NodeServerOptions{RedisURL: r.URL()})
	ts := startServer(t, socketio.Config{})
	pings := make(chan string, 64)
	must(t, socketio.On(ts.Server, wirePing, func(_ context.Context, _ *socketio.Socket, p wirePingPayload) error {
		select {
		case pings <- p.Try:
		default:
		}
		return nil
	}))
	node := &wireServer{
		name: "Node",
		url:  ns.URL,
		auth: func(user string) map[string]any { return map[string]any{"user": user} },
		emit: func(ctx context.Context, user string, ev events.Event, payload any) error {
			return ns.Emit(ctx, nodeclient.EmitRequest{User: user, Event: ev.Name(), Args: []any{payload}})
		},
		ready: func(ctx context.Context, _ *nodeclient.Client, user string) error {
			_, err := ns.WaitConnection(ctx, user, "")
			return err
		},
		pinged: func(ctx context.Context, try string) bool {
			_, err := ns.WaitFor(ctx, func(m nodeclient.Message) bool {
				if m.Type != "event" || m.Event != wirePing.Name() || len(m.Args) == 0 {
					return false
				}
				var p wirePingPayload
				return json.Unmarshal(m.Args[0], &p) == nil && p.Try == try
			})
			return err == nil
		},
	}
	herald := &wireServer{
		name:   "herald",
		url:    ts.URL,
		auth:   func(user string) map[string]any { return map[string]any{"token": ts.token(t, user)} },
		greets: true,
		emit: func(ctx context.Context, user string, ev events.Event, payload any) error {
			return ts.EmitToUser(ctx, user, ev, payload)
		},
		// The greeting comes once the socket is in its room.
		ready: func(ctx context.Context, c *nodeclient.Client, _ string) error {
			_, err := c.WaitEvent(ctx, events.Authenticated.Name())
			return err
		},
		pinged: func(ctx context.Context, try string) bool {
			for {
				select {
				case got := <-pings:
					if got == try {
						return true
					}
				case <-ctx.Done():
					return false
				}
			}
		},
	}
	servers := []*wireServer{node, herald}
	for _, s := range servers {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		s.http = &http.Client{Transport: tr}
	}
	return servers
}

// connectPacket is the CONNECT packet of user to "/".
func (s *wireServer) connectPacket(user string) string {
	b, err := json.Marshal(s.auth(user))
	if err != nil {
		panic(err)
	}
	return "40" + string(b)
}

// wireCompare runs try n times on each server, each try a subtest (whose
// cleanups end its sessions), and fails unless herald's tally of outcomes
// is Node's, and, when want is not empty, unless every one of Node's
// outcomes is want. A try that fails its subtest (a setup step went wrong)
// counts as "try failed".
func wireCompare(t *testing.T, servers []*wireServer, n int, want string, try func(t *testing.T, s *wireServer, i int) string) {
	t.Helper()
	tallies := make([]string, len(servers))
	for k, s := range servers {
		var outcomes []string
		for i := range n {
			outcome := "try failed"
			t.Run(fmt.Sprintf("%s/%d", s.name, i), func(t *testing.T) { outcome = try(t, s, i) })
			outcomes = append(outcomes, outcome)
		}
		tallies[k] = tally(outcomes)
	}
	var report []string
	for k, s := range servers {
		report = append(report, s.name+": "+tallies[k])
	}
	t.Log(strings.Join(report, "; "))
	if want != "" && tallies[0] != tally(slices.Repeat([]string{want}, n)) {
		t.Errorf("the reference server does not do what the test expects (%s), want %s x%d", report[0], want, n)
	}
	for k := 1; k < len(servers); k++ {
		if tallies[k] != tallies[0] {
			t.Errorf("%s differs from %s: %s", servers[k].name, servers[0].name, strings.Join(report, "; "))
		}
	}
}

// tally counts outcomes: "a x28, b x2", most frequent first.
func tally(outcomes []string) string {
	counts := map[string]int{}
	for _, o := range outcomes {
		counts[o]++
	}
	keys := make([]string, 0, len(counts))
	for o := range counts {
		keys = append(keys, o)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, o := range keys {
		parts[i] = fmt.Sprintf("%s x%d", o, counts[o])
	}
	return strings.Join(parts, ", ")
}

// answer is an HTTP response as an outcome: `200 "ok"`, or what went wrong
// ("no answer within 2s").
type answer struct {
	code int
	body string
	err  error
}

func (a answer) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("%d %q", a.code, abbreviate(a.body))
}

// abbreviate keeps outcome strings short: a long body shows its start and
// its length.
func abbreviate(s string) string {
	if len(s) <= 80 {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:40], len(s))
}

// pollSession is one long-polling Engine.IO session.
type pollSession struct {
	s   *wireServer
	url string // the session's polling URL
}

// handshake opens a long-polling session on s.
func (s *wireServer) handshake(t *testing.T) *pollSession {
	t.Helper()
	p := &pollSession{s: s, url: s.url + "/socket.io/?EIO=4&transport=polling"}
	a := p.do(t.Context(), http.MethodGet, "", 5*time.Second)
	var open struct{ Sid string }
	if a.err != nil || a.code != http.StatusOK || !strings.HasPrefix(a.body, "0") ||
		json.Unmarshal([]byte(a.body[1:]), &open) != nil || open.Sid == "" {
		t.Fatalf("%s: handshake = %v", s.name, a)
	}
	p.url += "&sid=" + open.Sid
	// The client's CLOSE, when the try has not closed the session.
	t.Cleanup(func() { p.do(context.Background(), http.MethodPost, "1", time.Second) })
	return p
}

// do sends one request of the session and reads the whole answer, which
// must come within d.
func (p *pollSession) do(ctx context.Context, method, body string, d time.Duration) answer {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.url, strings.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	return roundTrip(p.s.http, req, d)
}

func roundTrip(c *http.Client, req *http.Request, d time.Duration) answer {
	resp, err := c.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			return answer{code: resp.StatusCode, body: string(b)}
		}
	}
	if req.Context().Err() != nil {
		return answer{err: fmt.Errorf("no answer within %v", d)}
	}
	return answer{err: err}
}

// connect joins "/" as user: it POSTs the CONNECT packet and polls until
// the CONNECT answer (and herald's greeting) has come, so that nothing is
// pending afterwards. It returns "" then, else what went wrong, as an
// outcome: these polls, each sent as soon as the previous answer is read,
// are a try of what TestWireLargeResponseThenPoll tests.
func (p *pollSession) connect(t *testing.T, user string) string {
	t.Helper()
	if a := p.do(t.Context(), http.MethodPost, p.s.connectPacket(user), 5*time.Second); a.code != http.StatusOK || a.body != "ok" {
		t.Fatalf("%s: POST CONNECT = %v", p.s.name, a)
	}
	connected, greeted := false, !p.s.greets
	for !connected || !greeted {
		a := p.do(t.Context(), http.MethodGet, "", 5*time.Second)
		if a.code != http.StatusOK {
			return "GET after CONNECT " + a.String()
		}
		for packet := range strings.SplitSeq(a.body, "\x1e") {
			switch {
			case strings.HasPrefix(packet, "40{"):
				connected = true
			case strings.HasPrefix(packet, `42["authenticated"`):
				greeted = true
			case packet != "6": // a noop is harmless
				return "GET after CONNECT " + a.String()
			}
		}
	}
	return ""
}

// parkDelay is how long a GET is given to reach the server and park there
// once it has been written: neither server tells when it holds a poll, and
// on loopback either reads a request in well under a millisecond.
const parkDelay = 100 * time.Millisecond

// park sends a GET and returns, parkDelay after the request was written,
// the channel its answer will come on (within d of sending it).
func (p *pollSession) park(t *testing.T, d time.Duration) <-chan answer {
	t.Helper()
	wrote := make(chan struct{})
	ch := make(chan answer, 1)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	ctx = withWroteRequest(ctx, wrote)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		ch <- roundTrip(p.s.http, req, d)
	}()
	select {
	case <-wrote:
		time.Sleep(parkDelay)
	case a := <-ch:
		// Answered before it was written: an error, reported as the
		// outcome.
		ch <- a
	}
	return ch
}

// withWroteRequest returns ctx with a trace that closes wrote once the
// request has been written.
func withWroteRequest(ctx context.Context, wrote chan<- struct{}) context.Context {
	var once sync.Once
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(httptrace.WroteRequestInfo) { once.Do(func() { close(wrote) }) },
	})
}

// TestWireCloseWhilePolling: the client closes a session (Engine.IO CLOSE
// in a POST) while its GET is parked. Node's polling transport answers the
// parked GET with a noop before it closes (polling.onClose, "close pending
// poll request"), then the POST with "ok".
func TestWireCloseWhilePolling(t *testing.T) {
	servers := startWireServers(t)
	wireCompare(t, servers, 30, `GET 200 "6"; POST 200 "ok"`, func(t *testing.T, s *wireServer, i int) string {
		p := s.handshake(t)
		if out := p.connect(t, wireUser); out != "" {
			return out
		}
		parked := p.park(t, 3*time.Second)
		post := p.do(t.Context(), http.MethodPost, "1", 3*time.Second)
		return fmt.Sprintf("GET %v; POST %v", <-parked, post)
	})
}

// TestWireGetAfterUpgrade: once the client has sent the UPGRADE packet on
// the WebSocket, a GET of the session's long-polling transport is refused
// at once. The GET is sent right after the packet: Node reads the packet
// first (its bytes reached the server's socket first, and Node handles an
// UPGRADE packet in the tick it reads it), and its verify() then answers
// the GET 400 "Bad request" (TRANSPORT_MISMATCH).
func TestWireGetAfterUpgrade(t *testing.T) {
	servers := startWireServers(t)
	wireCompare(t, servers, 10, `GET 400 "{\"code\":3,\"message\":\"Bad request\"}"`, func(t *testing.T, s *wireServer, i int) string {
		p := s.handshake(t)
		if out := p.connect(t, wireUser); out != "" {
			return out
		}
		if out := p.upgrade(t); out != "" {
			return out
		}
		return fmt.Sprintf("GET %v", p.do(t.Context(), http.MethodGet, "", 2*time.Second))
	})
}

// upgrade opens a WebSocket for the session and upgrades to it: probe,
// its answer, then the UPGRADE packet. It returns "" then, else what went
// wrong, as an outcome.
func (p *pollSession) upgrade(t *testing.T) string {
	t.Helper()
	u := "ws" + strings.TrimPrefix(p.url, "http")
	u = strings.Replace(u, "transport=polling", "transport=websocket", 1)
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), u, nil)
	if err != nil {
		t.Fatalf("%s: WebSocket: %v", p.s.name, err)
	}
	t.Cleanup(func() { ws.Close() })
	must(t, ws.WriteMessage(websocket.TextMessage, []byte("2probe")))
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, msg, err := ws.ReadMessage()
	switch {
	case err != nil:
		return "probe not answered: " + closeReason(err)
	case string(msg) != "3probe":
		return fmt.Sprintf("probe answered %q", msg)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		return "UPGRADE: " + closeReason(err)
	}
	return ""
}

// wireBarrierAnswer sends a CONNECT to wireBarrier on ws and reads until
// its CONNECT_ERROR; it returns "" then, else what happened instead.
func wireBarrierAnswer(ws *websocket.Conn) string {
	if err := ws.WriteMessage(websocket.TextMessage, []byte("40"+wireBarrier+",")); err != nil {
		return "barrier: " + err.Error()
	}
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		switch {
		case err != nil:
			return "barrier not answered: " + closeReason(err)
		case strings.HasPrefix(string(msg), "44"+wireBarrier+","):
			return ""
		}
	}
}

// closeReason is a WebSocket read or write error as an outcome.
func closeReason(err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return err.Error()
}

// TestWireInvalidPost: a POST whose payload is not Engine.IO is read as a
// parser error, which closes the session: Node answers the POST with "ok"
// (it closes the session while reading it) and the next GET with "Session
// ID unknown".
func TestWireInvalidPost(t *testing.T) {
	servers := startWireServers(t)
	wireCompare(t, servers, 5, `POST 200 "ok"; GET 400 "{\"code\":1,\"message\":\"Session ID unknown\"}"`, func(t *testing.T, s *wireServer, i int) string {
		p := s.handshake(t)
		post := p.do(t.Context(), http.MethodPost, "abc", 2*time.Second)
		get := p.do(t.Context(), http.MethodGet, "", 2*time.Second)
		return fmt.Sprintf("POST %v; GET %v", post, get)
	})
}

// TestWireLargeResponseThenPoll: a client polls again the moment it has
// read an answer, on another connection as a browser may: the server must
// take the GET as the session's next poll, not as one overlapping the
// previous, and deliver the next event on it. Node clears the poll in the
// write's callback, in the same tick as the write, so no client can be
// faster. Each try is a fresh session that gets largeCycles pairs of
// answers in a row, each a large one (100 KiB, which net/http writes at
// once, past its buffer) then a small one (which it writes when the handler
// returns); the first poll comes right after the CONNECT answer and the
// greeting, and the last gets one more event.
func TestWireLargeResponseThenPoll(t *testing.T) {
	const largeCycles = 10
	servers := startWireServers(t)
	big := strings.Repeat("x", 100<<10)
	wireCompare(t, servers, 30, "ok", func(t *testing.T, s *wireServer, i int) string {
		user := fmt.Sprintf("large-%d", i)
		p := s.handshake(t)
		if out := p.connect(t, user); out != "" {
			return out
		}
		parked := p.park(t, 5*time.Second)
		what := "first poll"
		for k := range 2 * largeCycles {
			// The next GET goes on a connection opened beforehand, so that
			// nothing but the server stands between the end of one answer
			// and the next poll.
			next := p.dial(t)
			jobID, result := fmt.Sprintf("big-%d-%d", i, k), big
			if k%2 == 1 {
				jobID, result = fmt.Sprintf("small-%d-%d", i, k), ""
			}
			must(t, s.emit(t.Context(), user, events.JobCompleted, events.JobCompletedPayload{JobID: jobID, Result: result}))
			a := <-parked
			if a.code != http.StatusOK || !strings.Contains(a.body, `"`+jobID+`"`) || !strings.Contains(a.body, result) {
				return what + " " + a.String()
			}
			parked = next.send(5 * time.Second)
			what = "poll after a large answer"
			if k%2 == 1 {
				what = "poll after a small answer"
			}
		}
		jobID := fmt.Sprintf("last-%d", i)
		must(t, s.emit(t.Context(), user, events.JobCompleted, events.JobCompletedPayload{JobID: jobID}))
		if a := <-parked; a.code != http.StatusOK || !strings.Contains(a.body, `"`+jobID+`"`) {
			return what + " " + a.String()
		}
		return "ok"
	})
}

// rawPoll is a GET of a session on a TCP connection of its own, dialled in
// advance.
type rawPoll struct {
	conn net.Conn
	req  []byte
}

func (p *pollSession) dial(t *testing.T) *rawPoll {
	t.Helper()
	u, err := url.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", u.RequestURI(), u.Host)
	return &rawPoll{conn: conn, req: []byte(req)}
}

// send sends the GET and returns the channel its answer, which must come
// within d, will come on.
func (r *rawPoll) send(d time.Duration) <-chan answer {
	ch := make(chan answer, 1)
	_ = r.conn.SetDeadline(time.Now().Add(d))
	if _, err := r.conn.Write(r.req); err != nil {
		ch <- answer{err: err}
		return ch
	}
	go func() { ch <- r.read(d) }()
	return ch
}

func (r *rawPoll) read(d time.Duration) answer {
	resp, err := http.ReadResponse(bufio.NewReader(r.conn), nil)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return answer{err: fmt.Errorf("no answer within %v", d)}
	}
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{err: err}
	}
	return answer{code: resp.StatusCode, body: string(b)}
}

// TestWireEventRightAfterConnect: a client sends an event of "/" right
// behind its CONNECT, on a WebSocket and on long-polling:
//
//   - "after the answer": the moment the CONNECT answer arrives, before
//     anything else the server may send (herald's greeting). Node registers
//     the socket with the connection in the same tick as it writes the
//     answer, so the event is handled.
//   - "together": in the same TCP write as the CONNECT (two frames), or in
//     the same POST, without waiting for the answer (socket.io-client never
//     does this: it buffers emits until connected). Node reads the event
//     before the CONNECT's middleware has run, finds no socket for "/" and
//     closes the connection as an invalid state (socket.io's
//     Client.ondecoded): no CONNECT answer, the event is lost. herald
//     deliberately differs (docs/protocol.md): it handles a CONNECT
//     before it reads the next packet, so the event is handled; the test
//     asserts each server's own outcome.
//
// The outcome: whether the CONNECT was answered, whether the session is
// still open (a CONNECT to wireBarrier is answered), whether the event
// reached the server.
func TestWireEventRightAfterConnect(t *testing.T) {
	servers := startWireServers(t)
	const handled = "connected, open, event handled"
	const lost = "no CONNECT answer, closed, event lost"
	for _, tc := range []struct {
		name       string
		n          int
		want       string
		heraldWant string // when herald deliberately differs from Node
		together   bool
		try        func(t *testing.T, s *wireServer, try string, together bool) string
	}{
		{"websocket/after the answer", 30, handled, "", false, eventTryWS},
		{"polling/after the answer", 30, handled, "", false, eventTryPolling},
		{"websocket/together", 5, lost, handled, true, eventTryWS},
		{"polling/together", 5, lost, handled, true, eventTryPolling},
	} {
		t.Run(tc.name, func(t *testing.T) {
			try := func(t *testing.T, s *wireServer, i int) string {
				return tc.try(t, s, fmt.Sprintf("%s-%d", tc.name, i), tc.together)
			}
			if tc.heraldWant == "" {
				wireCompare(t, servers, tc.n, tc.want, try)
				return
			}
			for _, s := range servers {
				want := tc.want
				if s.name == "herald" {
					want = tc.heraldWant
				}
				wireCompare(t, []*wireServer{s}, tc.n, want, try)
			}
		})
	}
}

// wirePingPacket is the EVENT packet of wire_ping {try}.
func wirePingPacket(try string) []byte {
	return fmt.Appendf(nil, `42["%s",{"try":%q}]`, wirePing.Name(), try)
}

func eventTryWS(t *testing.T, s *wireServer, try string, together bool) string {
	ws := s.dialWS(t)
	connect := []byte(s.connectPacket(wireUser))
	if together {
		// One write, so that the server reads both frames at once.
		if _, err := ws.NetConn().Write(slices.Concat(clientFrame(connect), clientFrame(wirePingPacket(try)))); err != nil {
			t.Fatal(err)
		}
	} else {
		must(t, ws.WriteMessage(websocket.TextMessage, connect))
	}
	connected, greeted := false, !s.greets
	var state string
	_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
	for state == "" && (!connected || !greeted) {
		_, msg, err := ws.ReadMessage()
		switch {
		case err != nil:
			state = closeReason(err)
		case strings.HasPrefix(string(msg), "40{"):
			connected = true
			if together {
				break
			}
			if err := ws.WriteMessage(websocket.TextMessage, wirePingPacket(try)); err != nil {
				state = closeReason(err)
			}
		case strings.HasPrefix(string(msg), `42["authenticated"`):
			greeted = true
		}
	}
	if state == "" {
		state = wireStateWS(ws)
	}
	return eventOutcome(t, s, try, connected, state)
}

func eventTryPolling(t *testing.T, s *wireServer, try string, together bool) string {
	p := s.handshake(t)
	body := s.connectPacket(wireUser)
	if together {
		body += "\x1e" + string(wirePingPacket(try))
	}
	if a := p.do(t.Context(), http.MethodPost, body, 2*time.Second); a.code != http.StatusOK {
		return "POST " + a.String()
	}
	connected, greeted := false, !s.greets
	var state string
	for state == "" && (!connected || !greeted) {
		a := p.do(t.Context(), http.MethodGet, "", 2*time.Second)
		if a.code != http.StatusOK {
			state = "GET " + a.String()
			break
		}
		for packet := range strings.SplitSeq(a.body, "\x1e") {
			switch {
			case packet == "1":
				state = "closed"
			case strings.HasPrefix(packet, "40{"):
				connected = true
				if together {
					break
				}
				if a := p.do(t.Context(), http.MethodPost, string(wirePingPacket(try)), 2*time.Second); a.code != http.StatusOK {
					state = "POST event " + a.String()
				}
			case strings.HasPrefix(packet, `42["authenticated"`):
				greeted = true
			}
		}
	}
	if state == "" {
		state = p.wireState(t)
	}
	return eventOutcome(t, s, try, connected, state)
}

// eventOutcome waits for the event to reach the server: up to 5 s when
// the session is open, where it is expected, and 1 s otherwise, where it is
// not (neither server handles an event of a connection it has closed
// later than that).
func eventOutcome(t *testing.T, s *wireServer, try string, connected bool, state string) string {
	d := 5 * time.Second
	if state != "open" {
		d = time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	handled := "event lost"
	if s.pinged(ctx, try) {
		handled = "event handled"
	}
	answer := "no CONNECT answer"
	if connected {
		answer = "connected"
	}
	return fmt.Sprintf("%s, %s, %s", answer, state, handled)
}

func wireStateWS(ws *websocket.Conn) string {
	if out := wireBarrierAnswer(ws); out != "" {
		return out
	}
	return "open"
}

func (p *pollSession) wireState(t *testing.T) string {
	if a := p.do(t.Context(), http.MethodPost, "40"+wireBarrier+",", 2*time.Second); a.code != http.StatusOK {
		return "barrier POST " + a.String()
	}
	for {
		a := p.do(t.Context(), http.MethodGet, "", 2*time.Second)
		if a.code != http.StatusOK {
			return "barrier GET " + a.String()
		}
		for packet := range strings.SplitSeq(a.body, "\x1e") {
			switch {
			case packet == "1":
				return "closed"
			case strings.HasPrefix(packet, "44"+wireBarrier+","):
				return "open"
			}
		}
	}
}

// dialWS opens a WebSocket session on s, past its OPEN packet.
func (s *wireServer) dialWS(t *testing.T) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(s.url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatalf("%s: WebSocket: %v", s.name, err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0{") {
		t.Fatalf("%s: open: %q %v", s.name, msg, err)
	}
	return ws
}

// clientFrame is a masked WebSocket text frame as a client sends it (RFC
// 6455 5.2), for writing several in one TCP write.
func clientFrame(payload []byte) []byte {
	var f []byte
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x81, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x81, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("clientFrame: payload too large")
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// TestWireUpgradeUnderLoad: socket.io-client connects over long-polling and
// upgrades to WebSocket while the server emits a steady stream to its user:
// every event arrives exactly once and in order, and the upgrade completes.
// A proxy in front of each server holds the upgrade request until the
// stream runs, and the stream goes on until the client has upgraded, then
// for upgradeTail more events, so that the upgrade lands in its middle.
func TestWireUpgradeUnderLoad(t *testing.T) {
	const (
		upgradeHead = 50   // events before the upgrade request may go through
		upgradeTail = 50   // events after the client reported the upgrade
		maxEvents   = 2000 // a try without an upgrade by then fails
	)
	servers := startWireServers(t)
	holds := make(map[*wireServer]*upgradeHold, len(servers))
	for _, s := range servers {
		holds[s] = startUpgradeHold(t, s.url)
	}
	wireCompare(t, servers, 10, "ok", func(t *testing.T, s *wireServer, i int) string {
		ctx := testCtx(t, 20*time.Second)
		user := fmt.Sprintf("upgrade-%d", i)
		hold := holds[s]
		release := hold.arm()
		defer release()
		c := nodeclient.Start(t, nodeclient.Options{URL: hold.url, Auth: s.auth(user)})
		if m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" }); err != nil || m.Type != "connect" {
			t.Fatalf("%s: connect: %v %v", s.name, m, err)
		}
		must(t, s.ready(ctx, c, user))
		upgraded := make(chan struct{})
		go func() {
			if _, err := c.WaitType(ctx, "upgrade"); err == nil {
				close(upgraded)
			}
		}()
		n, tail := 0, -1
		for tail != 0 {
			if n == maxEvents {
				return "no upgrade"
			}
			n++
			must(t, s.emit(ctx, user, wireSeq, wireSeqPayload{Seq: n}))
			switch {
			case n == upgradeHead:
				release()
			case tail > 0:
				tail--
			case tail < 0:
				select {
				case <-upgraded:
					tail = upgradeTail
					t.Logf("the client upgraded after event %d of the stream", n)
				default:
				}
			}
			// A steady stream, not a burst.
			time.Sleep(time.Millisecond)
		}
		for want := 1; want <= n; want++ {
			m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool {
				return m.Type == "event" && m.Event == wireSeq.Name() || m.Type == "disconnect"
			})
			if err != nil {
				return fmt.Sprintf("got %d of %d events", want-1, n)
			}
			var p wireSeqPayload
			switch {
			case m.Type == "disconnect":
				return fmt.Sprintf("disconnected (%s) after %d of %d events", m.Reason, want-1, n)
			case len(m.Args) == 0 || json.Unmarshal(m.Args[0], &p) != nil:
				return fmt.Sprintf("event %s", m)
			case p.Seq != want:
				return fmt.Sprintf("event %d where %d was due", p.Seq, want)
			}
		}
		return "ok"
	})
}

// upgradeHold is a reverse proxy in front of a server that holds WebSocket
// requests of an existing session (upgrades) while armed.
type upgradeHold struct {
	url string
	mu  sync.Mutex
	ch  chan struct{} // closed: upgrades go through
}

func startUpgradeHold(t *testing.T, target string) *upgradeHold {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = tr
	proxy.FlushInterval = -1
	h := &upgradeHold{ch: make(chan struct{})}
	close(h.ch)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Get("transport") == "websocket" && q.Get("sid") != "" {
			h.mu.Lock()
			ch := h.ch
			h.mu.Unlock()
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// arm holds upgrades until the returned release is called (any number of
// times).
func (h *upgradeHold) arm() (release func()) {
	ch := make(chan struct{})
	h.mu.Lock()
	h.ch = ch
	h.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}
