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

// TestWritesInterleaved mixes the two ways a message reaches a
// connection: room deliveries (EmitToUser, through the Broker, encoded once
// for every recipient) and emits to one socket (Emit). Every fourth message
// is 5 KB.
//
//   - "one sequence": one goroutine alternates the two ways with one
//     counter: the client must see every message, in the order emitted.
//   - "two goroutines": each way at full speed at once, each with its own
//     counter: nothing lost, each in order, no frame split (the client
//     would drop the connection).
//
// It runs on a WebSocket, on a session that upgraded from long-polling to
// WebSocket, and on long-polling.
func TestWritesInterleaved(t *testing.T) {
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
		transport  string // the server's transport during the bursts
	}{
		{"websocket", []string{"websocket"}, "websocket"},
		{"upgrade", nil, "websocket"}, // polling, then WebSocket: the client's default
		{"polling", []string{"polling"}, "polling"},
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
			if tr := s.Transport(); tr != tc.transport {
				t.Fatalf("transport %q, want %q", tr, tc.transport)
			}

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
			if tr := s.Transport(); tr != tc.transport {
				t.Fatalf("transport %q after the bursts, want %q", tr, tc.transport)
			}
		})
	}
}

// TestWritesAcrossUpgrade emits both ways, from one goroutine with one
// counter, while the session upgrades from long-polling to WebSocket (the
// upgrade request is held for 300 ms so that it lands in the middle):
// after the upgrade, no message may overtake one still queued for the
// polls, and none may be lost or repeated.
func TestWritesAcrossUpgrade(t *testing.T) {
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
	n, after := 0, 0 // messages in all, and since the upgrade
	for after < 200 && n < 50000 {
		if s.Transport() == "websocket" {
			after++
		}
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
	t.Logf("%d messages across the upgrade, %d after it", n, after)
	if after < 200 {
		t.Fatal("the session did not upgrade during the burst")
	}
}

// TestHandshakeWrites: a WebSocket handshake costs the server two writes,
// the upgrade response with the OPEN packet, and the CONNECT answer with
// the greeting, and the client sees nothing different.
func TestHandshakeWrites(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	socks := make(chan *socketio.Socket, 1)
	must(t, socketio.On(ts.Server, interleave, func(_ context.Context, s *socketio.Socket, _ padSeq) error {
		socks <- s
		return nil
	}))
	ctx := testCtx(t, 30*time.Second)
	for i := range 3 {
		c := ts.connect(t, fmt.Sprintf("hs-writes-%d", i), "websocket")
		s := serverSocket(t, ctx, c, socks)
		// The "interleave" event reached the handler after the
		// greeting was read: nothing else is written meanwhile.
		if n := socketio.ConnWrites(s); n != 2 {
			t.Fatalf("connection %d: %d writes for the handshake, want 2", i, n)
		}
		c.Close()
	}
}
