package socketio_test

import (
	"context"
	"fmt"
	"net/http"
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

// serverSocket has c emit "interleave" and returns the server's socket
// that the handler hands over on socks.
func serverSocket(t *testing.T, ctx context.Context, c *nodeclient.Client, socks <-chan *socketio.Socket) *socketio.Socket {
	t.Helper()
	must(t, c.Emit("interleave", padSeq{}))
	select {
	case s := <-socks:
		return s
	case <-ctx.Done():
		t.Fatal("no interleave event")
		return nil
	}
}

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
// It runs on a WebSocket, on a session that upgraded from long-polling to
// WebSocket (herald's path from the upgrade on), and on long-polling
// (upstream's path only).
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
	for _, tc := range []struct {
		name       string
		transports []string
		direct     bool // herald's own path must be taken
	}{
		{"websocket", []string{"websocket"}, true},
		{"upgrade", nil, true}, // polling, then WebSocket: the client's default
		{"polling", []string{"polling"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 90*time.Second)
			user := "interleave-" + tc.name
			c := ts.connect(t, user, tc.transports...)
			if tc.transports == nil {
				if _, err := c.WaitType(ctx, "upgrade"); err != nil {
					t.Fatal(err)
				}
			}
			must(t, c.Send(map[string]any{"cmd": "countOnly", "event": "padseq"}))
			must(t, c.Send(map[string]any{"cmd": "countOnly", "event": "padseq2"}))
			syncClient(t, ctx, c)
			// Once the server has the interleave event, it has the upgrade
			// too (the client sends it after the upgrade packet, on the
			// WebSocket).
			s := serverSocket(t, ctx, c, socks)
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
			case !tc.direct && direct != 0:
				t.Fatalf("%d direct writes on a polling connection", direct)
			case tc.direct && direct == 0:
				t.Fatal("no room delivery took herald's own write path")
			}
		})
	}
}

// TestDirectWritesAcrossUpgrade emits through both paths, from one
// goroutine with one counter, while the session upgrades from long-polling
// to WebSocket (the upgrade request is held for 300 ms so that it lands in
// the middle): herald's path must start after the upgrade without any
// message overtaking one that upstream still had to write.
func TestDirectWritesAcrossUpgrade(t *testing.T) {
	ts := startServerWith(t, socketio.Config{}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if q := r.URL.Query(); q.Get("transport") == "websocket" && q.Get("sid") != "" {
				time.Sleep(300 * time.Millisecond)
			}
			h.ServeHTTP(w, r)
		})
	})
	socks := make(chan *socketio.Socket, 1)
	must(t, socketio.On(ts.Server, interleave, func(_ context.Context, s *socketio.Socket, _ padSeq) error {
		socks <- s
		return nil
	}))

	ctx := testCtx(t, 90*time.Second)
	const user = "across-upgrade"
	c := ts.connect(t, user)
	must(t, c.Send(map[string]any{"cmd": "countOnly", "event": "padseq"}))
	syncClient(t, ctx, c)
	s := serverSocket(t, ctx, c, socks)
	if tr := s.Transport(); tr != "polling" {
		t.Fatalf("transport %q before the burst, want polling", tr)
	}
	before := socketio.DirectWrites(ts.Server)
	n := 0
	for socketio.DirectWrites(ts.Server)-before < 200 && n < 50000 {
		n++
		p := padSeq{Seq: n}
		if n%8 == 0 {
			p.Pad = strings.Repeat("u", 3000)
		}
		if n%2 == 0 {
			must(t, socketio.Emit(ctx, s, padSeqEvent, p))
		} else {
			must(t, ts.EmitToUser(ctx, user, padSeqEvent, p))
		}
		if n%10 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitCount(t, ctx, c, "padseq", n)
	if _, err := c.WaitType(ctx, "upgrade"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages across the upgrade, %d written by herald itself", n, socketio.DirectWrites(ts.Server)-before)
	if socketio.DirectWrites(ts.Server)-before < 200 {
		t.Fatal("herald's own path never started after the upgrade")
	}
}

// TestHandshakeWrites: a WebSocket handshake costs the server two writes,
// the upgrade response with the OPEN packet and the CONNECT answer with the
// greeting (wireConn.hold), and the client sees nothing different.
func TestHandshakeWrites(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	// The hold's own bound is 50 ms: a handshake slower than that, under
	// the race detector on a busy machine, would take three writes.
	socketio.SetWireHoldMax(ts.Server, 10*time.Second)
	socks := make(chan *socketio.Socket, 1)
	must(t, socketio.On(ts.Server, interleave, func(_ context.Context, s *socketio.Socket, _ padSeq) error {
		socks <- s
		return nil
	}))
	ctx := testCtx(t, 30*time.Second)
	for i := range 3 {
		c := ts.connect(t, fmt.Sprintf("hs-writes-%d", i), "websocket")
		s := serverSocket(t, ctx, c, socks)
		if n := socketio.WireWrites(s); n != 2 {
			t.Fatalf("connection %d: %d writes for the handshake, want 2", i, n)
		}
		c.Close()
	}
}
