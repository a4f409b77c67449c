package socketio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// stallTimeout is the Redis operation timeout of the stall test's nodes:
// an operation that waits on the stalled Redis takes at least this long,
// one that does not takes milliseconds.
const stallTimeout = 2 * time.Second

// pollJoin opens a long-polling session, joins "/" with token and returns
// the CONNECT's answer: "40{..." when accepted.
func pollJoin(t *testing.T, ts *testServer, token string) (string, error) {
	url := pollURL(ts, "EIO=4&transport=polling&sid="+pollHandshake(t, ts))
	if code, b, err := post(url, fmt.Sprintf(`40{"token":%q}`, token)); err != nil || code != http.StatusOK {
		return "", fmt.Errorf("POST CONNECT = %d %q %v", code, b, err)
	}
	got, err := getBody(url)
	_, _, _ = post(url, "1")
	return string(got), err
}

// TestRedisStallLocalWorkGoesOn: Redis stops answering (SIGSTOP) under two
// nodes, in the pub/sub and streams modes (where local delivery waits for
// the stream). Local work does not wait for it: of the emits to a local user, the
// handshakes and the presence reads made during the stall, at most the
// first of each kind waits for the Redis timeout (the breaker then fails
// fast), every local socket gets every emit, and presence reads answer
// this node's view marked partial (adapter.ErrPartial). After Redis
// resumes, the cluster answers again. The latencies are logged.
func TestRedisStallLocalWorkGoesOn(t *testing.T) {
	for _, mode := range []adapter.RedisMode{adapter.RedisPubSub, adapter.RedisStreams} {
		t.Run(string(mode), func(t *testing.T) { testRedisStall(t, mode) })
	}
}

func testRedisStall(t *testing.T, mode adapter.RedisMode) {
	r := redistest.Start(t)
	var nodes []*testServer
	for range 2 {
		client := r.Client(t)
		broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: client, Mode: mode, PublishTimeout: stallTimeout})
		if err != nil {
			t.Fatal(err)
		}
		presence, err := adapter.NewRedisPresence(adapter.RedisPresenceConfig{Client: client, OpTimeout: stallTimeout})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = presence.Close(context.Background())
			_ = broker.Close(context.Background())
		})
		nodes = append(nodes, startServer(t, socketio.Config{Broker: broker, Presence: presence}))
	}
	a := nodes[0]
	ctx := testCtx(t, 90*time.Second)
	alice := a.connect(t, "alice")
	b := nodes[1].connect(t, "bob")
	_ = b
	eventually(t, "both users online", func() bool {
		users, err := a.OnlineUsers(ctx)
		return err == nil && slices.Equal(users, []string{"alice", "bob"})
	})

	r.Pause()
	defer r.Resume()
	blocked := func(d time.Duration) bool { return d >= stallTimeout*3/4 }
	report := func(what string, ds []time.Duration) {
		t.Helper()
		n := 0
		for _, d := range ds {
			if blocked(d) {
				n++
			}
		}
		t.Logf("%s during the stall: %v", what, ds)
		if n > 1 {
			t.Errorf("%s: %d of %d waited for the stalled Redis (%v each), want at most the first", what, n, len(ds), stallTimeout)
		}
	}

	const n = 8
	emits := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		err := a.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "stall", Progress: i})
		emits[i] = time.Since(start)
		if err != nil && !errors.Is(err, adapter.ErrRemoteUndelivered) {
			t.Fatalf("emit %d: %v", i, err)
		}
	}
	report("EmitToUser to a local socket", emits)
	if got := countJobEvents(ctx, t, alice, "stall", n); got != n {
		t.Errorf("alice got %d of the %d emits made during the stall", got, n)
	}

	joins := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		answer, err := pollJoin(t, a, a.token(t, fmt.Sprintf("new%d", i)))
		joins[i] = time.Since(start)
		if err != nil || !strings.HasPrefix(answer, "40{") {
			t.Fatalf("handshake %d during the stall: %q, %v", i, answer, err)
		}
	}
	report("handshakes", joins)

	reads := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		users, err := a.OnlineUsers(ctx)
		reads[i] = time.Since(start)
		if !errors.Is(err, adapter.ErrPartial) || !slices.Contains(users, "alice") {
			t.Fatalf("OnlineUsers during the stall = %v, %v; want this node's users and ErrPartial", users, err)
		}
	}
	report("OnlineUsers", reads)
	st, err := a.Stats(ctx)
	if err != nil || !st.Partial || st.Scope != "node" {
		t.Errorf("Stats during the stall = %+v, %v; want this node's, partial", st, err)
	}

	r.Resume()
	eventually(t, "the cluster view back", func() bool {
		users, err := a.OnlineUsers(ctx)
		return err == nil && slices.Equal(users, []string{"alice", "bob"})
	})
}

// countJobEvents waits until c has n job_progress events of jobID, or the
// context ends, and returns how many it has.
func countJobEvents(ctx context.Context, t *testing.T, c *nodeclient.Client, jobID string, n int) int {
	t.Helper()
	count := func() int {
		got := 0
		for _, m := range c.Events() {
			if m.Event == "job_progress" && len(m.Args) == 1 && strings.Contains(string(m.Args[0]), `"jobId":"`+jobID+`"`) {
				got++
			}
		}
		return got
	}
	for count() < n && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	return count()
}
