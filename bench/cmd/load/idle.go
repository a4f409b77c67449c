package main

import (
	"context"
	"fmt"
	"time"
)

// idleResult is the JSON of the idle scenario. The members after
// connectP99Ms are additions to bench/SPEC.md.
type idleResult struct {
	Scenario       string  `json:"scenario"`
	Conns          int     `json:"conns"`
	Connected      int64   `json:"connected"`
	Failed         int64   `json:"failed"`
	ConnectSeconds float64 `json:"connectSeconds"`
	ConnectRate    float64 `json:"connectRate"`
	ConnectP50Ms   float64 `json:"connectP50Ms"`
	ConnectP99Ms   float64 `json:"connectP99Ms"`
	// Dropped counts connections that ended before the tool closed them.
	Dropped int64 `json:"dropped"`
	// Incomplete: the timeout (or a signal) cut the run short.
	Incomplete bool             `json:"incomplete"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	Error      string           `json:"error,omitempty"`
}

func (r idleResult) incomplete() bool { return r.Incomplete }

// idle opens the connections, announces READY, holds them and closes them.
func (r *runner) idle(ctx context.Context) idleResult {
	p := newPool(r)
	stop := r.startProgress(func() string {
		return fmt.Sprintf("connected %d/%d, failed %d, dropped %d", p.connected.Load(), len(p.clients), p.failed.Load(), p.dropped.Load())
	})
	took, latency := p.connectAll(ctx)
	res := idleResult{
		Scenario:       "idle",
		Conns:          r.cfg.conns,
		Connected:      p.connected.Load(),
		Failed:         p.failed.Load(),
		ConnectSeconds: seconds(took),
		ConnectRate:    rate(p.connected.Load(), took.Seconds()),
		ConnectP50Ms:   percentileMs(latency, 0.50),
		ConnectP99Ms:   percentileMs(latency, 0.99),
	}
	if ctx.Err() == nil {
		if err := r.announceReady(); err != nil {
			res.Error = err.Error()
		}
		r.hold(ctx)
	}
	res.Incomplete = ctx.Err() != nil
	stop()
	p.closeAll()
	res.Dropped = p.dropped.Load()
	res.Errors = r.errs.snapshot()
	return res
}

// hold waits -hold, or until -hold-until-file exists, or until ctx ends.
func (r *runner) hold(ctx context.Context) {
	if r.cfg.holdUntilFile != "" {
		waitForFile(ctx, r.cfg.holdUntilFile)
		return
	}
	t := time.NewTimer(r.cfg.hold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
