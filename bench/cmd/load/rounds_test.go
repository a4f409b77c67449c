package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/bench/internal/benchapi"
)

// triggerProxy stands between the load generator and the server's
// POST /bench/emit: it records each request, and edit (when not nil) may
// change what is forwarded, how often, and what is answered.
type triggerProxy struct {
	URL string

	mu       sync.Mutex
	requests []benchapi.EmitRequest
}

// forward POSTs req to the server n times and returns the last answer.
type forwardFunc func(req benchapi.EmitRequest, n int) (status int, body []byte)

func newTriggerProxy(t *testing.T, server string, edit func(req benchapi.EmitRequest, forward forwardFunc) (int, []byte)) *triggerProxy {
	t.Helper()
	tp := &triggerProxy{}
	fwd := &http.Client{Transport: &http.Transport{}}
	forward := func(req benchapi.EmitRequest, n int) (int, []byte) {
		body, _ := json.Marshal(req)
		status, out := http.StatusBadGateway, []byte(`{"error":"not forwarded"}`)
		for range n {
			resp, err := fwd.Post(server+"/bench/emit", "application/json", bytes.NewReader(body))
			if err != nil {
				return http.StatusBadGateway, []byte(err.Error())
			}
			out, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		return status, out
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req benchapi.EmitRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tp.mu.Lock()
		tp.requests = append(tp.requests, req)
		tp.mu.Unlock()
		var status int
		var body []byte
		if edit != nil {
			status, body = edit(req, forward)
		} else {
			status, body = forward(req, 1)
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(func() {
		ts.Close()
		fwd.CloseIdleConnections()
	})
	tp.URL = ts.URL
	return tp
}

func (tp *triggerProxy) seen() []benchapi.EmitRequest {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]benchapi.EmitRequest(nil), tp.requests...)
}

// checkDelivered checks a run that delivered every event exactly once.
func checkDelivered(t *testing.T, res roundsResult, want roundsResult) {
	t.Helper()
	want.Scenario, want.Incomplete = res.Scenario, false
	got := res
	got.Seconds, got.MsgsPerSec, got.LatP50Ms, got.LatP99Ms, got.RoundP50Ms, got.RoundMaxMs = 0, 0, 0, 0, 0, 0
	if got.Errors != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("result = %+v\nwant     %+v", got, want)
	}
	if res.Seconds <= 0 || res.MsgsPerSec <= 0 || res.LatP50Ms <= 0 || res.LatP99Ms < res.LatP50Ms ||
		res.RoundP50Ms <= 0 || res.RoundMaxMs < res.RoundP50Ms {
		t.Errorf("figures not plausible: %+v", res)
	}
}

func TestPollFanout(t *testing.T) {
	ts := startBenchServer(t)
	tp := newTriggerProxy(t, ts.URL, nil)
	var res roundsResult
	stderr, err := runLoad(t, &res, "pollfanout", "-url", ts.URL, "-trigger", tp.URL, "-secret", testSecret,
		"-users", "50", "-conns", "100", "-emits", "5", "-rounds", "2", "-pad", "64", "-timeout", "30s", "-progress", "5ms")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	const want = 100 * 5 * 2
	checkDelivered(t, res, roundsResult{Transport: "polling", Conns: 100, Rounds: 2, Emits: 5, Expected: want, Received: want,
		RoundsDone: 2, Connected: 100})
	// Round i carries the seqs from i × emits: every event of the run has
	// its own.
	if got := fmt.Sprint(tp.seen()); got != "[{u 0 50 5 64 0} {u 0 50 5 64 5}]" {
		t.Errorf("POSTs %s", got)
	}
	waitSockets(t, ts, 0)
}

// The closed loop: one POST of count 1 per round, seq = round, each once
// the one before is delivered; with the orchestrator's ready and hold
// files, the first POST comes only after the hold file.
func TestRoundsFanout(t *testing.T) {
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ts := startBenchServer(t)
			dir := t.TempDir()
			ready, holdUntil := filepath.Join(dir, "ready"), filepath.Join(dir, "hold")
			var early atomic.Int64
			tp := newTriggerProxy(t, ts.URL, func(req benchapi.EmitRequest, forward forwardFunc) (int, []byte) {
				if _, err := os.Stat(holdUntil); err != nil {
					early.Add(1)
				}
				return forward(req, 1)
			})
			released := make(chan struct{})
			t.Cleanup(func() { <-released })
			go func() {
				defer close(released)
				if waitForReady(t, ready) {
					time.Sleep(50 * time.Millisecond) // a tool that does not wait would POST now
					_ = os.WriteFile(holdUntil, nil, 0o644)
				}
			}()
			var res roundsResult
			stderr, err := runLoad(t, &res, "roundsfanout", "-url", ts.URL, "-trigger", tp.URL, "-secret", testSecret,
				"-users", "40", "-conns", "80", "-rounds", "6", "-transport", transport, "-timeout", "30s",
				"-ready-file", ready, "-hold-until-file", holdUntil)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			checkDelivered(t, res, roundsResult{Transport: transport, Conns: 80, Rounds: 6, Emits: 1, Expected: 480, Received: 480,
				RoundsDone: 6, Connected: 80})
			reqs := tp.seen()
			if len(reqs) != 6 || early.Load() != 0 {
				t.Fatalf("%d POSTs, %d before the hold file; want 6 and 0", len(reqs), early.Load())
			}
			for i, req := range reqs {
				if want := (benchapi.EmitRequest{Prefix: "u", To: 40, Count: 1, Seq: i}); req != want {
					t.Errorf("POST %d = %+v, want %+v", i, req, want)
				}
			}
			waitSockets(t, ts, 0)
		})
	}
}

// Every event twice: counted once, the copies reported, the run complete.
func TestRoundsDuplicates(t *testing.T) {
	ts := startBenchServer(t)
	tp := newTriggerProxy(t, ts.URL, func(req benchapi.EmitRequest, forward forwardFunc) (int, []byte) {
		return forward(req, 2)
	})
	var res roundsResult
	stderr, err := runLoad(t, &res, "pollfanout", "-url", ts.URL, "-trigger", tp.URL, "-secret", testSecret,
		"-users", "20", "-emits", "3", "-timeout", "30s")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	// The copies of the last round may still be on their way when it is
	// delivered: at most all of them.
	if res.Received != 60 || res.Lost != 0 || res.Duplicates > 60 || res.Unexpected != 0 || res.Incomplete || res.Error != "" {
		t.Errorf("result = %+v, want 60 received, none lost, up to 60 duplicates", res)
	}
	waitSockets(t, ts, 0)
}

// The last user gets nothing: the round stalls, the run ends without
// waiting for -timeout, and the events are lost.
func TestRoundsLost(t *testing.T) {
	ts := startBenchServer(t)
	tp := newTriggerProxy(t, ts.URL, func(req benchapi.EmitRequest, forward forwardFunc) (int, []byte) {
		short := req
		short.To--
		if status, body := forward(short, 1); status != http.StatusOK {
			return status, body
		}
		return http.StatusOK, fmt.Appendf(nil, `{"emitted":%d,"tookUs":1}`, req.Count*(req.To-req.From))
	})
	var res roundsResult
	start := time.Now()
	stderr, err := runLoad(t, &res, "roundsfanout", "-url", ts.URL, "-trigger", tp.URL, "-secret", testSecret,
		"-users", "10", "-conns", "20", "-rounds", "3", "-stall", "300ms", "-timeout", "30s")
	if !errors.Is(err, errIncomplete) {
		t.Fatalf("run = %v, want errIncomplete\n%s", err, stderr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %v with a 300ms stall", took)
	}
	// u9 has connections 9 and 19: round 1 is lost to both, and no
	// other round was POSTed.
	if res.Lost != 2 || res.Received != 18 || res.RoundsDone != 0 || res.Expected != 60 || !res.Incomplete ||
		!strings.Contains(res.Error, "round 1: no event for 300ms, 2 connections waiting") {
		t.Errorf("result = %+v", res)
	}
	if n := len(tp.seen()); n != 1 {
		t.Errorf("%d POSTs, want 1", n)
	}
	waitSockets(t, ts, 0)
}

// With a trigger that emits nothing and no stall check, the run stops at
// -timeout, incomplete, and what the POSTed round did not bring is lost.
func TestRoundsTimeout(t *testing.T) {
	ts := startBenchServer(t)
	idle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"emitted":20,"tookUs":1}`))
	}))
	defer idle.Close()
	var res roundsResult
	start := time.Now()
	stderr, err := runLoad(t, &res, "pollfanout", "-url", ts.URL, "-trigger", idle.URL, "-secret", testSecret,
		"-users", "10", "-emits", "2", "-stall", "0", "-timeout", "1s")
	if !errors.Is(err, errIncomplete) {
		t.Fatalf("run = %v, want errIncomplete\n%s", err, stderr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("run took %v after a 1s timeout", took)
	}
	if !res.Incomplete || res.Expected != 20 || res.Received != 0 || res.Lost != 20 || res.Connected != 10 || res.Error != "20 events lost" {
		t.Errorf("result = %+v", res)
	}
	waitSockets(t, ts, 0)
}
