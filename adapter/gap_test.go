package adapter

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/redistest"
)

// TestRedisResubscriptionGapReported: Redis restarts under two nodes (and
// an Emitter) in the pub/sub and sharded modes, and messages are published
// to node B's room all the while. pub/sub keeps nothing for a node that is
// resubscribing, so B misses some; every message B missed must have been
// reported to its publisher (ErrMaybeLost, or ErrRemoteUndelivered while
// Redis was down): none is silently counted as sent.
func TestRedisResubscriptionGapReported(t *testing.T) {
	for _, mode := range []RedisMode{RedisPubSub, RedisSharded} {
		for _, from := range []string{"node", "emitter"} {
			if mode == RedisSharded && from == "emitter" {
				continue // an Emitter cannot tell in sharded mode (documented)
			}
			t.Run(string(mode)+"_"+from, func(t *testing.T) {
				srv := redistest.Start(t)
				c := srv.Client(t)
				a, _ := newBroker(t, c, mode)
				b, inB := newBroker(t, c, mode)
				b.ObserveRoom("user:1", true)
				if err := a.CheckCluster(context.Background()); err != nil {
					t.Fatal(err)
				}
				if err := b.CheckCluster(context.Background()); err != nil {
					t.Fatal(err)
				}
				pub := a
				if from == "emitter" {
					pub = publishOnly(t, c, mode, "")
				}
				ctx := context.Background()
				if err := pub.Publish(ctx, msg([]string{"user:1"}, "warmup", `0`)); err != nil {
					t.Fatal(err)
				}
				inB.waitN(t, 1)

				srv.Kill()
				// A flags its publishes once it has seen its own
				// subscription drop: that is how it learns of the restart
				// (the documented limit: until its goroutine has run, a
				// loaded machine took 50 ms once, it cannot know).
				if from == "node" {
					eventually(t, "A seeing its subscription drop", func() bool { return !a.Metrics().SubscriptionUp })
				}
				srv.Restart(t)
				// Publish through the restart and the resubscriptions.
				results := map[int]error{}
				deadline := time.Now().Add(2500 * time.Millisecond)
				for i := 1; time.Now().Before(deadline); i++ {
					results[i] = pub.Publish(ctx, msg([]string{"user:1"}, "seq", strconv.Itoa(i)))
					time.Sleep(5 * time.Millisecond)
				}
				eventually(t, "B subscribed again", func() bool { return b.Metrics().SubscriptionUp })
				// The last message, published once everything is back, marks
				// the end of what B can still receive.
				var last error
				eventually(t, "a message reaching B again", func() bool {
					last = pub.Publish(ctx, msg([]string{"user:1"}, "end", `0`))
					return last == nil
				})
				var got map[int]bool
				eventually(t, "the end message at B", func() bool {
					got = map[int]bool{}
					end := false
					for _, m := range inB.messages() {
						if m.Event == "end" {
							end = true
						}
						if m.Event == "seq" {
							n, _ := strconv.Atoi(string(m.Args[0]))
							got[n] = true
						}
					}
					return end
				})
				var sent, flagged, undelivered int
				for i, err := range results {
					switch {
					case err == nil:
						sent++
						if !got[i] {
							t.Errorf("message %d: Publish returned nil but B never received it", i)
						}
					case errors.Is(err, ErrMaybeLost):
						flagged++
					case errors.Is(err, ErrRemoteUndelivered), errors.Is(err, ErrNoListeners):
						undelivered++ // no node was subscribed, or Redis did not take it
					default:
						t.Fatalf("message %d: %v", i, err)
					}
				}
				t.Logf("%d published: %d reported sent, %d flagged ErrMaybeLost (%d of them missed by B), %d ErrRemoteUndelivered or ErrNoListeners; B got %d",
					len(results), sent, flagged, countMissed(results, got, ErrMaybeLost), undelivered, len(got))
				if flagged+undelivered == 0 {
					t.Errorf("no publish was reported: the restart opened no gap, the test checked nothing")
				}
			})
		}
	}
}

func countMissed(results map[int]error, got map[int]bool, kind error) int {
	n := 0
	for i, err := range results {
		if errors.Is(err, kind) && !got[i] {
			n++
		}
	}
	return n
}
