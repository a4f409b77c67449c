package main

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/bench/internal/benchapi"
	"github.com/herald-rt/herald/bench/internal/eio"
)

// The scenarios that POST rounds and account for every event: pollfanout
// (long-polling clients, -emits 20 per user in one round) and roundsfanout
// (a closed loop: -rounds 20 of one event per user, each POSTed once the
// one before has reached every connection). Round i carries the seqs
// i×emits .. (i+1)×emits−1 (the POST's "seq"), so every event of a run has
// a seq of its own and each connection counts what it got of each: lost,
// duplicated, or not the run's at all.

// roundsResult is the JSON of pollfanout and roundsfanout (bench/SPEC.md).
type roundsResult struct {
	Scenario  string `json:"scenario"`
	Transport string `json:"transport"`
	Conns     int    `json:"conns"`
	Rounds    int    `json:"rounds"`
	Emits     int    `json:"emits"` // events per user per round
	// Expected is connected × rounds × emits.
	Expected int64 `json:"expected"`
	// Received counts each connection's seqs once; Duplicates the copies
	// beyond the first, Unexpected the bench events without a seq of the
	// run (or without integer seq and sentAt).
	Received   int64 `json:"received"`
	Lost       int64 `json:"lost"` // seqs of the rounds POSTed that a connection did not get
	Duplicates int64 `json:"duplicates"`
	Unexpected int64 `json:"unexpected"`
	// Seconds is from just before the first POST to the last event.
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgsPerSec"`
	LatP50Ms   float64 `json:"latP50Ms"`
	LatP99Ms   float64 `json:"latP99Ms"`
	// OutOfOrder counts first receipts whose seq was not above the
	// connection's previous one.
	OutOfOrder int64 `json:"outOfOrder"`
	// RoundsDone counts the rounds delivered to every connection;
	// RoundP50Ms and RoundMaxMs are their times, from just before the
	// POST to the last connection's last event of the round.
	RoundsDone int     `json:"roundsDone"`
	RoundP50Ms float64 `json:"roundP50Ms"`
	RoundMaxMs float64 `json:"roundMaxMs"`
	Connected  int64   `json:"connected"`
	Failed     int64   `json:"failed"`
	// Dropped counts connections that ended before the tool closed them.
	Dropped int64 `json:"dropped"`
	// Incomplete: the timeout (or a signal, a failed POST, a round that
	// stalled) cut the run short.
	Incomplete bool             `json:"incomplete"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	Error      string           `json:"error,omitempty"`
}

// incomplete: a run that lost events failed, even when it ran to the end
// (a connection that dropped).
func (r roundsResult) incomplete() bool { return r.Incomplete || r.Lost > 0 }

// roundsState is what the readers update while events arrive.
type roundsState struct {
	target   atomic.Int64 // seqs a connection has once the current round is delivered
	pending  atomic.Int64 // connections below target
	last     atomic.Int64 // wall clock when pending reached 0, Unix ns
	done     chan struct{}
	progress atomic.Int64 // first receipts, for the stall check and the progress line
	other    atomic.Int64 // events that are not "bench"
}

// roundEnd is how waiting for a round ended.
type roundEnd int

const (
	roundDelivered roundEnd = iota // every connection has it
	roundStalled                   // no event for -stall
	roundStopped                   // ctx ended
)

// rounds runs pollfanout or roundsfanout: it connects, announces READY
// (and -ready-file), waits for -hold-until-file when given, then POSTs the
// rounds to the trigger server one after the other, each once the one
// before has been delivered to every connection that is still up.
func (r *runner) rounds(ctx context.Context) roundsResult {
	cfg := r.cfg
	perConn := cfg.emits * cfg.rounds
	seen := make([]bool, cfg.conns*perConn)
	slab := make([]uint32, cfg.conns*perConn)
	st := &roundsState{done: make(chan struct{}, 1)}
	p := newPool(r)
	if cfg.transport == transportPolling {
		p.usePolling()
	}
	p.newClient = func(i int) *client {
		lo, hi := i*perConn, (i+1)*perConn
		return &client{lastSeq: -1, seen: seen[lo:hi:hi], samples: slab[lo:hi:hi]}
	}
	p.onEvent = st.onEvent
	var round atomic.Int64 // for the progress line
	stop := r.startProgress(func() string {
		return fmt.Sprintf("connected %d/%d, failed %d, dropped %d, round %d/%d, connections waiting %d, events %d",
			p.connected.Load(), len(p.clients), p.failed.Load(), p.dropped.Load(), round.Load(), cfg.rounds, st.pending.Load(), st.progress.Load())
	})
	p.connectAll(ctx)
	connected := p.connected.Load()
	res := roundsResult{
		Scenario:  cfg.scenario,
		Transport: cfg.transport,
		Conns:     cfg.conns,
		Rounds:    cfg.rounds,
		Emits:     cfg.emits,
		Expected:  connected * int64(perConn),
		Connected: connected,
		Failed:    p.failed.Load(),
	}
	if ctx.Err() == nil {
		if err := r.announceReady(); err != nil {
			res.Error = err.Error()
		} else if cfg.holdUntilFile != "" {
			waitForFile(ctx, cfg.holdUntilFile)
		}
	}

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var (
		start      time.Time // just before the first POST
		posted     int       // rounds the server emitted
		roundTimes []uint32  // µs
		emitUs     int64     // the server's emit loops
	)
	for i := 0; i < cfg.rounds && ctx.Err() == nil && connected > 0 && res.Error == ""; i++ {
		live := connected - p.dropped.Load()
		if live <= 0 {
			res.Error = "every connection dropped"
			break
		}
		round.Store(int64(i + 1))
		st.target.Store(int64((i + 1) * cfg.emits))
		st.pending.Store(live)
		t0 := time.Now()
		if i == 0 {
			start = t0
		}
		req := benchapi.EmitRequest{Prefix: "u", From: 0, To: cfg.users, Count: cfg.emits, Pad: cfg.pad, Seq: i * cfg.emits}
		tookUs, err := r.trigger(ctx, client, req)
		if err != nil {
			res.Error = err.Error()
			break
		}
		posted++
		emitUs += tookUs
		switch st.wait(ctx, cfg.stall) {
		case roundDelivered:
			res.RoundsDone++
			roundTimes = append(roundTimes, clampMicros((st.last.Load()-t0.UnixNano())/1000))
		case roundStalled:
			res.Error = fmt.Sprintf("round %d: no event for %v, %d connections waiting", i+1, cfg.stall, st.pending.Load())
		}
	}
	if connected == 0 && res.Error == "" {
		res.Error = "no connection"
	}
	res.Incomplete = ctx.Err() != nil || res.Error != ""
	stop()
	p.closeAll()

	// The readers have ended: their fields can be read.
	var lastRecv int64
	latency := make([]uint32, 0, res.Expected)
	due := posted * cfg.emits // seqs every connection should have
	for _, c := range p.clients {
		if c == nil {
			continue
		}
		res.Received += int64(c.distinct)
		res.Duplicates += int64(c.duplicates)
		res.Unexpected += int64(c.unexpected)
		res.OutOfOrder += int64(c.outOfOrder)
		lastRecv = max(lastRecv, c.lastRecv)
		for _, ok := range c.seen[:due] {
			if !ok {
				res.Lost++
			}
		}
		for _, v := range c.samples {
			if v != 0 {
				latency = append(latency, v-1)
			}
		}
	}
	var took time.Duration
	switch {
	case posted == 0:
	case res.RoundsDone == cfg.rounds:
		took = time.Duration(st.last.Load() - start.UnixNano())
	case lastRecv > start.UnixNano():
		took = time.Duration(lastRecv - start.UnixNano())
	}
	res.Seconds = seconds(took)
	res.MsgsPerSec = rate(res.Received, took.Seconds())
	res.LatP50Ms = percentileMs(latency, 0.50)
	res.LatP99Ms = percentileMs(latency, 0.99)
	res.RoundP50Ms = percentileMs(roundTimes, 0.50)
	res.RoundMaxMs = percentileMs(roundTimes, 1)
	res.Dropped = p.dropped.Load()
	res.Errors = r.errs.snapshot()
	if res.Lost > 0 && res.Error == "" {
		res.Error = fmt.Sprintf("%d events lost", res.Lost)
	}
	if posted > 0 {
		r.logf("trigger: %d POSTs, the server's emit loops took %.3f ms in all", posted, float64(emitUs)/1000)
	}
	if n := st.other.Load(); n > 0 {
		r.logf("%d events other than \"bench\" ignored", n)
	}
	if n := p.malformed.Load(); n > 0 {
		r.logf("%d malformed packets ignored", n)
	}
	return res
}

// onEvent runs in c's reader goroutine for every event packet.
func (st *roundsState) onEvent(c *client, data []byte) {
	name, args, err := eio.SplitEvent(data)
	if err != nil || string(name) != "bench" {
		st.other.Add(1)
		return
	}
	now := time.Now()
	c.count++
	c.lastRecv = now.UnixNano()
	seq, sentAt, err := eio.BenchFields(args)
	switch {
	case err != nil || seq < 0 || seq >= int64(len(c.seen)):
		c.unexpected++
		return
	case c.seen[seq]:
		c.duplicates++
		return
	}
	c.seen[seq] = true
	if seq <= c.lastSeq {
		c.outOfOrder++
	}
	c.lastSeq = seq
	c.samples[seq] = clampMicros(now.UnixMicro()-sentAt) + 1
	c.distinct++
	st.progress.Add(1)
	if int64(c.distinct) == st.target.Load() && st.pending.Add(-1) == 0 {
		st.last.Store(c.lastRecv)
		select {
		case st.done <- struct{}{}:
		default:
		}
	}
}

// wait waits until the current round is delivered, ctx ends, or (stall >
// 0) no event has come for stall.
func (st *roundsState) wait(ctx context.Context, stall time.Duration) roundEnd {
	var tick <-chan time.Time
	if stall > 0 {
		t := time.NewTicker(max(min(stall/4, time.Second), time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	n, since := st.progress.Load(), time.Now()
	for {
		select {
		case <-st.done:
			return roundDelivered
		case <-ctx.Done():
			return roundStopped
		case now := <-tick:
			if m := st.progress.Load(); m != n {
				n, since = m, now
			} else if now.Sub(since) >= stall {
				return roundStalled
			}
		}
	}
}
