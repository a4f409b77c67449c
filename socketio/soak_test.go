package socketio_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio"
)

// Soak: HERALD_SOAK_CLIENTS clients (default 100) over raw WebSocket
// connect, emit acked events, receive server pushes and churn (hang up and
// connect again) for HERALD_SOAK_DURATION (default 15 s, the CI mode; the
// long mode is e.g. HERALD_SOAK_DURATION=5m HERALD_SOAK_CLIENTS=3000).
// Goroutines, heap and file descriptors are sampled before and after: once
// the load ends and the clients are gone, they must be back where they were.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: not in -short")
	}
	duration := 15 * time.Second
	if d, err := time.ParseDuration(os.Getenv("HERALD_SOAK_DURATION")); err == nil && d > 0 {
		duration = d
	}
	clients := 100
	if n, err := strconv.Atoi(os.Getenv("HERALD_SOAK_CLIENTS")); err == nil && n > 0 {
		clients = n
	}
	ts := startServer(t, socketio.Config{})
	registerWhere(t, ts)
	before := sample(t)

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var (
		connects, acks, limited, pushes, errs atomic.Int64
		wg                                    sync.WaitGroup
		firstErr                              atomic.Value
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprint("soak-", i)
			tok := ts.token(t, user)
			for ctx.Err() == nil {
				if err := soakSession(ctx, ts, tok, &acks, &limited, &pushes); err != nil && ctx.Err() == nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				connects.Add(1)
			}
		}()
	}
	// The server pushes to random users meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				_ = ts.EmitToUser(context.Background(), fmt.Sprint("soak-", rand.IntN(clients)), events.JobProgress, events.JobProgressPayload{JobID: "soak", Progress: 1})
			}
		}
	}()
	select {
	case <-time.After(duration / 2):
	case <-ctx.Done():
	}
	peak := sample(t)
	wg.Wait()
	eventually(t, "every socket gone", func() bool { return ts.SocketCount() == 0 })

	var after resources
	deadline := time.Now().Add(10 * time.Second)
	for {
		after = sample(t)
		if after.goroutines <= before.goroutines+5 && after.fds <= before.fds+5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d clients for %v: %d sessions, %d acks, %d rate_limited, %d pushes received, %d session errors",
		clients, duration, connects.Load(), acks.Load(), limited.Load(), pushes.Load(), errs.Load())
	t.Logf("goroutines %d -> %d (under load) -> %d; heap %.1f -> %.1f -> %.1f MiB; fds %d -> %d -> %d",
		before.goroutines, peak.goroutines, after.goroutines, mib(before.heap), mib(peak.heap), mib(after.heap), before.fds, peak.fds, after.fds)
	if acks.Load() == 0 || pushes.Load() == 0 || connects.Load() < int64(clients) {
		t.Fatalf("the load did not run: %d sessions, %d acks, %d pushes", connects.Load(), acks.Load(), pushes.Load())
	}
	if errs.Load() > connects.Load()/100 {
		t.Errorf("%d of %d sessions failed; the first: %v", errs.Load(), connects.Load(), firstErr.Load())
	}
	if after.goroutines > before.goroutines+5 || after.fds > before.fds+5 || after.heap > before.heap+32<<20 {
		t.Errorf("resources did not come back: goroutines %d -> %d, fds %d -> %d, heap %.1f -> %.1f MiB",
			before.goroutines, after.goroutines, before.fds, after.fds, mib(before.heap), mib(after.heap))
	}
}

// soakSession is one client session: connect, then emit acked events and
// read pushes for a random while, then hang up.
func soakSession(ctx context.Context, ts *testServer, tok string, acks, limited, pushes *atomic.Int64) error {
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second}
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return err
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), "0") {
		return fmt.Errorf("open: %q %v", msg, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `40{"token":%q}`, tok)); err != nil {
		return err
	}
	life := time.Now().Add(time.Duration(200+rand.IntN(1800)) * time.Millisecond)
	id := 0
	sent := false
	for time.Now().Before(life) && ctx.Err() == nil {
		_ = ws.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, msg, err := ws.ReadMessage()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				// gorilla's connection is unusable after a read error:
				// end this session as a client that hangs up would.
				return nil
			}
			return err
		}
		m := string(msg)
		switch {
		case m == "2":
			_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
		case strings.HasPrefix(m, `42["job_progress"`):
			pushes.Add(1)
		case strings.HasPrefix(m, "43"):
			if strings.Contains(m, `"rate_limited"`) {
				limited.Add(1) // EventRate: the client sends as fast as it is answered
			} else {
				acks.Add(1)
			}
			sent = false
		}
		if !sent {
			id++
			if err := ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `42%d["where",{"text":"x"}]`, id)); err != nil {
				return err
			}
			sent = true
		}
	}
	return nil
}

type resources struct {
	goroutines int
	heap       uint64
	fds        int
}

func sample(t *testing.T) resources {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds := -1
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(entries)
	}
	return resources{goroutines: runtime.NumGoroutine(), heap: ms.HeapInuse, fds: fds}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
