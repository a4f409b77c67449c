package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
)

// These tests run against a real redis-server that each test starts on its
// own port (internal/redistest), so that they can kill and restart it.

type inbox struct {
	mu  sync.Mutex
	got []Message
	ch  chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1)} }

func (in *inbox) deliver(m Message) {
	in.mu.Lock()
	in.got = append(in.got, m)
	in.mu.Unlock()
	select {
	case in.ch <- struct{}{}:
	default:
	}
}

func (in *inbox) messages() []Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.got)
}

// waitN waits until n messages arrived and returns them.
func (in *inbox) waitN(t *testing.T, n int) []Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := in.messages(); len(got) >= n {
			return got
		}
		select {
		case <-in.ch:
		case <-deadline:
			t.Fatalf("got %d messages, want %d: %+v", len(in.messages()), n, in.messages())
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newBroker(t *testing.T, c redis.UniversalClient, mode RedisMode) (*RedisBroker, *inbox) {
	t.Helper()
	b, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode, LogInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	in := newInbox()
	if err := b.Subscribe(in.deliver); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("close broker: %v", err)
		}
	})
	eventually(t, "subscription", func() bool { return b.Metrics().SubscriptionUp })
	return b, in
}

func msg(rooms []string, event string, arg string) Message {
	return Message{Rooms: rooms, Event: event, Args: []json.RawMessage{json.RawMessage(arg)}}
}

func TestRedisBrokerCrossNode(t *testing.T) {
	srv := redistest.Start(t)
	for _, mode := range []RedisMode{RedisPubSub, RedisSharded, RedisStreams} {
		t.Run(string(mode), func(t *testing.T) {
			c := srv.Client(t)
			a, inA := newBroker(t, c, mode)
			b, inB := newBroker(t, c, mode)
			for _, room := range []string{"user:1", "room-twenty-chars-xx"} {
				b.ObserveRoom(room, true)
			}
			// Sharded subscriptions are asynchronous; wait until Redis has them.
			eventually(t, "room subscriptions", func() bool {
				if mode != RedisSharded {
					return true
				}
				n, err := c.PubSubShardNumSub(context.Background(), "socket.io#/#user:1#").Result()
				return err == nil && n["socket.io#/#user:1#"] == 1
			})
			ctx := context.Background()
			sent := []Message{
				msg([]string{"user:1"}, "single", `{"z":1,"a":"\u003c\u0026\u003e"}`),
				msg([]string{"user:1", "user:2"}, "multi", `1.5`),
				msg(nil, "everyone", `"x"`),
				{Rooms: []string{"user:1"}, Except: []string{"user:3"}, Event: "except", Args: []json.RawMessage{[]byte(`null`)}},
				msg([]string{"room-twenty-chars-xx"}, "twenty", `[]`),
			}
			for _, m := range sent {
				if err := a.Publish(ctx, m); err != nil {
					t.Fatal(err)
				}
			}
			got := inB.waitN(t, len(sent))
			for i, m := range got {
				want := sent[i]
				if m.Event != want.Event || !slices.Equal(m.Rooms, want.Rooms) || !slices.Equal(m.Except, want.Except) ||
					len(m.Args) != 1 || string(m.Args[0]) != string(want.Args[0]) {
					t.Errorf("message %d = %+v, want %+v", i, m, want)
				}
				if (m.Offset != "") != (mode == RedisStreams) {
					t.Errorf("message %d has offset %q in mode %s", i, m.Offset, mode)
				}
			}
			// The publisher delivered locally once, and ignored its own echo.
			time.Sleep(200 * time.Millisecond)
			if n := len(inA.messages()); n != len(sent) {
				t.Errorf("publisher delivered %d messages, want %d", n, len(sent))
			}
			if n := len(inB.messages()); n != len(sent) {
				t.Errorf("receiver got %d messages, want %d", n, len(sent))
			}
		})
	}
}

func TestRedisBrokerOrder(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	a, _ := newBroker(t, c, RedisPubSub)
	_, inB := newBroker(t, c, RedisPubSub)
	const n = 2000
	for i := range n {
		if err := a.Publish(context.Background(), msg([]string{"user:1"}, "seq", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	got := inB.waitN(t, n)
	for i, m := range got {
		if string(m.Args[0]) != fmt.Sprint(i) {
			t.Fatalf("message %d carries %s: out of order", i, m.Args[0])
		}
	}
}

// TestRedisBrokerOutage kills Redis: publishing reports the loss instead of
// dropping silently, and once Redis is back the subscription comes back by
// itself and cross-node delivery resumes.
func TestRedisBrokerOutage(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	a, inA := newBroker(t, c, RedisPubSub)
	b, inB := newBroker(t, c, RedisPubSub)
	ctx := context.Background()
	if err := a.Publish(ctx, msg(nil, "before", `1`)); err != nil {
		t.Fatal(err)
	}
	inB.waitN(t, 1)

	srv.Kill()
	err := a.Publish(ctx, msg(nil, "during", `2`))
	if !errors.Is(err, ErrRemoteUndelivered) {
		t.Fatalf("publish while Redis is down = %v, want ErrRemoteUndelivered", err)
	}
	if got := inA.waitN(t, 2); got[1].Event != "during" {
		t.Fatalf("local delivery during the outage: %+v", got)
	}
	eventually(t, "subscription down", func() bool { return !b.Metrics().SubscriptionUp })
	time.Sleep(500 * time.Millisecond) // several reconnect attempts
	if m := a.Metrics(); m.PublishErrors != 1 {
		t.Errorf("PublishErrors = %d, want 1", m.PublishErrors)
	}

	srv.Restart(t)
	eventually(t, "subscriptions back", func() bool { return a.Metrics().SubscriptionUp && b.Metrics().SubscriptionUp })
	// Within GapWindow of A's resubscription the publish is flagged
	// ErrMaybeLost (B might still be resubscribing); B is back here.
	if err := a.Publish(ctx, msg(nil, "after", `3`)); err != nil && !errors.Is(err, ErrMaybeLost) {
		t.Fatal(err)
	}
	got := inB.waitN(t, 2)
	if got[1].Event != "after" {
		t.Fatalf("after restart B got %+v", got)
	}
	if r := b.Metrics().Reconnects; r < 1 {
		t.Errorf("Reconnects = %d, want at least 1", r)
	}
}

func TestRedisBrokerDropsMalformed(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	b, in := newBroker(t, c, RedisPubSub)
	ctx := context.Background()
	for _, bad := range []string{"", "garbage", "\x93\xa1x\x83", "\x93\xa1x\x83\xa4type\x02\xa4data\x91\xc4\x01a\xa3nsp\xa1/\x80"} {
		if err := c.Publish(ctx, "socket.io#/#", bad).Err(); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := encodeClassic("other", msg(nil, "ok", `1`))
	if err := c.Publish(ctx, "socket.io#/#", good).Err(); err != nil {
		t.Fatal(err)
	}
	if got := in.waitN(t, 1); got[0].Event != "ok" {
		t.Fatalf("got %+v", got)
	}
	if d := b.Metrics().Dropped; d != 4 {
		t.Errorf("Dropped = %d, want 4", d)
	}
}

func TestRedisBrokerConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, cfg := range []RedisBrokerConfig{
		{},
		{Client: c, Mode: "kafka"},
		{Client: c, StreamMaxLen: -1},
		{Client: c, Prefix: "a#b"},
		{Client: c, PublishTimeout: -1},
	} {
		if _, err := NewRedisBroker(cfg); err == nil {
			t.Errorf("NewRedisBroker(%+v) accepted", cfg)
		}
	}
	b, err := NewRedisBroker(RedisBrokerConfig{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(nil); err == nil {
		t.Error("Subscribe(nil) accepted")
	}
	if err := b.Publish(context.Background(), Message{Event: "e", Args: []json.RawMessage{[]byte(`{bad`)}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Publish of invalid JSON = %v, want ErrMalformed", err)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), msg(nil, "e", `1`)); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

// ---- presence ----

type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) watch(user string, online bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if online {
		tr.got = append(tr.got, "+"+user)
	} else {
		tr.got = append(tr.got, "-"+user)
	}
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.got)
}

func newPresence(t *testing.T, c redis.UniversalClient, ttl time.Duration) (*RedisPresence, *transitions) {
	t.Helper()
	p, err := NewRedisPresence(RedisPresenceConfig{Client: c, NodeTTL: ttl, LogInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tr := &transitions{}
	p.Watch(tr.watch)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p, tr
}

func TestRedisPresenceCluster(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	a, trA := newPresence(t, c, 3*time.Second)
	b, trB := newPresence(t, c, 3*time.Second)
	eventually(t, "both nodes registered", func() bool { return a.registered() && b.registered() })

	add := func(p *RedisPresence, user, sock string) {
		t.Helper()
		if first, err := p.Add(ctx, user, sock); err != nil || first {
			t.Fatalf("Add = %v, %v (a watcher gets the transitions)", first, err)
		}
	}
	remove := func(p *RedisPresence, user, sock string) {
		t.Helper()
		if last, err := p.Remove(ctx, user, sock); err != nil || last {
			t.Fatalf("Remove = %v, %v", last, err)
		}
	}
	add(a, "u1", "s1") // u1 online (seen by A)
	add(a, "u1", "s2") // second tab
	add(b, "u1", "s3") // other node
	add(a, "u1", "s1") // duplicate: nothing
	add(b, "u2", "s4") // u2 online (seen by B)
	if on, err := a.IsOnline(ctx, "u2"); err != nil || !on {
		t.Fatalf("IsOnline(u2) on A = %v, %v", on, err)
	}
	users, err := b.Users(ctx)
	if err != nil || !slices.Equal(users, []string{"u1", "u2"}) {
		t.Fatalf("Users = %v, %v", users, err)
	}
	st, err := a.ClusterStats(ctx)
	if err != nil || st != (ClusterStats{Users: 2, Sockets: 4, Nodes: 2}) {
		t.Fatalf("ClusterStats = %+v, %v", st, err)
	}
	remove(a, "u1", "s1")
	remove(a, "u1", "s2")
	remove(a, "u1", "s2") // duplicate
	if on, _ := b.IsOnline(ctx, "u1"); !on {
		t.Fatal("u1 offline while a socket on B remains")
	}
	remove(b, "u1", "s3") // u1 offline (seen by B)
	remove(b, "u2", "s4") // u2 offline (seen by B)
	if got := trA.list(); !slices.Equal(got, []string{"+u1"}) {
		t.Errorf("A saw %v", got)
	}
	if got := trB.list(); !slices.Equal(got, []string{"+u2", "-u1", "-u2"}) {
		t.Errorf("B saw %v", got)
	}
	if u, s, err := a.Counts(ctx); u != 0 || s != 0 || err != nil {
		t.Errorf("Counts = %d, %d, %v", u, s, err)
	}
}

// TestRedisPresenceDeadNode stops a node's heartbeat without leaving (as a
// crash does): another node expires it and reports its users offline.
func TestRedisPresenceDeadNode(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	ttl := 600 * time.Millisecond
	a, _ := newPresence(t, c, ttl)
	b, trB := newPresence(t, c, ttl)
	if _, err := a.Add(ctx, "u1", "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(ctx, "u2", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(ctx, "u2", "s3"); err != nil {
		t.Fatal(err)
	}
	a.cancel() // the crash: no more heartbeats, no leave
	<-a.done
	start := time.Now()
	eventually(t, "u1 offline", func() bool { return slices.Contains(trB.list(), "-u1") })
	if took := time.Since(start); took > 3*ttl {
		t.Errorf("dead node expired after %v, want within about 4/3 of NodeTTL %v", took, ttl)
	}
	if on, _ := b.IsOnline(ctx, "u2"); !on {
		t.Error("u2 went offline though B holds a socket")
	}
	st, err := b.ClusterStats(ctx)
	if err != nil || st.Nodes != 1 || st.Sockets != 1 || st.Users != 1 {
		t.Errorf("ClusterStats after expiry = %+v, %v", st, err)
	}
}

// TestRedisPresenceExpiredAlive: a node that was expired while alive (paused
// past NodeTTL) re-registers and reports its users online again.
func TestRedisPresenceExpiredAlive(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	ttl := 600 * time.Millisecond
	a, trA := newPresence(t, c, ttl)
	b, trB := newPresence(t, c, ttl)
	if _, err := a.Add(ctx, "u1", "s1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "u1 online", func() bool { return len(trA.list()) == 1 })
	// B expires A as if A had been frozen past its TTL.
	b.reap(ctx, -time.Minute)
	eventually(t, "u1 offline then online again", func() bool {
		return slices.Contains(trB.list(), "-u1") && slices.Equal(trA.list(), []string{"+u1", "+u1"})
	})
	if on, _ := a.IsOnline(ctx, "u1"); !on {
		t.Error("u1 offline after A re-registered")
	}
}

// TestRedisPresenceRedisRestart: Redis restarts empty; nodes serve their
// sockets meanwhile, re-register without reporting their users as new
// transitions, and report what really changed during the outage.
func TestRedisPresenceRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	a, trA := newPresence(t, c, 900*time.Millisecond)
	if _, err := a.Add(ctx, "u1", "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(ctx, "u2", "s2"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "initial transitions", func() bool { return len(trA.list()) == 2 })
	srv.Kill()
	// During the outage: u2 leaves, u3 arrives. Neither fails.
	if _, err := a.Remove(ctx, "u2", "s2"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Add(ctx, "u3", "s3"); err != nil {
		t.Fatal(err)
	}
	if online, err := a.IsOnline(ctx, "u1"); !online || err != nil {
		t.Errorf("IsOnline of a user with a socket here, Redis down = %v, %v; want true, nil", online, err)
	}
	if _, err := a.IsOnline(ctx, "elsewhere"); !errors.Is(err, ErrPartial) {
		t.Errorf("IsOnline of another user, Redis down = %v, want ErrPartial", err)
	}
	if users, err := a.Users(ctx); !errors.Is(err, ErrPartial) || !slices.Equal(users, []string{"u1", "u3"}) {
		t.Errorf("Users with Redis down = %v, %v; want this node's [u1 u3] and ErrPartial", users, err)
	}
	srv.Restart(t)
	eventually(t, "state rebuilt", func() bool {
		users, err := a.Users(ctx)
		return err == nil && slices.Equal(users, []string{"u1", "u3"})
	})
	// The store lost its data: nothing is reported for the rebuild. (u2's
	// and u3's changes are lost to watchers: a documented limit.)
	if got := trA.list(); !slices.Equal(got, []string{"+u1", "+u2"}) {
		t.Errorf("transitions = %v", got)
	}
}

func TestRedisPresenceConfig(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, cfg := range []RedisPresenceConfig{
		{},
		{Client: c, Prefix: "a{b"},
		{Client: c, NodeTTL: time.Millisecond},
		{Client: c, OpTimeout: -1},
	} {
		if _, err := NewRedisPresence(cfg); err == nil {
			t.Errorf("NewRedisPresence(%+v) accepted", cfg)
		}
	}
}

// TestNodeEmitterMessages: a service using Node's @socket.io/redis-emitter
// reaches herald nodes, several arguments and broadcasts included. (The Go
// emitter of zishang520/socket.io, which speaks the same protocol, was
// tested here while herald depended on that module.)
func TestNodeEmitterMessages(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	_, in := newBroker(t, c, RedisPubSub)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	em := nodeclient.StartEmitter(ctx, t, nodeclient.EmitterOptions{RedisURL: srv.URL()})
	if _, err := em.Emit(ctx, nodeclient.Emission{To: []string{"user:1"}, Event: "job_progress", Args: []any{map[string]any{"jobId": "j1", "progress": 5}, "second"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := em.Emit(ctx, nodeclient.Emission{Event: "everyone", Args: []any{1.5}}); err != nil {
		t.Fatal(err)
	}
	got := in.waitN(t, 2)
	if m := got[0]; m.Event != "job_progress" || !slices.Equal(m.Rooms, []string{"user:1"}) || len(m.Args) != 2 ||
		string(m.Args[0]) != `{"jobId":"j1","progress":5}` && string(m.Args[0]) != `{"progress":5,"jobId":"j1"}` || string(m.Args[1]) != `"second"` {
		t.Errorf("first message = %+v (%s)", m, m.Args)
	}
	if m := got[1]; m.Event != "everyone" || len(m.Rooms) != 0 || string(m.Args[0]) != "1.5" {
		t.Errorf("second message = %+v (%s)", m, m.Args)
	}
}

// TestRedisStreamsRecovery: a session saved on one node is restored on
// another with exactly the messages its rooms missed, and delivery on the
// restoring node waits until the socket has joined its rooms.
func TestRedisStreamsRecovery(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	a, inA := newBroker(t, c, RedisStreams)
	b, inB := newBroker(t, c, RedisStreams)
	publish := func(m Message) {
		t.Helper()
		if err := a.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(msg([]string{"user:1"}, "seen", `1`))
	seen := inA.waitN(t, 1)[0]
	if !offsetPattern.MatchString(seen.Offset) {
		t.Fatalf("offset %q", seen.Offset)
	}
	sess := Session{SocketID: "sid1", PID: "pid1", Rooms: []string{"sid1", "user:1", "team"}}
	if err := a.SaveSession(ctx, sess, time.Minute); err != nil {
		t.Fatal(err)
	}
	publish(msg([]string{"user:1"}, "m2", `2`))
	publish(msg([]string{"user:2"}, "other", `3`))
	publish(msg(nil, "m4", `4`))
	publish(Message{Event: "excluded", Except: []string{"user:1"}, Args: []json.RawMessage{[]byte(`5`)}})
	publish(msg([]string{"team", "x"}, "m6", `6`))
	inB.waitN(t, 6) // B has delivered them all (to nobody: the socket is gone)

	got, missed, release, err := b.RestoreSession(ctx, "pid1", seen.Offset)
	if err != nil {
		t.Fatal(err)
	}
	if got.SocketID != "sid1" || !slices.Equal(got.Rooms, sess.Rooms) {
		t.Errorf("session = %+v", got)
	}
	var names []string
	for _, m := range missed {
		names = append(names, m.Event)
		if m.Offset == "" {
			t.Errorf("missed %s has no offset", m.Event)
		}
	}
	if !slices.Equal(names, []string{"m2", "m4", "m6"}) {
		t.Errorf("missed = %v, want m2 m4 m6", names)
	}
	// Held: a message published now waits until release.
	publish(msg([]string{"user:1"}, "after", `7`))
	time.Sleep(300 * time.Millisecond)
	if n := len(inB.messages()); n != 6 {
		t.Errorf("B delivered %d messages while held, want 6", n)
	}
	release(true)
	release(false) // idempotent: the first call counts
	if m := inB.waitN(t, 7)[6]; m.Event != "after" {
		t.Errorf("after release B delivered %+v", m)
	}

	// A session is restored once; bad input is refused.
	for _, tc := range []struct{ pid, offset string }{
		{"pid1", seen.Offset}, {"nope", seen.Offset}, {"pid1", "garbage"}, {"", "1-1"},
	} {
		if _, _, rel, err := b.RestoreSession(ctx, tc.pid, tc.offset); !errors.Is(err, ErrNoSession) {
			t.Errorf("RestoreSession(%q, %q) = %v, want ErrNoSession", tc.pid, tc.offset, err)
		} else {
			rel(true)
		}
	}
	// A session not taken up (a failed handshake) is stored again.
	if err := a.SaveSession(ctx, Session{SocketID: "s3", PID: "pid3", Rooms: []string{"user:1"}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, _, done, err := b.RestoreSession(ctx, "pid3", seen.Offset)
	if err != nil {
		t.Fatal(err)
	}
	done(false)
	if ttl, err := c.PTTL(ctx, DefaultSessionPrefix+"pid3").Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Fatalf("session put back with TTL %v, %v", ttl, err)
	}
	s3, missed3, done, err := b.RestoreSession(ctx, "pid3", seen.Offset)
	if err != nil || s3.SocketID != "s3" || len(missed3) == 0 {
		t.Fatalf("second restore = %+v, %d missed, %v", s3, len(missed3), err)
	}
	done(true)
	// An offset that is no longer in the stream cannot be restored.
	if err := a.SaveSession(ctx, Session{SocketID: "s2", PID: "pid2"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := b.RestoreSession(ctx, "pid2", "1-0"); !errors.Is(err, ErrNoSession) {
		t.Errorf("restore from a trimmed offset = %v", err)
	}
	if err := a.SaveSession(ctx, Session{}, time.Minute); err == nil {
		t.Error("SaveSession of an empty session accepted")
	}
}

// TestRedisStreamsOutage: a node that loses Redis reads on from where it
// stopped, so nothing published by others in between is lost (as long as
// Redis itself kept it).
func TestRedisStreamsReaderResumes(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	a, _ := newBroker(t, c, RedisStreams)
	// B reads through its own client, which we cut off.
	cb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = cb.Close() })
	b, inB := newBroker(t, cb, RedisStreams)
	if err := a.Publish(ctx, msg(nil, "one", `1`)); err != nil {
		t.Fatal(err)
	}
	inB.waitN(t, 1)
	if err := c.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := a.Publish(ctx, msg(nil, "during", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	got := inB.waitN(t, 6)
	for i, m := range got[1:] {
		if string(m.Args[0]) != fmt.Sprint(i) {
			t.Fatalf("after the cut B got %+v", got)
		}
	}
	_ = b
}

// TestRedisCluster runs the broker in every mode and the presence on a real
// 3-master Redis Cluster: room channels and keys spread over the shards.
func TestRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	cc := cluster.Client(t)
	ctx := context.Background()
	for _, mode := range []RedisMode{RedisPubSub, RedisSharded, RedisStreams} {
		t.Run(string(mode), func(t *testing.T) {
			a, _ := newBroker(t, cc, mode)
			b, inB := newBroker(t, cc, mode)
			const users = 12
			for i := range users {
				b.ObserveRoom(fmt.Sprint("user:", i), true)
			}
			if mode == RedisSharded {
				b.mu.Lock()
				shards := len(b.subs)
				b.mu.Unlock()
				if shards != 3 {
					t.Errorf("sharded subscriptions on %d shards, want 3", shards)
				}
			}
			// Room subscriptions are asynchronous: publish until the first
			// arrives, then check that every room's message does.
			deadline := time.Now().Add(10 * time.Second)
			for len(inB.messages()) == 0 && time.Now().Before(deadline) {
				if err := a.Publish(ctx, msg([]string{"user:0"}, "warm", `0`)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			base := len(inB.messages())
			for i := range users {
				if err := a.Publish(ctx, msg([]string{fmt.Sprint("user:", i)}, "ev", fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			// Messages to different rooms travel through different shards:
			// their relative order is not kept (the order per room is).
			got := inB.waitN(t, base+users)[base:]
			var args []int
			for _, m := range got {
				n, _ := strconv.Atoi(string(m.Args[0]))
				args = append(args, n)
			}
			slices.Sort(args)
			for i, a := range args {
				if a != i {
					t.Fatalf("messages = %v, want one per room", args)
				}
			}
		})
	}
	t.Run("presence", func(t *testing.T) {
		a, trA := newPresence(t, cc, 900*time.Millisecond)
		b, trB := newPresence(t, cc, 900*time.Millisecond)
		eventually(t, "registered", func() bool { return a.registered() && b.registered() })
		for _, step := range []func() (bool, error){
			func() (bool, error) { return a.Add(ctx, "u1", "s1") },
			func() (bool, error) { return b.Add(ctx, "u1", "s2") },
			func() (bool, error) { return a.Remove(ctx, "u1", "s1") },
			func() (bool, error) { return b.Add(ctx, "u2", "s3") },
		} {
			if _, err := step(); err != nil {
				t.Fatal(err)
			}
		}
		st, err := a.ClusterStats(ctx)
		if err != nil || st.Users != 2 || st.Sockets != 2 || st.Nodes != 2 {
			t.Fatalf("ClusterStats = %+v, %v", st, err)
		}
		b.cancel() // b dies: a expires it
		<-b.done
		eventually(t, "b's users offline", func() bool { return slices.Contains(trA.list(), "-u2") && slices.Contains(trA.list(), "-u1") })
		if got := trB.list(); !slices.Equal(got, []string{"+u2"}) {
			t.Errorf("b saw %v", got)
		}
	})
}
