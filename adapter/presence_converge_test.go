package adapter

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/redistest"
)

// onlineUsers reads Users, nil on error.
func onlineUsers(p *RedisPresence) []string {
	users, err := p.Users(context.Background())
	if err != nil {
		return nil
	}
	return users
}

// TestRedisPresenceConvergesAfterDataLoss: whatever Redis loses or gets
// back from the past, the nodes re-assert the sockets they hold and the
// users of nodes that are gone go offline: Users and ClusterStats converge
// to the truth within about NodeTTL (here 1.2 s; the checks wait 15 s).
//
//   - stale snapshot: Redis restarts from an RDB saved while ghost was
//     online on node A, which since has the same number of sockets but for
//     alice; node B, alive then, is gone now.
//   - FLUSHALL while both nodes run.
//   - a new, empty Redis in place of the old one.
func TestRedisPresenceConvergesAfterDataLoss(t *testing.T) {
	const ttl = 1200 * time.Millisecond
	ctx := context.Background()
	for _, loss := range []string{"stale snapshot", "flushall", "empty redis"} {
		t.Run(loss, func(t *testing.T) {
			srv := redistest.Start(t)
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			t.Cleanup(func() { _ = c.Close() })
			a, _ := newPresence(t, c, ttl)
			b, _ := newPresence(t, c, ttl)
			eventually(t, "both registered", func() bool { return a.registered() && b.registered() })
			must := func(_ bool, err error) {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
			}
			must(a.Add(ctx, "ghost", "g1"))
			must(b.Add(ctx, "bob", "b1"))
			eventually(t, "ghost and bob online", func() bool { return slices.Equal(onlineUsers(a), []string{"bob", "ghost"}) })

			switch loss {
			case "stale snapshot":
				if err := c.Save(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				// After the snapshot: ghost leaves, alice arrives on A (A's
				// socket count is 1 again), and B shuts down.
				must(a.Remove(ctx, "ghost", "g1"))
				must(a.Add(ctx, "alice", "a1"))
				if err := b.Close(ctx); err != nil {
					t.Fatal(err)
				}
				srv.Restart(t) // loads the snapshot: ghost, bob and B are back
			case "flushall":
				must(a.Remove(ctx, "ghost", "g1"))
				must(a.Add(ctx, "alice", "a1"))
				if err := b.Close(ctx); err != nil {
					t.Fatal(err)
				}
				if err := c.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			case "empty redis":
				srv.Kill()
				must(a.Remove(ctx, "ghost", "g1"))
				must(a.Add(ctx, "alice", "a1"))
				_ = b.Close(ctx) // Redis is down: B's goodbye is lost
				srv.Restart(t)
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				users := onlineUsers(a)
				st, err := a.ClusterStats(ctx)
				if slices.Equal(users, []string{"alice"}) && err == nil && st.Users == 1 && st.Sockets == 1 && st.Nodes == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after %s: users %v, stats %+v (%v); want [alice], 1 user, 1 socket, 1 node", loss, users, st, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// alice leaves: nobody is left.
			must(a.Remove(ctx, "alice", "a1"))
			eventually(t, "nobody online", func() bool {
				st, err := a.ClusterStats(ctx)
				return err == nil && st.Users == 0 && st.Sockets == 0 && len(onlineUsers(a)) == 0
			})
		})
	}
}
