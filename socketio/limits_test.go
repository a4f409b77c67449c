package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

var (
	countEvent = events.Define[echoPayload]("count")
	roomsEvent = events.Define[echoPayload]("join_rooms")
)

// TestEventRate: a socket that sends more than Config.EventRate events per
// second has the extra ones dropped before their handler, and acked with
// rate_limited; once the bucket refills, events go through again.
func TestEventRate(t *testing.T) {
	ts := startServer(t, socketio.Config{EventRate: 5})
	var handled atomic.Int64
	must(t, socketio.OnAck(ts.Server, countEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		handled.Add(1)
		return p, nil
	}))
	ctx := testCtx(t, 30*time.Second)
	c := ts.connect(t, "flood", "websocket")
	const sent = 30
	for i := range sent {
		must(t, c.Send(map[string]any{"cmd": "emitWithAck", "id": 1000 + i, "event": "count", "args": []any{map[string]any{"text": fmt.Sprint(i)}}}))
	}
	ok, limited := 0, 0
	for i := range sent {
		m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "ack" && m.AckID == 1000+i })
		must(t, err)
		switch {
		case len(m.Args) == 1 && strings.Contains(string(m.Args[0]), `"code":"rate_limited"`):
			limited++
		case len(m.Args) == 1 && strings.Contains(string(m.Args[0]), `"text"`):
			ok++
		default:
			t.Fatalf("ack %d = %s", i, m.Args)
		}
	}
	// 5 at once, and the refill (5 a second) while the burst arrives.
	if ok < 5 || ok > 10 || limited != sent-ok || handled.Load() != int64(ok) {
		t.Fatalf("%d handled (%d handler calls), %d rate_limited of %d; want 5 to 10 handled", ok, handled.Load(), limited, sent)
	}
	time.Sleep(time.Second) // the bucket refills
	args, err := c.EmitWithAck(ctx, "count", 0, map[string]any{"text": "later"})
	if err != nil || len(args) != 1 || string(args[0]) != `{"text":"later"}` {
		t.Fatalf("after the refill: %s %v", args, err)
	}
}

// TestMaxRoomsPerSocket: Socket.Join stops at Config.MaxRoomsPerSocket; a
// room already joined, and the user's own room, do not count.
func TestMaxRoomsPerSocket(t *testing.T) {
	ts := startServer(t, socketio.Config{MaxRoomsPerSocket: 2})
	must(t, socketio.OnAck(ts.Server, roomsEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		var out []string
		for _, room := range strings.Split(p.Text, ",") {
			err := s.Join(room)
			switch {
			case err == nil:
				out = append(out, "ok")
			case errors.Is(err, socketio.ErrTooManyRooms):
				out = append(out, "too_many")
			default:
				out = append(out, err.Error())
			}
		}
		return echoPayload{Text: strings.Join(out, ",")}, nil
	}))
	ctx := testCtx(t, 10*time.Second)
	c := ts.connect(t, "joiner", "websocket")
	args, err := c.EmitWithAck(ctx, "join_rooms", 0, map[string]any{"text": "a,b,a,c,b"})
	must(t, err)
	if want := `{"text":"ok,ok,ok,too_many,ok"}`; len(args) != 1 || string(args[0]) != want {
		t.Fatalf("joins = %s, want %s", args, want)
	}
	if _, err := socketio.New(socketio.Config{Verifier: fakeVerifier{}, MaxRoomsPerSocket: -2, EventRate: -5}); !errors.Is(err, socketio.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "MaxRoomsPerSocket") || !strings.Contains(err.Error(), "EventRate") {
		t.Fatalf("New with bad limits = %v", err)
	}
}

// TestHandshakeRate: an address that connects more than Config.HandshakeRate
// times a second gets connect_error rate_limited, before its token is
// checked; another address (ClientIP) is not affected.
func TestHandshakeRate(t *testing.T) {
	ts := startServer(t, socketio.Config{HandshakeRate: 3, ClientIP: func(r *http.Request) string {
		return r.Header.Get("X-Test-Client") // a trusted proxy's header, in a real deployment
	}})
	ctx := testCtx(t, 30*time.Second)
	start := func(client string) *nodeclient.Client {
		return nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"},
			Auth: map[string]any{"token": "not even a token"}, Extra: map[string]any{"extraHeaders": map[string]string{"X-Test-Client": client}}})
	}
	outcome := func(c *nodeclient.Client) string {
		m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
		must(t, err)
		var data struct{ Code string }
		_ = json.Unmarshal(m.Data, &data)
		c.Close()
		return data.Code
	}
	// Eight at once from "a": the burst of 3 (and what refills while the
	// clients start) reaches the token check, and fails it; the rest are
	// limited.
	var clients []*nodeclient.Client
	for range 8 {
		clients = append(clients, start("a"))
	}
	counts := map[string]int{}
	for _, c := range clients {
		counts[outcome(c)]++
	}
	if counts["token_invalid"] < 3 || counts["rate_limited"] < 2 || counts["token_invalid"]+counts["rate_limited"] != 8 {
		t.Fatalf("outcomes %v, want 3 or a few more token_invalid, the rest rate_limited", counts)
	}
	if got := outcome(start("b")); got != "token_invalid" {
		t.Fatalf("another address got %s", got)
	}
}

// TestMaxConnectionsPerUser: a user's handshake beyond
// Config.MaxConnectionsPerUser gets connect_error too_many_connections,
// counted across the cluster (two nodes on one Redis); once a socket goes,
// the user may connect again.
func TestMaxConnectionsPerUser(t *testing.T) {
	r := redistest.Start(t)
	cfg := socketio.Config{MaxConnectionsPerUser: 2}
	a := clusterServerWith(t, r.Client(t), adapter.RedisPubSub, cfg)
	b := clusterServerWith(t, r.Client(t), adapter.RedisPubSub, cfg)
	ctx := testCtx(t, 30*time.Second)
	const user = "many-tabs"
	try := func(ts *testServer) (*nodeclient.Client, string) {
		c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"}, Auth: map[string]any{"token": ts.token(t, user)}})
		m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
		must(t, err)
		if m.Type == "connect" {
			waitAuthenticated(t, ctx, c, user)
			return c, "connect"
		}
		var data struct{ Code string }
		_ = json.Unmarshal(m.Data, &data)
		return c, data.Code
	}
	first, got := try(a)
	if got != "connect" {
		t.Fatalf("first tab: %s", got)
	}
	if _, got := try(b); got != "connect" {
		t.Fatalf("second tab: %s", got)
	}
	if _, got := try(a); got != socketio.CodeTooManyConnections {
		t.Fatalf("third tab: %s, want %s", got, socketio.CodeTooManyConnections)
	}
	first.Close()
	eventually(t, "the first tab gone", func() bool { return a.SocketCount() == 0 })
	if _, got := try(a); got != "connect" {
		t.Fatalf("after a tab closed: %s", got)
	}
	if _, err := socketio.New(socketio.Config{Verifier: fakeVerifier{}, MaxConnectionsPerUser: -3}); !errors.Is(err, socketio.ErrInvalidConfig) {
		t.Fatalf("New with MaxConnectionsPerUser -3 = %v", err)
	}
}

// burstConnect opens n long-polling sessions, half on each of servers in
// turn, sends their CONNECTs for userID at once, and returns how many were
// accepted and refused with too_many_connections; the sessions' URLs, to
// close them, in urls. It may run Fatal only on the test's goroutine.
func burstConnect(t *testing.T, servers []*testServer, userID string, n int) (accepted, refused int, urls []string) {
	t.Helper()
	urls = make([]string, n)
	answers := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ts := servers[i%len(servers)]
		sid := pollHandshake(t, ts)
		urls[i] = pollURL(ts, "EIO=4&transport=polling&sid="+sid)
		body := fmt.Sprintf(`40{"token":%q}`, ts.token(t, userID))
		wg.Go(func() {
			<-start
			code, resp, err := post(urls[i], body)
			if err == nil && (code != http.StatusOK || resp != "ok") {
				err = fmt.Errorf("POST CONNECT = %d %q", code, resp)
			}
			if err == nil {
				var got polledBody
				got, err = getBody(urls[i])
				answers[i] = string(got)
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, a := range answers {
		switch {
		case errs[i] != nil:
			t.Fatalf("session %d: %v", i, errs[i])
		case strings.HasPrefix(a, "40{"):
			accepted++
		case strings.HasPrefix(a, "44{") && strings.Contains(a, socketio.CodeTooManyConnections):
			refused++
		default:
			t.Fatalf("session %d: answer %q, want a CONNECT or too_many_connections", i, a)
		}
	}
	return accepted, refused, urls
}

type polledBody []byte

// getBody is one long-polling GET, safe on any goroutine.
func getBody(url string) (polledBody, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET = %d %q", resp.StatusCode, b)
	}
	return b, err
}

// TestMaxConnectionsPerUserBursts: handshakes of one user at ten times the
// limit, all at once, round after round, on one node and on two nodes of a
// Redis cluster: exactly the limit get in, every time. (A check-then-add
// let 135 of 100 in.)
func TestMaxConnectionsPerUserBursts(t *testing.T) {
	const limit, rounds = 5, 5
	cfg := socketio.Config{MaxConnectionsPerUser: limit}
	r := redistest.Start(t)
	for _, tt := range []struct {
		name    string
		servers func(t *testing.T) []*testServer
	}{
		{"one node", func(t *testing.T) []*testServer { return []*testServer{startServer(t, cfg)} }},
		{"two redis nodes", func(t *testing.T) []*testServer {
			return []*testServer{
				clusterServerWith(t, r.Client(t), adapter.RedisPubSub, cfg),
				clusterServerWith(t, r.Client(t), adapter.RedisPubSub, cfg),
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			servers := tt.servers(t)
			sockets := func() int {
				n := 0
				for _, ts := range servers {
					n += ts.SocketCount()
				}
				return n
			}
			for round := range rounds {
				accepted, refused, urls := burstConnect(t, servers, "bursty", 10*limit)
				if accepted != limit || refused != 9*limit {
					t.Errorf("round %d: %d accepted, %d refused; want %d and %d", round, accepted, refused, limit, 9*limit)
				}
				if n := sockets(); n != accepted {
					t.Errorf("round %d: %d sockets connected, %d accepted", round, n, accepted)
				}
				for _, u := range urls {
					_, _, _ = post(u, "1") // close the session
				}
				eventually(t, "every session closed", func() bool { return sockets() == 0 })
			}
		})
	}
}
