package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/bench/internal/eio"
)

// churnResult is the JSON of the churn scenario. cycles counts the cycles
// that ended (all of them unless incomplete); cyclesPerSec counts only the
// successful ones. The members after cyclesPerSec are additions to
// bench/SPEC.md.
type churnResult struct {
	Scenario     string  `json:"scenario"`
	Cycles       int64   `json:"cycles"`
	Failed       int64   `json:"failed"`
	Seconds      float64 `json:"seconds"`
	CyclesPerSec float64 `json:"cyclesPerSec"`
	// Unanswered counts closes whose close frame the server did not answer
	// within -close-wait.
	Unanswered int64            `json:"unanswered"`
	Incomplete bool             `json:"incomplete"`
	Errors     map[string]int64 `json:"errors,omitempty"`
}

func (r churnResult) incomplete() bool { return r.Incomplete }

// churn runs -cycles connect + close cycles, -concurrency at a time. A
// cycle is the full handshake (to CONNECT) and the WebSocket closing
// handshake; it needs no goroutine of its own.
func (r *runner) churn(ctx context.Context) churnResult {
	n := r.cfg.cycles
	var next, ok, failed, unanswered atomic.Int64
	stop := r.startProgress(func() string {
		return fmt.Sprintf("cycles %d/%d, failed %d", ok.Load()+failed.Load(), n, failed.Load())
	})
	var wg sync.WaitGroup
	start := time.Now()
	for range min(r.cfg.concurrency, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				conn, err := r.dialer.Connect(ctx, i, r.token(i))
				if err != nil {
					if ctx.Err() == nil && !eio.Aborted(err) {
						failed.Add(1)
						r.errs.add(err)
					}
					continue
				}
				if !conn.Close(r.cfg.closeWait) {
					unanswered.Add(1)
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	stop()
	return churnResult{
		Scenario:     "churn",
		Cycles:       ok.Load() + failed.Load(),
		Failed:       failed.Load(),
		Seconds:      seconds(took),
		CyclesPerSec: rate(ok.Load(), took.Seconds()),
		Unanswered:   unanswered.Load(),
		Incomplete:   ctx.Err() != nil,
		Errors:       r.errs.snapshot(),
	}
}
