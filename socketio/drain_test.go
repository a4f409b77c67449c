package socketio_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/socketio"
)

// TestShutdownDrain: Shutdown closes 200 connections spread over
// Config.ShutdownDrain, in batches, not all at once, and each client sees
// its connection close (so that it reconnects), not a Socket.IO DISCONNECT.
func TestShutdownDrain(t *testing.T) {
	const n = 200
	drain := time.Second
	ts := startServer(t, socketio.Config{ShutdownDrain: drain, MaxConnectionsPerUser: -1})
	tok := ts.token(t, "drained")
	var (
		mu     sync.Mutex
		closed []time.Time
		last   []string
		wg     sync.WaitGroup
	)
	for range n {
		ws := rawWS(t, ts, "")
		must(t, ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `40{"token":%q}`, tok)))
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, msg, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "40") {
			t.Fatalf("CONNECT: %q %v", msg, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var final string
			for {
				_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, msg, err := ws.ReadMessage()
				if err != nil {
					break
				}
				if string(msg) == "2" {
					_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
				}
				final = string(msg)
			}
			mu.Lock()
			closed = append(closed, time.Now())
			last = append(last, final)
			mu.Unlock()
		}()
	}
	eventually(t, "all connected", func() bool { return ts.SocketCount() == n })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	must(t, ts.Shutdown(ctx))
	took := time.Since(start)
	wg.Wait()

	slices.SortFunc(closed, func(a, b time.Time) int { return a.Compare(b) })
	span := closed[n-1].Sub(closed[0])
	buckets := map[int]int{}
	busiest := 0
	for _, c := range closed {
		b := int(c.Sub(start) / (100 * time.Millisecond))
		buckets[b]++
		busiest = max(busiest, buckets[b])
	}
	t.Logf("%d connections closed over %v (Shutdown took %v), busiest 100 ms: %d closes, %d of 100 ms slots used", n, span, took, busiest, len(buckets))
	// Ten steps of 100 ms: about 20 a step; never all at once.
	if span < drain/2 || busiest > n/4 {
		t.Errorf("closes spread over %v, busiest 100 ms had %d of %d; want them spread over about %v", span, busiest, n, drain)
	}
	for _, f := range last {
		if strings.HasPrefix(f, "41") {
			t.Fatalf("a client got a Socket.IO DISCONNECT (%q): it would not reconnect", f)
		}
	}
}
