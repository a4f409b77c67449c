package adapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/redistest"
)

// addBurst adds n sockets of one user at once through the limiters in turn
// and returns how many were added.
func addBurst(t *testing.T, limiters []UserSocketLimiter, user string, n, max int) int {
	t.Helper()
	var added atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		l := limiters[i%len(limiters)]
		wg.Go(func() {
			_, err := l.AddLimited(context.Background(), user, fmt.Sprintf("s%d", i), max)
			switch {
			case err == nil:
				added.Add(1)
			case !errors.Is(err, ErrUserLimit):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return int(added.Load())
}

func TestMemoryPresenceAddLimited(t *testing.T) {
	p := NewMemoryPresence()
	if got := addBurst(t, []UserSocketLimiter{p}, "u", 100, 10); got != 10 {
		t.Fatalf("%d of 100 concurrent adds passed a limit of 10", got)
	}
	ctx := context.Background()
	// An existing socket is not refused, nor counted twice.
	if first, err := p.AddLimited(ctx, "u", "s0", 10); err != nil && !errors.Is(err, ErrUserLimit) || first {
		t.Errorf("AddLimited of a present socket = %v, %v", first, err)
	}
	if n, _ := p.UserSockets(ctx, "u"); n != 10 {
		t.Errorf("UserSockets = %d, want 10", n)
	}
	if _, err := p.AddLimited(ctx, "other", "x", 0); !errors.Is(err, ErrUserLimit) {
		t.Errorf("AddLimited with max 0 = %v, want ErrUserLimit", err)
	}
	if first, err := p.AddLimited(ctx, "other", "x", -1); !first || err != nil {
		t.Errorf("AddLimited with no limit = %v, %v, want true, nil", first, err)
	}
}

// Two nodes on one Redis, each adding the same user's sockets at once:
// exactly max in all. While Redis is unreachable, the limit holds per node.
func TestRedisPresenceAddLimited(t *testing.T) {
	srv := redistest.Start(t)
	nodes := make([]*RedisPresence, 2)
	limiters := make([]UserSocketLimiter, 2)
	for i := range nodes {
		p, err := NewRedisPresence(RedisPresenceConfig{Client: srv.Client(t), OpTimeout: 500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		nodes[i], limiters[i] = p, p
		eventually(t, "registered", p.registered)
	}
	for round := range 5 {
		user := fmt.Sprintf("u%d", round)
		if got := addBurst(t, limiters, user, 100, 10); got != 10 {
			t.Errorf("round %d: %d of 100 concurrent adds on two nodes passed a limit of 10", round, got)
		}
		n, err := nodes[0].UserSockets(context.Background(), user)
		if err != nil || n != 10 {
			t.Errorf("round %d: UserSockets = %d, %v; want 10", round, n, err)
		}
	}

	srv.Stop()
	ctx := context.Background()
	for i, p := range nodes {
		for j := range 3 {
			_, err := p.AddLimited(ctx, "offline-redis", fmt.Sprintf("n%d-%d", i, j), 2)
			if wantErr := j >= 2; wantErr != errors.Is(err, ErrUserLimit) {
				t.Errorf("node %d, add %d without Redis: %v", i, j, err)
			}
		}
	}
}
