package socketio_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// rawClient is a minimal Engine.IO v4 / Socket.IO v5 WebSocket client, so
// that benchmarks measure the server and not the npm client.
type rawClient struct {
	conn     *websocket.Conn
	received atomic.Int64
	done     chan struct{}
}

func dialRaw(b *testing.B, ts *testServer, user string) *rawClient {
	b.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, msg, err := conn.ReadMessage(); err != nil || msg[0] != '0' {
		b.Fatalf("open packet: %q, %v", msg, err)
	}
	tok := ts.token(b, user)
	if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `40{"token":%q}`, tok)); err != nil {
		b.Fatal(err)
	}
	if _, msg, err := conn.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "40") {
		b.Fatalf("connect packet: %q, %v", msg, err)
	}
	c := &rawClient{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			switch {
			case string(msg) == "2":
				_ = conn.WriteMessage(websocket.TextMessage, []byte("3"))
			case strings.HasPrefix(string(msg), "42"):
				c.received.Add(1)
			}
		}
	}()
	b.Cleanup(func() {
		conn.Close()
		<-c.done
	})
	return c
}

// BenchmarkEmitToUser measures EmitToUser to a user with one WebSocket
// connection, until the client has read every event.
func BenchmarkEmitToUser(b *testing.B) {
	ts := startServer(b, socketio.Config{})
	c := dialRaw(b, ts, "bench")
	ctx := context.Background()
	p := events.JobProgressPayload{JobID: "job_0123456789abcdef", Progress: 40, Message: "step 2 of 5"}
	// authenticated greeting
	for c.received.Load() < 1 {
		time.Sleep(100 * time.Microsecond)
	}
	start := c.received.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := ts.EmitToUser(ctx, "bench", events.JobProgress, p); err != nil {
			b.Fatal(err)
		}
	}
	for c.received.Load()-start < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkEmitToUserOffline measures the cost of an emit that reaches no
// socket: encoding, validation and the broker.
func BenchmarkEmitToUserOffline(b *testing.B) {
	ts := startServer(b, socketio.Config{})
	ctx := context.Background()
	p := events.JobProgressPayload{JobID: "job_0123456789abcdef", Progress: 40}
	b.ReportAllocs()
	for b.Loop() {
		if err := ts.EmitToUser(ctx, "nobody", events.JobProgress, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmitToUserCrossNode measures EmitToUser on node A to a user whose
// one WebSocket is on node B, through a real redis-server, until the client
// has read every event (emits pipelined, not one at a time).
func BenchmarkEmitToUserCrossNode(b *testing.B) {
	r := redistest.Start(b)
	for _, mode := range []adapter.RedisMode{adapter.RedisPubSub, adapter.RedisSharded} {
		b.Run(string(mode), func(b *testing.B) {
			client := r.Client(b)
			nodeA := clusterServer(b, client, mode)
			nodeB := clusterServer(b, client, mode)
			c := dialRaw(b, nodeB, "bench")
			ctx := context.Background()
			p := events.JobProgressPayload{JobID: "job_0123456789abcdef", Progress: 40, Message: "step 2 of 5"}
			for c.received.Load() < 1 {
				time.Sleep(100 * time.Microsecond)
			}
			// The sharded room subscription may lag the connection: warm up.
			for c.received.Load() < 2 {
				if err := nodeA.EmitToUser(ctx, "bench", events.JobProgress, p); err != nil {
					b.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			start := c.received.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := nodeA.EmitToUser(ctx, "bench", events.JobProgress, p); err != nil {
					b.Fatal(err)
				}
			}
			for c.received.Load()-start < int64(b.N) {
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
}

// BenchmarkEmitToUserJobState measures EmitToUser of job_progress to a user
// with one WebSocket when the Server keeps job state: none, in memory, or
// in a real redis-server (one script per event, before the publish), until
// the client has read every event. Progress is the same every time, so no
// event is refused.
func BenchmarkEmitToUserJobState(b *testing.B) {
	r := redistest.Start(b)
	for _, store := range []string{"none", "memory", "redis"} {
		b.Run(store, func(b *testing.B) {
			cfg := socketio.Config{}
			switch store {
			case "memory":
				cfg.Jobs = adapter.NewMemoryJobStore(adapter.JobStoreConfig{})
			case "redis":
				s, err := adapter.NewRedisJobStore(adapter.RedisJobStoreConfig{Client: r.Client(b)})
				if err != nil {
					b.Fatal(err)
				}
				cfg.Jobs = s
			}
			ts := startServer(b, cfg)
			c := dialRaw(b, ts, "bench")
			ctx := context.Background()
			p := events.JobProgressPayload{JobID: "job_0123456789abcdef", Progress: 40, Message: "step 2 of 5", Lease: time.Minute}
			for c.received.Load() < 1 {
				time.Sleep(100 * time.Microsecond)
			}
			start := c.received.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ts.EmitToUser(ctx, "bench", events.JobProgress, p); err != nil {
					b.Fatal(err)
				}
			}
			for c.received.Load()-start < int64(b.N) {
				time.Sleep(100 * time.Microsecond)
			}
		})
	}
}
