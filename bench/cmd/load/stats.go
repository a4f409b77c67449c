package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/bench/internal/eio"
)

// micros is d in whole microseconds, clamped to what a sample holds.
func micros(d time.Duration) uint32 { return clampMicros(d.Microseconds()) }

func clampMicros(us int64) uint32 {
	switch {
	case us < 0:
		return 0 // sentAt from a clock a little ahead
	case us > math.MaxUint32-1:
		return math.MaxUint32 - 1 // 71 minutes; latency slots store us+1
	}
	return uint32(us)
}

// percentileMs is the q-quantile (nearest rank) of the µs samples, in
// milliseconds with three decimals; 0 without samples. It sorts samples.
func percentileMs(samples []uint32, q float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	if !slices.IsSorted(samples) {
		slices.Sort(samples)
	}
	rank := int(math.Ceil(q*float64(len(samples)))) - 1
	rank = max(0, min(rank, len(samples)-1))
	return float64(samples[rank]) / 1000 // an integer of µs: exactly 3 decimals
}

// rate is n/seconds rounded to one decimal; 0 when no time passed.
func rate(n int64, seconds float64) float64 {
	if seconds <= 0 {
		return 0
	}
	return round(float64(n)/seconds, 1)
}

func round(x float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(x*p) / p
}

// seconds is d in seconds with microsecond precision.
func seconds(d time.Duration) float64 { return round(d.Seconds(), 6) }

// errorCounts counts failures by kind, for stderr and the "errors" member.
type errorCounts struct {
	mu sync.Mutex
	m  map[string]int64
}

func newErrorCounts() *errorCounts { return &errorCounts{m: make(map[string]int64)} }

func (e *errorCounts) add(err error) {
	k := errorKind(err)
	e.mu.Lock()
	e.m[k]++
	e.mu.Unlock()
}

// snapshot returns a copy, nil when there was no error.
func (e *errorCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

func (e *errorCounts) print(w io.Writer) {
	m := e.snapshot()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	for _, k := range keys {
		fmt.Fprintf(w, "load: %d x %s\n", m[k], k)
	}
}

// errorKind names err without what differs between connections (addresses,
// ports): the stage, then the innermost cause.
func errorKind(err error) string {
	var refused *eio.RefusedError
	if errors.As(err, &refused) {
		s := "connect_error: " + refused.Message
		if refused.Code != "" {
			s += " (" + refused.Code + ")"
		}
		return truncate(s, 100)
	}
	prefix := ""
	var e *eio.Error
	if errors.As(err, &e) {
		prefix, err = e.Stage+": ", e.Err
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("%sclosed by the server (%d)", prefix, ce.Code)
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err = u
	}
	return truncate(prefix+err.Error(), 100)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
