package socketio_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

type padSeq struct {
	Seq int    `json:"seq"`
	Pad string `json:"pad"`
}

var (
	padSeqEvent  = events.Define[padSeq]("padseq")
	padSeqEvent2 = events.Define[padSeq]("padseq2")
	interleave   = events.Define[padSeq]("interleave")
)

// waitCount asks c for its count of event until it has n or is out of
// order, and fails unless it has exactly n, in order.
func waitCount(t *testing.T, ctx context.Context, c *nodeclient.Client, event string, n int) {
	t.Helper()
	for {
		must(t, c.Send(map[string]any{"cmd": "report", "event": event}))
		m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "count" && m.Event == event })
		if err != nil {
			t.Fatalf("%s: %v", event, err)
		}
		if m.N >= n || !m.InOrder {
			if m.N != n || !m.InOrder || m.LastSeq != n {
				t.Fatalf("%s: client counted %d (in order %v, last seq %d), want %d in order", event, m.N, m.InOrder, m.LastSeq, n)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDirectWritesInterleaved mixes the two ways a message reaches a
// WebSocket: room deliveries, which herald writes itself (wire.go), and
// everything else, which goes through upstream's queue. Every fourth
// message is 5 KB, which upstream's WebSocket library sends fragmented.
//
//   - "one sequence": one goroutine alternates the two paths with one
//     counter: the client must see every message, in the order emitted.
//   - "two goroutines": each path at full speed at once, each with its own
//     counter: nothing lost, each in order, no frame split (the client
//     would drop the connection).
//
// Polling goes through upstream only; it runs the same checks.
func TestDirectWritesInterleaved(t *testing.T) {
	const n = 1500
	ts := startServer(t, socketio.Config{})
	socks := make(chan *socketio.Socket, 1)
	must(t, socketio.On(ts.Server, interleave, func(_ context.Context, s *socketio.Socket, _ padSeq) error {
		socks <- s
		return nil
	}))
	pad := func(i int) string {
		if i%4 == 0 {
			return strings.Repeat("b", 5000)
		}
		return ""
	}
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ctx := testCtx(t, 90*time.Second)
			user := "interleave-" + transport
			c := ts.connect(t, user, transport)
			must(t, c.Send(map[string]any{"cmd": "countOnly", "event": "padseq"}))
			must(t, c.Send(map[string]any{"cmd": "countOnly", "event": "padseq2"}))
			syncClient(t, ctx, c)
			must(t, c.Emit("interleave", padSeq{}))
			var s *socketio.Socket
			select {
			case s = <-socks:
			case <-ctx.Done():
				t.Fatal("no interleave event")
			}
			before := socketio.DirectWrites(ts.Server)

			t.Log("one sequence")
			for i := 1; i <= n; i++ {
				p := padSeq{Seq: i, Pad: pad(i)}
				if i%2 == 0 {
					must(t, socketio.Emit(ctx, s, padSeqEvent, p))
				} else {
					must(t, ts.EmitToUser(ctx, user, padSeqEvent, p))
				}
			}
			waitCount(t, ctx, c, "padseq", n)

			t.Log("two goroutines")
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			wg.Go(func() {
				for i := 1; i <= n; i++ {
					if err := socketio.Emit(ctx, s, padSeqEvent, padSeq{Seq: n + i, Pad: pad(i + 1)}); err != nil {
						errs <- err
						return
					}
				}
			})
			wg.Go(func() {
				for i := 1; i <= n; i++ {
					if err := ts.EmitToUser(ctx, user, padSeqEvent2, padSeq{Seq: i, Pad: pad(i)}); err != nil {
						errs <- err
						return
					}
				}
			})
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			waitCount(t, ctx, c, "padseq", 2*n)
			waitCount(t, ctx, c, "padseq2", n)
			for _, m := range c.History() {
				if m.Type == "disconnect" {
					t.Fatalf("client disconnected: %v", m)
				}
			}

			direct := socketio.DirectWrites(ts.Server) - before
			t.Logf("%d of %d room deliveries written by herald itself", direct, n/2+n)
			switch {
			case transport == "polling" && direct != 0:
				t.Fatalf("%d direct writes on a polling connection", direct)
			case transport == "websocket" && direct == 0:
				t.Fatal("no room delivery took herald's own write path")
			}
		})
	}
}
