package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/bench/internal/benchapi"
	"github.com/herald-rt/herald/bench/internal/eio"
)

// fanoutResult is the JSON of the fanout scenario. The members after
// outOfOrder are additions to bench/SPEC.md.
type fanoutResult struct {
	Scenario   string  `json:"scenario"`
	Conns      int     `json:"conns"`
	Expected   int64   `json:"expected"`
	Received   int64   `json:"received"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgsPerSec"`
	LatP50Ms   float64 `json:"latP50Ms"`
	LatP99Ms   float64 `json:"latP99Ms"`
	OutOfOrder int64   `json:"outOfOrder"`
	// Connected and Failed are the handshakes; expected counts only the
	// connected: connected × emits × rounds.
	Connected int64 `json:"connected"`
	Failed    int64 `json:"failed"`
	// Dropped counts connections that ended before the tool closed them.
	Dropped int64 `json:"dropped"`
	// Incomplete: the timeout (or a signal, or a failed POST) cut the run
	// short.
	Incomplete bool             `json:"incomplete"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	Error      string           `json:"error,omitempty"`
}

func (r fanoutResult) incomplete() bool { return r.Incomplete }

// fanoutState is what the readers update while events arrive.
type fanoutState struct {
	emits   int
	target  atomic.Int64 // bench events a connection has after the current round
	pending atomic.Int64 // connections below target
	last    atomic.Int64 // wall clock when pending reached 0, Unix ns
	done    chan struct{}
	other   atomic.Int64 // events that are not "bench"
	bad     atomic.Int64 // bench events without seq/sentAt
}

// fanout connects, announces READY (and -ready-file), waits for
// -hold-until-file when given, then for each round POSTs /bench/emit to
// the trigger server and waits until every connection has its events.
func (r *runner) fanout(ctx context.Context) fanoutResult {
	cfg := r.cfg
	perConn := cfg.emits * cfg.rounds
	slab := make([]uint32, cfg.conns*perConn)
	st := &fanoutState{emits: cfg.emits, done: make(chan struct{}, 1)}
	p := newPool(r)
	p.newClient = func(i int) *client {
		return &client{samples: slab[i*perConn : (i+1)*perConn : (i+1)*perConn]}
	}
	p.onEvent = st.onEvent
	var round atomic.Int64 // for the progress line
	stop := r.startProgress(func() string {
		return fmt.Sprintf("connected %d/%d, failed %d, dropped %d, round %d/%d, connections waiting %d",
			p.connected.Load(), len(p.clients), p.failed.Load(), p.dropped.Load(), round.Load(), cfg.rounds, st.pending.Load())
	})
	p.connectAll(ctx)
	connected := p.connected.Load()
	res := fanoutResult{
		Scenario:  "fanout",
		Conns:     cfg.conns,
		Expected:  connected * int64(perConn),
		Connected: connected,
		Failed:    p.failed.Load(),
	}
	// The orchestrator samples the server between the handshakes and the
	// first POST; the rounds' clock starts after the hold.
	if ctx.Err() == nil {
		if err := r.announceReady(); err != nil {
			res.Error = err.Error()
		} else if cfg.holdUntilFile != "" {
			waitForFile(ctx, cfg.holdUntilFile)
		}
	}

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var took time.Duration // the completed rounds
	var t0 time.Time       // start of the current round
	inRound := false
	for i := 0; i < cfg.rounds && ctx.Err() == nil && connected > 0 && res.Error == ""; i++ {
		round.Store(int64(i + 1))
		st.target.Store(int64((i + 1) * cfg.emits))
		st.pending.Store(connected - p.dropped.Load())
		t0, inRound = time.Now(), true
		req := benchapi.EmitRequest{Prefix: "u", From: 0, To: cfg.users, Count: cfg.emits, Pad: cfg.pad}
		tookUs, err := r.trigger(ctx, client, req)
		if err != nil {
			res.Error = err.Error()
			break
		}
		r.logf("trigger: server emitted %d in %.3f ms", req.Count*(req.To-req.From), float64(tookUs)/1000)
		select {
		case <-st.done:
			took += time.Duration(st.last.Load() - t0.UnixNano())
			inRound = false
		case <-ctx.Done():
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
	for _, c := range p.clients {
		if c == nil {
			continue
		}
		res.Received += int64(c.count)
		res.OutOfOrder += int64(c.outOfOrder)
		lastRecv = max(lastRecv, c.lastRecv)
		for _, v := range c.samples[:min(c.count, len(c.samples))] {
			if v != 0 {
				latency = append(latency, v-1)
			}
		}
	}
	if inRound && lastRecv > t0.UnixNano() {
		took += time.Duration(lastRecv - t0.UnixNano())
	}
	res.Seconds = seconds(took)
	res.MsgsPerSec = rate(res.Received, took.Seconds())
	res.LatP50Ms = percentileMs(latency, 0.50)
	res.LatP99Ms = percentileMs(latency, 0.99)
	res.Dropped = p.dropped.Load()
	res.Errors = r.errs.snapshot()
	if n := st.other.Load(); n > 0 {
		r.logf("%d events other than \"bench\" ignored", n)
	}
	if n := st.bad.Load(); n > 0 {
		r.logf("%d bench events without integer seq/sentAt (counted, no latency)", n)
	}
	if n := p.malformed.Load(); n > 0 {
		r.logf("%d malformed packets ignored", n)
	}
	return res
}

// onEvent runs in c's reader goroutine for every event packet.
func (st *fanoutState) onEvent(c *client, data []byte) {
	name, args, err := eio.SplitEvent(data)
	if err != nil || string(name) != "bench" {
		st.other.Add(1)
		return
	}
	now := time.Now()
	k := c.count
	c.count++
	if k%st.emits == 0 {
		c.lastSeq = -1 // a new round starts at seq 0
	}
	if seq, sentAt, err := eio.BenchFields(args); err != nil {
		st.bad.Add(1)
	} else {
		if seq <= c.lastSeq {
			c.outOfOrder++
		}
		c.lastSeq = seq
		if k < len(c.samples) {
			c.samples[k] = clampMicros(now.UnixMicro()-sentAt) + 1
		}
	}
	c.lastRecv = now.UnixNano()
	if int64(c.count) == st.target.Load() && st.pending.Add(-1) == 0 {
		st.last.Store(c.lastRecv)
		select {
		case st.done <- struct{}{}:
		default:
		}
	}
}

// trigger POSTs req to the trigger server's /bench/emit, checks that it
// emitted count × (to − from) events, and returns the time its loop took
// (its tookUs).
func (r *runner) trigger(ctx context.Context, client *http.Client, req benchapi.EmitRequest) (tookUs int64, err error) {
	body, _ := json.Marshal(req)
	url := strings.TrimSuffix(r.cfg.trigger, "/") + "/bench/emit"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("trigger: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return 0, fmt.Errorf("trigger: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, fmt.Errorf("trigger: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("trigger: POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(b))
	}
	var out struct {
		Emitted int64 `json:"emitted"`
		TookUs  int64 `json:"tookUs"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return 0, fmt.Errorf("trigger: POST %s: bad answer %.100q: %w", url, b, err)
	}
	if want := int64(req.Count) * int64(req.To-req.From); out.Emitted != want {
		return 0, fmt.Errorf("trigger: server emitted %d events, want %d", out.Emitted, want)
	}
	return out.TookUs, nil
}
