package adapter

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/redistest"
)

// TestRedisBrokerBurstNoLoss publishes bursts from one broker and counts
// what another receives, in every mode. Messages of varied sizes cut the
// subscriber's read buffer at every offset. go-redis before 9.20.1 lost
// about one RESP3 push in 10^5 this way (a push frame split inside its
// name was read and dropped, redis/go-redis#3839); the herald-vs-Node
// cluster benchmark caught it.
func TestRedisBrokerBurstNoLoss(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	const n = 20000
	for _, mode := range []RedisMode{RedisPubSub, RedisSharded, RedisStreams} {
		t.Run(string(mode), func(t *testing.T) {
			pub, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			seen := make(map[string]int, n)
			var got atomic.Int64
			if err := pub.Subscribe(func(Message) {}); err != nil {
				t.Fatal(err)
			}
			if err := sub.Subscribe(func(m Message) {
				mu.Lock()
				seen[string(m.Args[0])]++
				mu.Unlock()
				got.Add(1)
			}); err != nil {
				t.Fatal(err)
			}
			defer pub.Close(context.Background())
			defer sub.Close(context.Background())
			sub.ObserveRoom("user:burst", true)
			waitFor(t, func() bool { return sub.Metrics().SubscriptionUp && pub.Metrics().SubscriptionUp })
			if mode == RedisSharded {
				// The room subscription is set up in the background.
				time.Sleep(200 * time.Millisecond)
			}
			var wg sync.WaitGroup
			for w := range 4 { // several publishers, as concurrent requests would be
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 4 {
						arg, _ := json.Marshal(map[string]any{"i": i, "pad": strings.Repeat("x", i%97)})
						m := Message{Rooms: []string{"user:burst"}, Event: "e", Args: []json.RawMessage{arg}}
						if err := pub.Publish(context.Background(), m); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			deadline := time.Now().Add(20 * time.Second)
			for got.Load() < n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // duplicates would have arrived
			mu.Lock()
			defer mu.Unlock()
			var missing []int
			for i := range n {
				arg, _ := json.Marshal(map[string]any{"i": i, "pad": strings.Repeat("x", i%97)})
				switch seen[string(arg)] {
				case 1:
				case 0:
					missing = append(missing, i)
				default:
					t.Errorf("message %d arrived %d times", i, seen[string(arg)])
				}
			}
			if len(missing) > 0 {
				t.Errorf("%d of %d messages lost, e.g. %v (published %d, received %d)", len(missing), n, missing[:min(5, len(missing))], pub.Metrics().Published, sub.Metrics().Received)
			}
		})
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(fmt.Errorf("condition not met within 10s"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
