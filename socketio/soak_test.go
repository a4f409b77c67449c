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
// connect again) for HERALD_SOAK_DURATION (default 20 s in two rounds, the CI mode; the
// long mode is e.g. HERALD_SOAK_DURATION=5m HERALD_SOAK_CLIENTS=3000).
// Goroutines, heap and file descriptors are sampled before and after: once
// the load ends and the clients are gone, they must be back where they were.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: not in -short")
	}
	if raceEnabled {
		// The race detector slows the server down several times and
		// inflates its memory: the figures would be the detector's. `make
		// test` runs this test again without it.
		t.Skip("soak test: runs without -race (make test runs it so)")
	}
	duration := 20 * time.Second
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
	// Two rounds of load: after each, the resources must be back at the
	// baseline (goroutines, fds) and the heap must not grow from the first
	// round to the second (what the first leaves is caches, not leaks).
	var after [2]resources
	for round := range after {
		st := soakRound(t, ts, clients, duration/2)
		eventually(t, "every socket gone", func() bool { return ts.SocketCount() == 0 })
		deadline := time.Now().Add(10 * time.Second)
		for {
			after[round] = sample(t)
			if after[round].goroutines <= before.goroutines+5 && after[round].fds <= before.fds+5 || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("round %d: %d clients for %v: %d sessions, %d acks, %d rate_limited, %d pushes received, %d session errors (first: %v)",
			round+1, clients, duration/2, st.sessions, st.acks, st.limited, st.pushes, st.errs, st.firstErr)
		t.Logf("round %d: goroutines %d -> %d (under load) -> %d; heap %.1f -> %.1f -> %.1f MiB; fds %d -> %d -> %d", round+1,
			before.goroutines, st.peak.goroutines, after[round].goroutines, mib(before.heap), mib(st.peak.heap), mib(after[round].heap), before.fds, st.peak.fds, after[round].fds)
		if st.acks == 0 || st.pushes == 0 || st.sessions < int64(clients) {
			t.Fatalf("the load did not run: %+v", st)
		}
		if st.errs > st.sessions/100 {
			t.Errorf("%d of %d sessions failed; the first: %v", st.errs, st.sessions, st.firstErr)
		}
		if after[round].goroutines > before.goroutines+5 || after[round].fds > before.fds+5 {
			t.Errorf("round %d: goroutines %d -> %d, fds %d -> %d: not back", round+1, before.goroutines, after[round].goroutines, before.fds, after[round].fds)
		}
	}
	if after[1].heap > after[0].heap+4<<20 {
		t.Errorf("the heap grew from round 1 to round 2: %.1f -> %.1f MiB", mib(after[0].heap), mib(after[1].heap))
	}
}

type soakStats struct {
	sessions, acks, limited, pushes, errs int64
	firstErr                              any
	peak                                  resources
}

// soakRound runs clients sessions in a loop, and server pushes to random
// users, for d.
func soakRound(t *testing.T, ts *testServer, clients int, d time.Duration) soakStats {
	ctx, cancel := context.WithTimeout(context.Background(), d)
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
			tok := ts.token(t, fmt.Sprint("soak-", i))
			for ctx.Err() == nil {
				if err := soakSession(ctx, ts, tok, &acks, &limited, &pushes); err != nil && ctx.Err() == nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				connects.Add(1)
			}
		}()
	}
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
	case <-time.After(d / 2):
	case <-ctx.Done():
	}
	peak := sample(t)
	wg.Wait()
	return soakStats{sessions: connects.Load(), acks: acks.Load(), limited: limited.Load(), pushes: pushes.Load(), errs: errs.Load(), firstErr: firstErr.Load(), peak: peak}
}

// soakSession is one client session: connect, then emit acked events and
// read pushes for a random while, then hang up.
func soakSession(ctx context.Context, ts *testServer, tok string, acks, limited, pushes *atomic.Int64) error {
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second}
	// Not ctx: a dial cut by the end of the round would count as a failure.
	ws, _, err := d.DialContext(context.Background(), url, nil)
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
	if dl, ok := ctx.Deadline(); ok && dl.Before(life) {
		life = dl
	}
	// Read until the session's life ends (gorilla's connection is unusable
	// after a read timeout: the client hangs up then).
	_ = ws.SetReadDeadline(life.Add(5 * time.Second))
	id := 0
	emit := func() error {
		id++
		return ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `42%d["where",{"text":"x"}]`, id))
	}
	for time.Now().Before(life) {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		m := string(msg)
		switch {
		case m == "2":
			err = ws.WriteMessage(websocket.TextMessage, []byte("3"))
		case strings.HasPrefix(m, "40{"):
			err = emit() // connected: the first event
		case strings.HasPrefix(m, `42["job_progress"`):
			pushes.Add(1)
		case strings.HasPrefix(m, "43"):
			if strings.Contains(m, `"rate_limited"`) {
				limited.Add(1) // EventRate: the client sends as fast as it is answered
			} else {
				acks.Add(1)
			}
			err = emit()
		}
		if err != nil {
			return err
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
