package adapter

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/redistest"
)

var benchMsg = Message{
	Rooms: []string{"user:1234"},
	Event: "job_progress",
	Args:  []json.RawMessage{[]byte(`{"jobId":"job_5f2a9c","progress":42,"message":"step 21 of 50","timestamp":"2026-11-22T01:02:03.456789Z"}`)},
}

func BenchmarkEncodeClassic(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeClassic("herald-0123456789abcdef", benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeClassic(b *testing.B) {
	wire, err := encodeClassic("herald-0123456789abcdef", benchMsg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, _, ok, err := decodeClassic(wire); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkEncodeSharded(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeSharded("herald-0123456789abcdef", benchMsg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSharded(b *testing.B) {
	wire, err := encodeSharded("herald-0123456789abcdef", benchMsg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok, err := decodeSharded(wire); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkRedisBrokerCrossNode measures one message from Publish on one
// broker until another broker (another node) has delivered it, through a
// real redis-server on loopback, one message in flight at a time.
func BenchmarkRedisBrokerCrossNode(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	for _, mode := range []RedisMode{RedisPubSub, RedisSharded} {
		b.Run(string(mode), func(b *testing.B) {
			pub, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode})
			if err != nil {
				b.Fatal(err)
			}
			sub, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode})
			if err != nil {
				b.Fatal(err)
			}
			got := make(chan struct{}, 1)
			if err := pub.Subscribe(func(Message) {}); err != nil {
				b.Fatal(err)
			}
			if err := sub.Subscribe(func(Message) { got <- struct{}{} }); err != nil {
				b.Fatal(err)
			}
			defer pub.Close(context.Background())
			defer sub.Close(context.Background())
			sub.ObserveRoom("user:1234", true)
			for !sub.Metrics().SubscriptionUp || !pub.Metrics().SubscriptionUp {
				b.StopTimer()
			}
			// Warm up until the room subscription is live, then drain.
			for warm := false; !warm; {
				if err := pub.Publish(context.Background(), benchMsg); err != nil {
					b.Fatal(err)
				}
				select {
				case <-got:
					warm = true
				case <-time.After(100 * time.Millisecond):
				}
			}
			for drained := false; !drained; {
				select {
				case <-got:
				case <-time.After(100 * time.Millisecond):
					drained = true
				}
			}
			b.StartTimer()
			b.ReportAllocs()
			for b.Loop() {
				if err := pub.Publish(context.Background(), benchMsg); err != nil {
					b.Fatal(err)
				}
				<-got
			}
		})
	}
}

// BenchmarkRedisBrokerPublishParallel measures Publish from 32 goroutines
// per CPU at once through a real redis-server on loopback, until Redis has
// answered each (no subscriber): what concurrent emits cost when their
// publishes share round trips (publisher.go).
func BenchmarkRedisBrokerPublishParallel(b *testing.B) {
	srv := redistest.Start(b)
	c := srv.Client(b)
	pub, err := NewRedisBroker(RedisBrokerConfig{Client: c})
	if err != nil {
		b.Fatal(err)
	}
	if err := pub.Subscribe(func(Message) {}); err != nil {
		b.Fatal(err)
	}
	defer pub.Close(context.Background())
	b.ReportAllocs()
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := pub.Publish(context.Background(), benchMsg); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
