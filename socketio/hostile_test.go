package socketio_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// Hostile clients: each test pins a bound the server keeps whatever one
// client does (Config.MaxPayloadPackets, PollBodyTimeout, MaxBufferedBytes,
// HandshakeRate, EventRate), as the reference server (Node's engine.io and
// socket.io) does where it has one.
//
// Memory is measured in-process (markHeap). A flood is bounded by what the
// whole process allocated while it was handled (MemStats.TotalAlloc): that
// count grows with every allocation whenever the GC runs, so it is the same
// from run to run, and it bounds how far the heap can have grown. A queue
// is bounded by what is still live after a GC once the flood is over. The
// limits are tens of MB where an unbounded server takes hundreds: the race
// detector, under which the same work allocates up to twice as much, does
// not change the outcome.

// bigAckEvent is acknowledged with bigAck, 16 KiB.
var bigAckEvent = events.Define[echoPayload]("hostile_big")

var bigAck = strings.Repeat("b", 16<<10)

const mb = 1 << 20

// heapMark is the process's heap at one moment, after a GC.
type heapMark struct{ allocated, live uint64 }

func markHeap() heapMark {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapMark{allocated: m.TotalAlloc, live: m.HeapAlloc}
}

// since reports how many bytes the process allocated after m, and how many
// more are live now (after a GC) than at m.
func (m heapMark) since() (allocated, retained int64) {
	now := markHeap()
	return int64(now.allocated - m.allocated), int64(now.live) - int64(m.live)
}

func sizeMB(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/mb) }

// timedOut reports whether err is a read deadline passing (gorilla/websocket
// keeps the net.Error, not the os.ErrDeadlineExceeded below it).
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// slowConsumers returns Server.SlowConsumers.
func slowConsumers(t *testing.T, ts *testServer) int64 {
	t.Helper()
	return ts.SlowConsumers()
}

// polled is the answer to a long-polling GET: a body of hundreds of MB is
// counted, not kept.
type polled struct {
	code       int
	head, tail string // the first KiB of the body, its last 16 bytes
	n          int64  // the body's length
}

func (p *polled) Write(b []byte) (int, error) {
	if len(p.head) < 1<<10 {
		p.head += string(b[:min(len(b), 1<<10-len(p.head))])
	}
	p.tail += string(b[max(0, len(b)-16):])
	p.tail = p.tail[max(0, len(p.tail)-16):]
	p.n += int64(len(b))
	return len(b), nil
}

// poll sends one long-polling GET.
func poll(t *testing.T, url string) polled {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	p := polled{code: resp.StatusCode}
	if _, err := io.Copy(&p, resp.Body); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return p
}

// closedSession reports whether p is the answer to a poll of a closed
// session: 400 "Session ID unknown", or 200 with the close packet last
// when the close waited for that poll (and at most maxBody bytes before).
func (p polled) closedSession(maxBody int64) bool {
	return p.code == http.StatusBadRequest && strings.Contains(p.head, "Session ID unknown") ||
		p.code == http.StatusOK && p.n <= maxBody && (p.tail == "1" || strings.HasSuffix(p.tail, "\x1e1"))
}

func (p polled) String() string {
	return fmt.Sprintf("%d with %d bytes (%.40q...%q)", p.code, p.n, p.head, p.tail)
}

// sessionGone fails unless the long-polling session at url is closed.
func sessionGone(t *testing.T, url string) {
	t.Helper()
	if p := poll(t, url); !p.closedSession(16) {
		t.Errorf("the session is still open: GET = %v", p)
	}
}

// pollConnect opens a long-polling session, joins "/" as userID and returns
// the session's URL. It reads nothing from the session: the CONNECT answer
// and the greeting wait in the session's buffer.
func pollConnect(t *testing.T, ts *testServer, userID string) string {
	t.Helper()
	url := pollURL(ts, "EIO=4&transport=polling&sid="+pollHandshake(t, ts))
	if code, body := httpDo(t, http.MethodPost, url, fmt.Sprintf(`40{"token":%q}`, ts.token(t, userID))); code != http.StatusOK || body != "ok" {
		t.Fatalf("POST CONNECT = %d %q", code, body)
	}
	eventually(t, "the socket connected", func() bool { return ts.SocketCount() == 1 })
	// The client's close packet, or Shutdown waits for a poll to carry
	// the server's.
	t.Cleanup(func() { _, _, _ = post(url, "1") })
	return url
}

// payload joins packets as one long-polling body.
func payload(n int, packet func(i int) string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(0x1e)
		}
		b.WriteString(packet(i))
	}
	return b.String()
}

// post sends one long-polling POST; unlike httpDo it may run on any
// goroutine.
func post(url, body string) (int, string, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return resp.StatusCode, string(b), nil
}

// TestHostilePacketFlood: one POST of an unauthenticated session holding
// half a million packets, which an unbounded server decodes all at once
// into hundreds of MB. More than Config.MaxPayloadPackets
// (DefaultMaxPayloadPackets here) in one POST answers 400 and closes the
// session, the packets past the limit never decoded.
func TestHostilePacketFlood(t *testing.T) {
	// Idle polls end with a ping: a session that stayed open is seen at
	// once, not after 25 s.
	ts := startServer(t, socketio.Config{PingInterval: 500 * time.Millisecond})
	// 999 KB each, under MaxHTTPBufferSize.
	noops := payload(499_500, func(int) string { return "6" })
	early := payload(90_818, func(int) string { return `42["x",{}]` })
	for _, body := range []string{noops, early} {
		if len(body) >= socketio.DefaultMaxHTTPBufferSize || strings.Count(body, "\x1e") < socketio.DefaultMaxPayloadPackets {
			t.Fatalf("a flood of %d bytes must be under MaxHTTPBufferSize and over MaxPayloadPackets", len(body))
		}
	}
	// perPOST bounds what handling one such POST may allocate: its body,
	// read once or twice, and some more.
	const perPOST = 16 * mb

	for _, tc := range []struct {
		name     string
		sessions int
		body     string
		refused  bool // the POST answers 400; else 400 or "ok"
	}{
		{"noops", 1, noops, true},
		{"noops on 4 sessions at once", 4, noops, true},
		// An event for a namespace the session has not joined closes the
		// session, as on the reference server: the first one does, and
		// the rest are dropped, so the POST may answer "ok" as Node's
		// does.
		{"events before CONNECT", 1, early, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			urls := make([]string, tc.sessions)
			for i := range urls {
				urls[i] = pollURL(ts, "EIO=4&transport=polling&sid="+pollHandshake(t, ts))
			}
			before := markHeap()
			var wg sync.WaitGroup
			for _, url := range urls {
				wg.Go(func() {
					code, resp, err := post(url, tc.body)
					switch {
					case code == http.StatusBadRequest:
					case tc.refused:
						t.Errorf("POST of %d packets = %d %q %v, want 400", strings.Count(tc.body, "\x1e")+1, code, resp, err)
					case code != http.StatusOK:
						t.Errorf("POST of %d packets = %d %q %v, want 400 or 200", strings.Count(tc.body, "\x1e")+1, code, resp, err)
					}
				})
			}
			wg.Wait()
			allocated, retained := before.since()
			t.Logf("%d concurrent POSTs of %d packets: %s allocated, %s retained", tc.sessions, strings.Count(tc.body, "\x1e")+1, sizeMB(allocated), sizeMB(retained))
			if limit := int64(tc.sessions) * perPOST; allocated > limit {
				t.Errorf("%d concurrent POSTs of %d packets allocated %s, want at most %s", tc.sessions, strings.Count(tc.body, "\x1e")+1, sizeMB(allocated), sizeMB(limit))
			}
			for _, url := range urls {
				sessionGone(t, url)
			}
		})
	}

	t.Run("events before CONNECT, under the packet cap", func(t *testing.T) {
		// The first event closes the session, so the CONNECT that ends the
		// POST is never handled.
		body := payload(5_000, func(int) string { return `42["x",{}]` }) + "\x1e" + fmt.Sprintf(`40{"token":%q}`, ts.token(t, "alice"))
		url := pollURL(ts, "EIO=4&transport=polling&sid="+pollHandshake(t, ts))
		code, resp := httpDo(t, http.MethodPost, url, body)
		t.Logf("POST = %d %q", code, resp)
		sessionGone(t, url)
		if n := ts.SocketCount(); n != 0 {
			t.Errorf("%d sockets connected by a CONNECT after an event that closes the session", n)
		}
	})
}

// stalledPost sends on conn a POST to path that announces declared bytes
// of body but sends only body, then waits until conn's deadline for the
// server's answer. It returns the answer's status, or 0 and why there is
// none: the server closed the connection (io.EOF, a reset), or the
// deadline passed (os.ErrDeadlineExceeded), the request still being read.
func stalledPost(conn net.Conn, path string, declared int, body []byte) (int, error) {
	// A write error is the server closing the connection: its answer, if
	// it sent one, is still there to read.
	_, _ = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: %d\r\n\r\n", path, conn.RemoteAddr(), declared)
	_, _ = conn.Write(body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// dialUntil dials addr with a deadline for everything on the connection,
// closed when the test ends.
func dialUntil(t *testing.T, addr string, deadline time.Time) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(deadline)
	return conn
}

// TestHostileConcurrentPosts: POSTs whose body never ends. A POST has
// Config.PollBodyTimeout to deliver its body; past it the request is cut
// and the session closed. A session reads one POST at a time: a second one
// while the first is being read answers 400 at once and closes the session,
// as on the reference server. Neither may keep a megabyte per request.
func TestHostileConcurrentPosts(t *testing.T) {
	ts := startServer(t, socketio.Config{PollBodyTimeout: time.Second, PingInterval: 500 * time.Millisecond})
	addr := strings.TrimPrefix(ts.URL, "http://")
	// One message packet, announced at the largest size allowed, stalled
	// 10 KB short: nothing in it can be refused before it ends.
	const declared = socketio.DefaultMaxHTTPBufferSize
	body := []byte("4" + strings.Repeat("a", 990_000-1))
	const window = 8 * time.Second // PollBodyTimeout, 8 times over

	t.Run("one stalled POST", func(t *testing.T) {
		sid := pollHandshake(t, ts)
		conn := dialUntil(t, addr, time.Now().Add(window))
		code, err := stalledPost(conn, "/socket.io/?EIO=4&transport=polling&sid="+sid, declared, body)
		t.Logf("stalled POST: %d %v", code, err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a POST stalled 10 KB short is still being read after %v (PollBodyTimeout 1 s)", window)
		}
		sessionGone(t, pollURL(ts, "EIO=4&transport=polling&sid="+sid))
	})

	t.Run("200 on one session", func(t *testing.T) {
		const posts = 200
		sid := pollHandshake(t, ts)
		path := "/socket.io/?EIO=4&transport=polling&sid=" + sid
		before := markHeap()
		deadline := time.Now().Add(window)
		conns := make([]net.Conn, posts)
		for i := range conns {
			conns[i] = dialUntil(t, addr, deadline)
		}
		codes := make([]int, posts)
		errs := make([]error, posts)
		var wg sync.WaitGroup
		for i, conn := range conns {
			wg.Go(func() { codes[i], errs[i] = stalledPost(conn, path, declared, body) })
		}
		wg.Wait()
		// Our ends of the connections are still open: what the server
		// still reads is live here.
		allocated, retained := before.since()
		for _, conn := range conns {
			conn.Close()
		}
		var answered400, closed, open int
		others := map[int]int{}
		for i := range posts {
			switch {
			case codes[i] == http.StatusBadRequest:
				answered400++
			case errors.Is(errs[i], os.ErrDeadlineExceeded):
				open++
			case errs[i] != nil:
				closed++
			default:
				others[codes[i]]++
			}
		}
		t.Logf("%d concurrent stalled POSTs: %d answered 400, %d closed without an answer, %d still read after %v, other answers %v; %s allocated, %s retained while they stalled",
			posts, answered400, closed, open, window, others, sizeMB(allocated), sizeMB(retained))
		if open > 0 {
			t.Errorf("%d of %d stalled POSTs still being read after %v (PollBodyTimeout 1 s)", open, posts, window)
		}
		if answered400 < posts-1 {
			t.Errorf("%d of %d concurrent POSTs answered 400, want all but the one being read", answered400, posts)
		}
		for code := range others {
			if code < 400 {
				t.Errorf("stalled POSTs answered %v, want errors", others)
				break
			}
		}
		if retained > 32*mb {
			t.Errorf("%d stalled POSTs of 990 KB kept %s of heap, want at most 32 MB (one is read at a time)", posts, sizeMB(retained))
		}
		sessionGone(t, pollURL(ts, "EIO=4&transport=polling&sid="+sid))
	})
}

// TestHostilePollingSlowConsumer: a long-polling client that never polls
// while the server has more and more to send it, acknowledgements of its
// own events or emits to its user. Once more than Config.MaxBufferedBytes
// wait for it, the session is closed and counted in Server.
// SlowConsumers; the poll that finally comes gets at most about
// MaxBufferedBytes, or finds the session gone.
func TestHostilePollingSlowConsumer(t *testing.T) {
	const maxBuffered = 64 << 10
	const n = 4_000 // of 16 KiB each: 64 MB for an unbounded queue
	for _, tc := range []struct {
		name  string
		flood func(t *testing.T, ts *testServer, url string) (done func() bool)
	}{
		{"acks", func(t *testing.T, ts *testServer, url string) func() bool {
			var handled atomic.Int64
			must(t, socketio.OnAck(ts.Server, bigAckEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
				handled.Add(1)
				return echoPayload{Text: bigAck}, nil
			}))
			body := payload(n, func(i int) string { return fmt.Sprintf(`42%d["hostile_big",{"text":"x"}]`, i) })
			code, resp := httpDo(t, http.MethodPost, url, body)
			t.Logf("POST of %d acked events = %d %q", n, code, resp)
			return func() bool { return handled.Load() == n }
		}},
		{"emits", func(t *testing.T, ts *testServer, url string) func() bool {
			ctx := testCtx(t, 30*time.Second)
			for i := range n {
				must(t, ts.EmitToUser(ctx, "alice", events.JobFailed, events.JobFailedPayload{JobID: fmt.Sprint(i), Error: bigAck}))
			}
			return func() bool { return true }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, socketio.Config{MaxBufferedBytes: maxBuffered, EventRate: -1})
			url := pollConnect(t, ts, "alice")
			before := markHeap()
			done := tc.flood(t, ts, url)
			// Every handler has run, or the session was closed before.
			eventually(t, "the flood handled", func() bool { return done() || slowConsumers(t, ts) > 0 })
			time.Sleep(100 * time.Millisecond) // the last ack leaves its handler
			allocated, retained := before.since()
			t.Logf("%d × 16 KiB for a client that never polls: %s allocated, %s retained", n, sizeMB(allocated), sizeMB(retained))
			if retained > 16*mb {
				t.Errorf("the server kept %s for a client that never polls, want at most 16 MB (MaxBufferedBytes is 64 KiB)", sizeMB(retained))
			}
			p := poll(t, url)
			t.Logf("the late poll: %v", p)
			if !p.closedSession(2 * maxBuffered) {
				t.Fatalf("the late poll = %v, want 400, or at most 128 KiB ending with the close packet", p)
			}
			eventually(t, "the session closed as a slow consumer", func() bool { return slowConsumers(t, ts) == 1 })
		})
	}
}

// TestHostileWebSocketSlowConsumer: a WebSocket client that stops reading
// while its user gets emits. Once more than Config.MaxBufferedBytes wait to
// be written to it, its connection is closed and counted in
// Server.SlowConsumers; meanwhile another user's client gets every
// one of its own events.
func TestHostileWebSocketSlowConsumer(t *testing.T) {
	const maxBuffered = 64 << 10
	const n = 4_000 // of 16 KiB each: 64 MB, far past the kernel's buffers (a few MB)
	ts := startServer(t, socketio.Config{MaxBufferedBytes: maxBuffered})
	ctx := testCtx(t, 30*time.Second)
	// alice's client reads nothing past the greeting. Its receive buffer
	// stays at the kernel's default, which grows only as the client reads:
	// with the server's send buffer, a few MB at most before the server's
	// writes back up. (Shrinking it with SetReadBuffer once connected makes
	// the kernel drop what it had let the server send: the retransmissions
	// back off for many seconds, and the test sees a connection that
	// neither sends nor closes.)
	alice := rawConnect(t, ts, ts.token(t, "alice"))
	bob := rawConnect(t, ts, ts.token(t, "bob"))
	var bobGot atomic.Int64
	bobDone := make(chan error, 1)
	go func() {
		for {
			_ = bob.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, msg, err := bob.ReadMessage()
			if err != nil {
				bobDone <- err
				return
			}
			switch {
			case string(msg) == "2":
				_ = bob.WriteMessage(websocket.TextMessage, []byte("3"))
			case strings.HasPrefix(string(msg), `42["job_progress"`):
				bobGot.Add(1)
			}
		}
	}()
	before := markHeap()
	for i := range n {
		must(t, ts.EmitToUser(ctx, "alice", events.JobFailed, events.JobFailedPayload{JobID: fmt.Sprint(i), Error: bigAck}))
		must(t, ts.EmitToUser(ctx, "bob", events.JobProgress, events.JobProgressPayload{JobID: fmt.Sprint(i)}))
	}
	eventually(t, "bob's events", func() bool { return bobGot.Load() == n })
	allocated, retained := before.since()
	t.Logf("%d × 16 KiB for a client that stopped reading: %s allocated, %s retained", n, sizeMB(allocated), sizeMB(retained))
	if retained > 16*mb {
		t.Errorf("the server kept %s for a client that stopped reading, want at most 16 MB (MaxBufferedBytes is 64 KiB)", sizeMB(retained))
	}
	eventually(t, "alice closed as a slow consumer", func() bool { return slowConsumers(t, ts) == 1 })
	// alice's client reads what the kernel held, then the end of the
	// connection.
	_ = alice.SetReadDeadline(time.Now().Add(10 * time.Second))
	var read int
	for {
		_, msg, err := alice.ReadMessage()
		if err != nil {
			t.Logf("alice's client read %d bytes, then: %v", read, err)
			if timedOut(err) {
				t.Error("the slow consumer's connection is still open")
			}
			break
		}
		read += len(msg)
	}
	select {
	case err := <-bobDone:
		t.Errorf("bob's connection ended: %v", err)
	default:
	}
}

// TestHostileHandshakeFlood: an address that holds
// Config.MaxPendingConnections connections that have joined no namespace
// gets 429, with Retry-After and the JSON error, before an Engine.IO
// session (long-polling or WebSocket) is created for it. The flood's
// polling sessions never CONNECT, so they hold their place until the
// connect timeout; its WebSockets close at once and give theirs back.
func TestHostileHandshakeFlood(t *testing.T) {
	const pending, flood, workers = 50, 5_000, 16
	ts := startServer(t, socketio.Config{MaxPendingConnections: pending})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	t.Cleanup(client.CloseIdleConnections)
	wsURL := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	ctx := testCtx(t, 10*time.Second) // the flood stops there, whatever was sent

	var next, opened, polls, limited atomic.Int64
	var mu sync.Mutex
	var wrong []string // answers that are neither a session nor a proper 429
	bad := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(wrong) < 5 {
			wrong = append(wrong, fmt.Sprintf(format, args...))
		}
	}
	// refused checks a 429 answer.
	refused := func(kind string, h http.Header, body []byte) {
		var e struct {
			Success *bool
			Error   struct{ Code, Message string }
		}
		if json.Unmarshal(body, &e) != nil || e.Success == nil || *e.Success || e.Error.Code != socketio.CodeRateLimited || e.Error.Message == "" || h.Get("Retry-After") == "" {
			bad("%s: 429 with Retry-After %q and %q", kind, h.Get("Retry-After"), body)
		}
		limited.Add(1)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= flood && ctx.Err() == nil; i = next.Add(1) {
				if i%10 == 0 { // one in ten a WebSocket
					ws, resp, err := websocket.DefaultDialer.DialContext(ctx, wsURL, nil)
					switch {
					case err == nil:
						ws.Close()
						opened.Add(1)
					case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
						b, _ := io.ReadAll(resp.Body)
						refused("WebSocket", resp.Header, b)
					case resp != nil:
						bad("WebSocket: %d", resp.StatusCode)
					case ctx.Err() == nil:
						bad("WebSocket: %v", err)
					}
					continue
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/socket.io/?EIO=4&transport=polling", nil)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						bad("polling: %v", err)
					}
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK && strings.HasPrefix(string(b), "0{"):
					opened.Add(1)
					polls.Add(1)
				case resp.StatusCode == http.StatusTooManyRequests:
					refused("polling", resp.Header, b)
				default:
					bad("polling: %d %q", resp.StatusCode, b)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The check comes before the count: each worker may pass it once
	// with its handshake in flight.
	const allowed = pending + workers
	t.Logf("%d handshakes in %v: %d sessions (%d polling), %d refused with 429; at most %d polling sessions allowed",
		opened.Load()+limited.Load(), elapsed.Round(time.Millisecond), opened.Load(), polls.Load(), limited.Load(), allowed)
	if polls.Load() > allowed {
		t.Errorf("%d polling sessions held by one address, want at most %d (MaxPendingConnections %d)", polls.Load(), allowed, pending)
	}
	if limited.Load() < flood/2 {
		t.Errorf("only %d of %d handshakes refused", limited.Load(), flood)
	}
	if len(wrong) > 0 {
		t.Errorf("unexpected answers: %q", wrong)
	}
}

// TestHostileRecoveryOtherUsersPid: a client that presents another user's
// private session id with a valid token of its own gets connect_error
// {code: "recovery_refused"}, never the CONNECT answer of the victim's
// session (its sid and pid), however the recovery and the token check
// interleave; the victim still recovers her session afterwards.
func TestHostileRecoveryOtherUsersPid(t *testing.T) {
	r := redistest.Start(t)
	client := r.Client(t)
	a, b := recoveryNodes(t, client)
	sid, pid, offset := awaySession(t, a, client)
	const tries = 30
	var leaked, refused int
	var others []string
	for i := range tries {
		node := []*testServer{a, b}[i%2] // the node the session was on, and another
		mallory := dialWS(t, node)
		mallory.send(fmt.Sprintf(`40{"token":%q,"pid":%q,"offset":%q}`, node.token(t, "mallory"), pid, offset))
		msg := mallory.readWithin(5 * time.Second)
		mallory.conn.Close()
		var ce struct{ Data struct{ Code string } }
		switch {
		case strings.HasPrefix(msg, "40") && (strings.Contains(msg, sid) || strings.Contains(msg, pid)):
			leaked++
		case strings.HasPrefix(msg, "44") && json.Unmarshal([]byte(msg[2:]), &ce) == nil && ce.Data.Code == "recovery_refused":
			refused++
		default:
			others = append(others, msg)
		}
	}
	t.Logf("mallory with alice's pid, %d tries: %d CONNECT answers with alice's session, %d recovery_refused, others %q", tries, leaked, refused, others)
	if leaked > 0 {
		t.Errorf("mallory got the CONNECT answer of alice's session (sid %s) in %d of %d tries", sid, leaked, tries)
	}
	if refused != tries {
		t.Errorf("mallory got connect_error recovery_refused in %d of %d tries, want all", refused, tries)
	}
	alice := dialWS(t, b)
	if sid2, pid2 := alice.connectNS(map[string]any{"token": b.token(t, "alice"), "pid": pid, "offset": offset}); sid2 != sid || pid2 != pid {
		t.Errorf("after mallory's tries alice got sid %q pid %q, want her session %q %q back", sid2, pid2, sid, pid)
	}
}

// TestHostileRateLimitedAcks: a client that sends acknowledged events past
// Config.EventRate gets a rate_limited answer to each (TestEventRate), but
// it cannot make the server hold those answers for it without bound: a
// client that does not read them is closed as a slow consumer once they
// pass Config.MaxBufferedBytes, and its session is gone.
func TestHostileRateLimitedAcks(t *testing.T) {
	const rate, sent, buffered = 5, 2_000, 16 << 10
	packets := func(i int) string { return fmt.Sprintf(`42%d["count",{"text":"%d"}]`, i, i) }
	ts := startServer(t, socketio.Config{EventRate: rate, MaxBufferedBytes: buffered})
	must(t, socketio.OnAck(ts.Server, countEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		return p, nil
	}))
	url := pollConnect(t, ts, "flood")
	slow := func() int64 { return slowConsumers(t, ts) }
	before := slow()
	// One POST, and no GET while its answers pile up.
	if code, body := httpDo(t, http.MethodPost, url, payload(sent, packets)); code != http.StatusOK {
		t.Fatalf("POST of %d events = %d %q", sent, code, body)
	}
	eventually(t, "the slow consumer closed", func() bool { return slow() > before })
	code, body := httpDo(t, http.MethodGet, url, "")
	t.Logf("after %d acked events unread: GET = %d (%d bytes)", sent, code, len(body))
	if code == http.StatusOK && (len(body) > 2*buffered || !strings.HasSuffix(body, "1")) {
		t.Fatalf("the session holds %d bytes of answers, want it closed (bound %d)", len(body), buffered)
	}
}

// TestHostileInvalidUTF8: a WebSocket text frame that is not UTF-8 closes
// the connection with status 1007 (RFC 6455 §8.1, as Node's ws does).
func TestHostileInvalidUTF8(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	ws := rawConnect(t, ts, ts.token(t, "alice"))
	// gorilla/websocket does not check what it sends.
	must(t, ws.WriteMessage(websocket.TextMessage, []byte("42[\"x\",\"\xff\xfe\"]")))
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var seen []string
	for {
		_, msg, err := ws.ReadMessage()
		if err == nil {
			seen = append(seen, string(msg))
			continue
		}
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == websocket.CloseInvalidFramePayloadData:
		case errors.As(err, &ce):
			t.Errorf("closed with %d %q, want 1007 (got %q first)", ce.Code, ce.Text, seen)
		case timedOut(err):
			t.Errorf("invalid UTF-8 did not close the connection in 5 s (got %q)", seen)
		default:
			t.Errorf("closed without a close frame: %v, want 1007 (got %q first)", err, seen)
		}
		return
	}
}

// TestHostileOrigins: an Origin matches when its scheme, host and port do,
// a scheme's default port being the same as none. The request's own origin,
// for the same-origin default, is http, or https when a proxy says so in
// X-Forwarded-Proto. (TestOrigins has the rest.)
func TestHostileOrigins(t *testing.T) {
	same := startServer(t, socketio.Config{})
	listed := startServer(t, socketio.Config{AllowedOrigins: []string{"http://app.example.com"}})
	host := strings.TrimPrefix(same.URL, "http://")
	hostname, _, _ := net.SplitHostPort(host)
	for _, tc := range []struct {
		name   string
		srv    *testServer
		origin string
		proto  string // X-Forwarded-Proto
		want   int
	}{
		{"listed", listed, "http://app.example.com", "", 200},
		{"listed, default port", listed, "http://app.example.com:80", "", 200},
		{"listed host, other scheme", listed, "https://app.example.com", "", 403},
		{"listed host, other port", listed, "http://app.example.com:8080", "", 403},
		{"same origin", same, "http://" + host, "", 200},
		{"same host and port, https", same, "https://" + host, "", 403},
		{"same host, other port", same, "http://" + hostname + ":1", "", 403},
		{"https behind a proxy", same, "https://" + host, "https", 200},
		{"http behind an https proxy", same, "http://" + host, "https", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.srv.URL+"/socket.io/?EIO=4&transport=polling", nil)
			must(t, err)
			req.Header.Set("Origin", tc.origin)
			if tc.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			resp, err := http.DefaultClient.Do(req)
			must(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("Origin %s: %d %q, want %d", tc.origin, resp.StatusCode, body, tc.want)
			}
			if tc.want == 403 && !strings.Contains(string(body), "origin_not_allowed") {
				t.Fatalf("403 body %q", body)
			}
		})
	}
}

// TestHostileBinaryBeforeConnect: binary packets (whose attachments the
// server must hold until the last arrives) are refused from a connection
// that has joined no namespace, and a connection may hold at most
// Config.MaxHTTPBufferSize of attachments at once: an unauthenticated
// client cannot make the server hold ten attachments of a megabyte each.
func TestHostileBinaryBeforeConnect(t *testing.T) {
	ts := startServer(t, socketio.Config{MaxHTTPBufferSize: 64 << 10})
	t.Run("before CONNECT", func(t *testing.T) {
		ws := rawWS(t, ts, "")
		must(t, ws.WriteMessage(websocket.TextMessage, []byte(`451-["x",{"_placeholder":true,"num":0}]`)))
		if closed, seen := closedWithin(ws, 5*time.Second); !closed {
			t.Errorf("a binary packet before CONNECT did not close the connection (got %q)", seen)
		}
	})
	t.Run("attachments over the bound", func(t *testing.T) {
		ws := rawConnect(t, ts, ts.token(t, "alice"))
		header := `4510-["x"` + strings.Repeat(`,{"_placeholder":true,"num":N}`, 10) + `]`
		for i := range 10 {
			header = strings.Replace(header, `"num":N`, fmt.Sprintf(`"num":%d`, i), 1)
		}
		must(t, ws.WriteMessage(websocket.TextMessage, []byte(header)))
		chunk := make([]byte, 20<<10)
		for range 9 { // 180 KiB, past the 64 KiB bound, before the last attachment
			if ws.WriteMessage(websocket.BinaryMessage, chunk) != nil {
				break // closed already
			}
		}
		if closed, seen := closedWithin(ws, 5*time.Second); !closed {
			t.Errorf("attachments past MaxHTTPBufferSize did not close the connection (got %q)", seen)
		}
	})
}

// TestHostileQueuedEventBytes: the events of a socket waiting for their
// handler hold at most Config.MaxBufferedBytes of payload; past it an event
// is refused as over the rate, before its handler, while the handler is
// busy.
func TestHostileQueuedEventBytes(t *testing.T) {
	ts := startServer(t, socketio.Config{EventRate: -1, MaxBufferedBytes: 64 << 10})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	must(t, socketio.OnAck(ts.Server, countEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return echoPayload{Text: "ok"}, nil
	}))
	ws := rawConnect(t, ts, ts.token(t, "alice"))
	big := strings.Repeat("b", 20<<10)
	for i := range 8 { // 160 KiB of payload for a handler that waits
		must(t, ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `42%d["count",{"text":%q}]`, i, big)))
	}
	var limited int
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for limited < 4 { // 4 or 5: the first event may have left the queue for its handler
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("%d rate_limited answers, then %v; want the events past 64 KiB refused", limited, err)
		}
		if strings.HasPrefix(string(msg), "43") && strings.Contains(string(msg), `"rate_limited"`) {
			limited++
		}
	}
	once.Do(func() { close(release) })
}
