package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// recoveryNodes starts two herald nodes in streams mode with recovery on,
// sharing one JWT secret.
func recoveryNodes(t *testing.T, client redis.UniversalClient) (a, b *testServer) {
	t.Helper()
	secret := []byte("recovery-test-secret-0123456789ab")
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	start := func() *testServer {
		broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: client, Mode: adapter.RedisStreams})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = broker.Close(context.Background()) })
		logs := &syncLogBuf{}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("server logs:\n%s", logs.String())
			}
		})
		ts := startServer(t, socketio.Config{Verifier: v, Broker: broker, Recovery: time.Minute,
			Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		ts.secret = secret
		eventually(t, "stream reader", func() bool { return broker.Metrics().SubscriptionUp })
		return ts
	}
	return start(), start()
}

// wsConn is a raw Engine.IO/Socket.IO client, to send exactly the CONNECT
// payload a recovering socket.io-client sends ({token, pid, offset}).
type wsConn struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialWS(t *testing.T, ts *testServer) *wsConn {
	t.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &wsConn{t: t, conn: conn}
	if msg := c.read(); !strings.HasPrefix(msg, "0") {
		t.Fatalf("open packet: %q", msg)
	}
	return c
}

// read returns the next Socket.IO message, answering pings; "" when the
// connection closed or nothing came within 10 s.
func (c *wsConn) read() string { return c.readWithin(10 * time.Second) }

// readWithin is read with its own quiet time.
func (c *wsConn) readWithin(quiet time.Duration) string {
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(quiet))
		_, msg, err := c.conn.ReadMessage()
		if err != nil {
			return ""
		}
		if string(msg) == "2" {
			_ = c.conn.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		return string(msg)
	}
}

func (c *wsConn) send(s string) {
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// connectNS sends CONNECT with auth and returns the sid and pid of the
// server's CONNECT answer.
func (c *wsConn) connectNS(authPayload map[string]any) (sid, pid string) {
	c.t.Helper()
	b, _ := json.Marshal(authPayload)
	c.send("40" + string(b))
	msg := c.read()
	var ok struct{ Sid, Pid string }
	if !strings.HasPrefix(msg, "40") || json.Unmarshal([]byte(msg[2:]), &ok) != nil {
		c.t.Fatalf("CONNECT answer: %q", msg)
	}
	return ok.Sid, ok.Pid
}

// event reads until an event named name and returns its arguments.
func (c *wsConn) event(name string) []json.RawMessage {
	c.t.Helper()
	for {
		msg := c.read()
		if msg == "" {
			c.t.Fatalf("no %s event", name)
		}
		if !strings.HasPrefix(msg, "42") {
			continue
		}
		var arr []json.RawMessage
		if json.Unmarshal([]byte(msg[2:]), &arr) != nil || len(arr) == 0 {
			continue
		}
		if string(arr[0]) == `"`+name+`"` {
			return arr[1:]
		}
	}
}

// awaySession connects alice to a, gets an event with an offset, drops the
// connection as a network failure would, and waits until the session is
// saved. It returns the socket id, the private session id and the offset.
func awaySession(t *testing.T, a *testServer, client redis.UniversalClient) (sid, pid, offset string) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	alice := dialWS(t, a)
	sid, pid = alice.connectNS(map[string]any{"token": a.token(t, "alice")})
	if sid == "" || pid == "" {
		t.Fatalf("no sid or pid (recovery off?): %q %q", sid, pid)
	}
	alice.event("authenticated")
	must(t, a.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "seen", Progress: 1}))
	args := alice.event("job_progress")
	if err := json.Unmarshal(args[len(args)-1], &offset); err != nil || offset == "" {
		t.Fatalf("no offset in %s", args)
	}
	alice.conn.Close()
	eventually(t, "session saved", func() bool {
		n, err := client.Exists(ctx, adapter.DefaultSessionPrefix+pid).Result()
		return err == nil && n == 1
	})
	return sid, pid, offset
}

// noMissed reads what c receives until it closes or goes quiet and fails if
// one of alice's missed events is among it.
func noMissed(t *testing.T, c *wsConn, who string) {
	t.Helper()
	for msg := c.readWithin(time.Second); msg != ""; msg = c.readWithin(time.Second) {
		if strings.Contains(msg, "missed") {
			t.Fatalf("%s received alice's missed event: %s", who, msg)
		}
	}
}

// TestRecovery covers a session's life: a client that presents alice's
// private session id and offset with another user's valid token, or with
// alice's expired token, gets none of the missed events, and the session
// survives those attempts; alice then recovers it on the other node with a
// fresh token: same socket id, the missed events in order, each with its
// offset, and no second recovery of the same session.
func TestRecovery(t *testing.T) {
	r := redistest.Start(t)
	client := r.Client(t)
	a, b := recoveryNodes(t, client)
	ctx := testCtx(t, 30*time.Second)
	sid, pid, offset := awaySession(t, a, client)
	for i := range 3 {
		must(t, b.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: fmt.Sprint("missed", i)}))
	}
	must(t, b.EmitToUser(ctx, "bob", events.JobProgress, events.JobProgressPayload{JobID: "not-alices"}))

	// mallory: a valid token of her own, alice's pid and offset.
	mallory := dialWS(t, b)
	mallory.send(fmt.Sprintf(`40{"token":%q,"pid":%q,"offset":%q}`, b.token(t, "mallory"), pid, offset))
	noMissed(t, mallory, "mallory")

	// alice's expired token.
	expired, err := auth.Sign("HS256", "", b.secret, map[string]any{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	must(t, err)
	stale := dialWS(t, b)
	stale.send(fmt.Sprintf(`40{"token":%q,"pid":%q,"offset":%q}`, expired, pid, offset))
	if msg := stale.read(); !strings.HasPrefix(msg, "44") || !strings.Contains(msg, auth.CodeTokenExpired) {
		t.Fatalf("expired token: %q, want a connect_error with %s", msg, auth.CodeTokenExpired)
	}
	noMissed(t, stale, "an expired token")

	// alice, with a fresh token, on node b.
	alice := dialWS(t, b)
	sid2, pid2 := alice.connectNS(map[string]any{"token": b.token(t, "alice"), "pid": pid, "offset": offset})
	if sid2 != sid || pid2 != pid {
		t.Fatalf("alice got sid %q pid %q, want her session %q %q back", sid2, pid2, sid, pid)
	}
	last := offset
	for i := range 3 {
		args := alice.event("job_progress")
		var p events.JobProgressPayload
		var off string
		if json.Unmarshal(args[0], &p) != nil || json.Unmarshal(args[len(args)-1], &off) != nil {
			t.Fatalf("replayed event %s", args)
		}
		if p.JobID != fmt.Sprint("missed", i) || off <= last && len(off) <= len(last) {
			t.Fatalf("replayed event %d = %s with offset %s after %s", i, args[0], off, last)
		}
		last = off
	}
	alice.event("authenticated")
	// Live events go on, with offsets.
	must(t, a.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "live"}))
	if args := alice.event("job_progress"); !strings.Contains(string(args[0]), "live") || len(args) != 2 {
		t.Fatalf("live event after recovery: %s", args)
	}
	// The session was taken: presenting it again starts a new one.
	again := dialWS(t, a)
	if sid3, _ := again.connectNS(map[string]any{"token": a.token(t, "alice"), "pid": pid, "offset": offset}); sid3 == sid {
		t.Fatal("a session was recovered twice")
	}
}

func TestRecoveryConfig(t *testing.T) {
	for _, cfg := range []socketio.Config{
		{Recovery: time.Minute, Broker: adapter.NewMemoryBroker()}, // a broker without a log
		{Recovery: -time.Second},
		{Recovery: time.Millisecond},
	} {
		v, _ := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: []byte("0123456789abcdef0123")}}})
		cfg.Verifier = v
		if _, err := socketio.New(cfg); !errors.Is(err, socketio.ErrInvalidConfig) {
			t.Errorf("New(Recovery %v) = %v, want ErrInvalidConfig", cfg.Recovery, err)
		}
	}
}

type syncLogBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncLogBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLogBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRecoverySingleNode: one node, no Redis (the in-memory log), with the
// real socket.io-client: after a drop the client reconnects with
// socket.recovered and receives what was emitted meanwhile, in order.
func TestRecoverySingleNode(t *testing.T) {
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ts := startServer(t, socketio.Config{Recovery: time.Minute})
			ctx := testCtx(t, 30*time.Second)
			c := nodeclient.Start(t, nodeclient.Options{
				URL: ts.URL, Transports: []string{transport}, Reconnection: true,
				Auth:  map[string]any{"token": ts.token(t, "alice")},
				Extra: map[string]any{"reconnectionDelay": 500, "reconnectionDelayMax": 500, "randomizationFactor": 0},
			})
			first, err := c.WaitType(ctx, "connect")
			must(t, err)
			if _, err := c.WaitEvent(ctx, "authenticated"); err != nil {
				t.Fatal(err)
			}
			must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "seen"}))
			if _, err := c.WaitEvent(ctx, "job_progress"); err != nil {
				t.Fatal(err)
			}
			must(t, c.Send(map[string]any{"cmd": "drop"}))
			if _, err := c.WaitType(ctx, "disconnect"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "socket gone", func() bool { return ts.SocketCount() == 0 })
			for i := range 5 {
				must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: fmt.Sprint("missed", i), Progress: i}))
			}
			m, err := c.WaitType(ctx, "connect")
			must(t, err)
			if !m.Recovered || m.ID != first.ID {
				t.Fatalf("reconnected as %s, want socket %s recovered", m.Raw, first.ID)
			}
			for i := range 5 {
				m, err := c.WaitEvent(ctx, "job_progress")
				must(t, err)
				if p := decodeArg[events.JobProgressPayload](t, m); p.JobID != fmt.Sprint("missed", i) {
					t.Fatalf("replayed event %d = %+v", i, p)
				}
			}
		})
	}
}
