package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runLoad runs the load generator in-process and decodes its JSON into out.
// It returns what went to stderr and run's error.
func runLoad(t *testing.T, out any, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	if out != nil && stdout.Len() > 0 {
		if jerr := json.Unmarshal(stdout.Bytes(), out); jerr != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", jerr, stdout.String())
		}
	}
	if strings.Count(stdout.String(), "\n") > 1 {
		t.Errorf("stdout has more than one line:\n%s", stdout.String())
	}
	t.Logf("stdout: %s", bytes.TrimSpace(stdout.Bytes()))
	return stderr.String(), err
}

func TestIdle(t *testing.T) {
	ts := startBenchServer(t)
	dir := t.TempDir()
	ready, holdUntil := filepath.Join(dir, "ready"), filepath.Join(dir, "hold")

	// The orchestrator's side: once ready, look at the server, then release.
	seen := make(chan int, 1)
	go func() {
		for {
			if _, err := os.Stat(ready); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		seen <- ts.SocketCount()
		_ = os.WriteFile(holdUntil, nil, 0o644)
	}()

	var res idleResult
	stderr, err := runLoad(t, &res, "idle", "-url", ts.URL, "-secret", testSecret,
		"-users", "50", "-conns", "200", "-concurrency", "20", "-timeout", "30s",
		"-ready-file", ready, "-hold-until-file", holdUntil, "-progress", "5ms")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if got := <-seen; got != 200 {
		t.Errorf("server had %d sockets at READY, want 200", got)
	}
	if !strings.Contains(stderr, "\nREADY\n") && !strings.HasPrefix(stderr, "READY\n") {
		t.Errorf("stderr has no READY line:\n%s", stderr)
	}
	want := idleResult{Scenario: "idle", Conns: 200, Connected: 200}
	if res.Errors != nil || !sameIdle(res, want) {
		t.Errorf("result = %+v, want %+v", res, want)
	}
	if res.ConnectSeconds <= 0 || res.ConnectRate <= 0 || res.ConnectP50Ms <= 0 || res.ConnectP99Ms < res.ConnectP50Ms {
		t.Errorf("connect figures not plausible: %+v", res)
	}
	waitSockets(t, ts, 0)
}

func sameIdle(a, b idleResult) bool {
	return a.Scenario == b.Scenario && a.Conns == b.Conns && a.Connected == b.Connected &&
		a.Failed == b.Failed && a.Dropped == b.Dropped && a.Incomplete == b.Incomplete && a.Error == b.Error
}

// waitSockets waits until the server has n sockets: the tool's closes reach
// it asynchronously.
func waitSockets(t *testing.T, ts *benchServer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ts.SocketCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server has %d sockets, want %d", ts.SocketCount(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestIdleHold(t *testing.T) {
	ts := startBenchServer(t)
	var res idleResult
	start := time.Now()
	stderr, err := runLoad(t, &res, "idle", "-url", ts.URL, "-secret", testSecret,
		"-users", "10", "-conns", "20", "-hold", "300ms", "-src", "127.0.0.1,127.0.0.2")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("run took %v, shorter than -hold", took)
	}
	if res.Connected != 20 || res.Failed != 0 || res.Incomplete {
		t.Errorf("result = %+v", res)
	}
}

func TestFanout(t *testing.T) {
	ts := startBenchServer(t)
	var res fanoutResult
	stderr, err := runLoad(t, &res, "fanout", "-url", ts.URL, "-secret", testSecret,
		"-users", "100", "-conns", "200", "-emits", "5", "-rounds", "2", "-pad", "64", "-timeout", "30s", "-progress", "5ms")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	const want = 200 * 5 * 2
	if res.Expected != want || res.Received != want || res.OutOfOrder != 0 || res.Connected != 200 ||
		res.Failed != 0 || res.Dropped != 0 || res.Incomplete || res.Errors != nil || res.Error != "" {
		t.Errorf("result = %+v, want expected = received = %d and no failure", res, want)
	}
	if res.Seconds <= 0 || res.MsgsPerSec <= 0 || res.LatP50Ms <= 0 || res.LatP99Ms < res.LatP50Ms {
		t.Errorf("figures not plausible: %+v", res)
	}
	waitSockets(t, ts, 0)
}

func TestChurn(t *testing.T) {
	ts := startBenchServer(t)
	var res churnResult
	stderr, err := runLoad(t, &res, "churn", "-url", ts.URL, "-secret", testSecret,
		"-users", "20", "-cycles", "300", "-concurrency", "20", "-timeout", "30s", "-src", "127.0.0.1,127.0.0.3", "-progress", "5ms")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if res.Cycles != 300 || res.Failed != 0 || res.Incomplete || res.Errors != nil {
		t.Errorf("result = %+v", res)
	}
	if res.Seconds <= 0 || res.CyclesPerSec <= 0 {
		t.Errorf("figures not plausible: %+v", res)
	}
	waitSockets(t, ts, 0)
}

// A connection the server refuses counts as failed, once: no retry.
func TestRefused(t *testing.T) {
	ts := startBenchServer(t)
	for _, scenario := range []string{"idle", "churn"} {
		t.Run(scenario, func(t *testing.T) {
			var res map[string]any
			args := []string{scenario, "-url", ts.URL, "-secret", "not-the-server-secret-0123456789",
				"-users", "5", "-conns", "10", "-timeout", "30s"}
			if scenario == "idle" {
				args = append(args, "-hold", "0s")
			} else {
				args = append(args, "-cycles", "10")
			}
			stderr, err := runLoad(t, &res, args...)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, stderr)
			}
			if res["failed"] != 10.0 {
				t.Errorf("failed = %v, want 10", res["failed"])
			}
			errs, _ := res["errors"].(map[string]any)
			if errs["connect_error: unauthorized (token_invalid)"] != 10.0 {
				t.Errorf("errors = %v, want 10 x connect_error: unauthorized (token_invalid)", errs)
			}
		})
	}
}

// waitForReady returns once path exists, or fails the test after 30 s.
func waitForReady(t *testing.T, path string) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("no ready file %s after 30s", path)
	return false
}

// The orchestrator's side of fanout: once the ready file is there every
// connection is up and no POST has gone out; the POST comes only after the
// hold-until file exists.
func TestFanoutReadyHold(t *testing.T) {
	ts := startBenchServer(t)
	dir := t.TempDir()
	ready, holdUntil := filepath.Join(dir, "ready"), filepath.Join(dir, "hold")

	// The trigger: forwards POST /bench/emit to the server, and records
	// whether the hold-until file existed when the POST came.
	var posts, early atomic.Int64
	fwd := &http.Client{Transport: &http.Transport{}}
	defer fwd.CloseIdleConnections()
	trigger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		if _, err := os.Stat(holdUntil); err != nil {
			early.Add(1)
		}
		resp, err := fwd.Post(ts.URL+r.URL.Path, "application/json", r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	defer trigger.Close()

	type atReady struct{ sockets, posts int64 }
	seen := make(chan atReady, 1)
	t.Cleanup(func() {
		for range seen { // the goroutine has ended when seen is closed
		}
	})
	go func() {
		defer close(seen)
		if !waitForReady(t, ready) {
			return
		}
		at := atReady{sockets: int64(ts.SocketCount())}
		// Give a tool that does not wait the time to POST anyway.
		time.Sleep(200 * time.Millisecond)
		at.posts = posts.Load()
		seen <- at
		_ = os.WriteFile(holdUntil, nil, 0o644)
	}()

	var res fanoutResult
	stderr, err := runLoad(t, &res, "fanout", "-url", ts.URL, "-trigger", trigger.URL, "-secret", testSecret,
		"-users", "50", "-conns", "100", "-emits", "3", "-concurrency", "20", "-timeout", "30s",
		"-ready-file", ready, "-hold-until-file", holdUntil)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	at, ok := <-seen
	if !ok {
		t.Fatal("the orchestrator's side ended without seeing the ready file")
	}
	if at.sockets != 100 || at.posts != 0 {
		t.Errorf("at the ready file: %d sockets, %d POSTs; want 100 and 0", at.sockets, at.posts)
	}
	if posts.Load() != 1 || early.Load() != 0 {
		t.Errorf("%d POSTs, %d of them before the hold-until file; want 1 and 0", posts.Load(), early.Load())
	}
	if !strings.Contains(stderr, "READY\n") {
		t.Errorf("stderr has no READY line:\n%s", stderr)
	}
	const want = 100 * 3
	if res.Expected != want || res.Received != want || res.Connected != 100 || res.Incomplete || res.Error != "" {
		t.Errorf("result = %+v, want expected = received = %d and no failure", res, want)
	}
	waitSockets(t, ts, 0)
}

// The hold-until file never comes: the run ends at -timeout without a
// POST, after the ready file, and the JSON says incomplete.
func TestFanoutHoldTimeout(t *testing.T) {
	ts := startBenchServer(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	var posts atomic.Int64
	trigger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Error(w, "unexpected POST", http.StatusTeapot)
	}))
	defer trigger.Close()
	var res fanoutResult
	start := time.Now()
	stderr, err := runLoad(t, &res, "fanout", "-url", ts.URL, "-trigger", trigger.URL, "-secret", testSecret,
		"-users", "10", "-ready-file", ready, "-hold-until-file", filepath.Join(dir, "never"), "-timeout", "500ms")
	if !errors.Is(err, errIncomplete) {
		t.Fatalf("run = %v, want errIncomplete\n%s", err, stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("run took %v after a 500ms timeout", took)
	}
	if _, err := os.Stat(ready); err != nil {
		t.Errorf("ready file: %v", err)
	}
	if posts.Load() != 0 {
		t.Errorf("%d POSTs without the hold-until file", posts.Load())
	}
	if !res.Incomplete || res.Connected != 10 || res.Expected != 10*20 || res.Received != 0 || res.Error != "" {
		t.Errorf("result = %+v", res)
	}
	waitSockets(t, ts, 0)
}

// With a trigger that emits nothing, fanout stops at -timeout and reports
// what it has, marked incomplete.
func TestFanoutTimeout(t *testing.T) {
	ts := startBenchServer(t)
	idle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"emitted":100,"tookUs":1}`))
	}))
	defer idle.Close()
	var res fanoutResult
	start := time.Now()
	stderr, err := runLoad(t, &res, "fanout", "-url", ts.URL, "-trigger", idle.URL, "-secret", testSecret,
		"-users", "20", "-emits", "5", "-timeout", "1s")
	if !errors.Is(err, errIncomplete) {
		t.Fatalf("run = %v, want errIncomplete\n%s", err, stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("run took %v after a 1s timeout", took)
	}
	if !res.Incomplete || res.Expected != 100 || res.Received != 0 || res.Connected != 20 {
		t.Errorf("result = %+v", res)
	}
}

// A failing POST ends the run, incomplete, with the server's answer.
func TestFanoutTriggerError(t *testing.T) {
	ts := startBenchServer(t)
	var res fanoutResult
	_, err := runLoad(t, &res, "fanout", "-url", ts.URL, "-trigger", ts.URL+"/nowhere", "-secret", testSecret,
		"-users", "5", "-timeout", "10s")
	if !errors.Is(err, errIncomplete) || !res.Incomplete || !strings.Contains(res.Error, "404") {
		t.Errorf("run = %v, result = %+v; want incomplete with a 404", err, res)
	}
}

// Nothing listens: every connection fails fast, the run completes.
func TestNoServer(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	url := ln.URL
	ln.Close()
	var res churnResult
	stderr, err := runLoad(t, &res, "churn", "-url", url, "-secret", testSecret, "-cycles", "5", "-timeout", "10s")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr)
	}
	if res.Failed != 5 || len(res.Errors) != 1 {
		t.Errorf("result = %+v", res)
	}
	for k := range res.Errors {
		if !strings.HasPrefix(k, "dial: ") {
			t.Errorf("error kind %q, want a dial error", k)
		}
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no scenario", nil, "usage"},
		{"flag first", []string{"-url", "x"}, "usage"},
		{"unknown scenario", []string{"storm", "-secret", "s"}, `unknown scenario "storm"`},
		{"no secret", []string{"idle"}, "-secret is required"},
		{"bad src", []string{"idle", "-secret", "s", "-src", "127.0.0.1,localhost"}, `"localhost" is not an IP address`},
		{"bad users", []string{"fanout", "-secret", "s", "-users", "0"}, "-users must be at least 1"},
		{"bad emits", []string{"fanout", "-secret", "s", "-emits", "0"}, "-emits must be at least 1"},
		{"bad rounds", []string{"fanout", "-secret", "s", "-rounds", "0"}, "-rounds must be at least 1"},
		{"bad cycles", []string{"churn", "-secret", "s", "-cycles", "0"}, "-cycles must be at least 1"},
		{"bad timeout", []string{"churn", "-secret", "s", "-timeout", "0s"}, "-timeout must be positive"},
		{"flag of another scenario", []string{"churn", "-secret", "s", "-emits", "3"}, "flag provided but not defined: -emits"},
		{"ready file in churn", []string{"churn", "-secret", "s", "-ready-file", "r"}, "flag provided but not defined: -ready-file"},
		{"hold in fanout", []string{"fanout", "-secret", "s", "-hold", "1s"}, "flag provided but not defined: -hold"},
		{"extra argument", []string{"idle", "-secret", "s", "more"}, `unexpected argument "more"`},
		{"bad transport", []string{"roundsfanout", "-secret", "s", "-transport", "sse"}, "-transport must be websocket or polling"},
		{"bad stall", []string{"pollfanout", "-secret", "s", "-stall", "-1s"}, "-stall must not be negative"},
		{"bad rounds", []string{"roundsfanout", "-secret", "s", "-rounds", "0"}, "-rounds must be at least 1"},
		{"too many seqs", []string{"pollfanout", "-secret", "s", "-emits", "1000", "-rounds", "1000001"}, "-rounds × -emits must be at most 1000000000"},
		{"emits in roundsfanout", []string{"roundsfanout", "-secret", "s", "-emits", "2"}, "flag provided but not defined: -emits"},
		{"transport in pollfanout", []string{"pollfanout", "-secret", "s", "-transport", "websocket"}, "flag provided but not defined: -transport"},
		{"stall in fanout", []string{"fanout", "-secret", "s", "-stall", "1s"}, "flag provided but not defined: -stall"},
		{"bad url", []string{"idle", "-secret", "s", "-url", "ftp://x"}, "scheme must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, &stdout, &stderr)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run = %v, want a usage error with %q", err, tt.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestFlagDefaults(t *testing.T) {
	cfg, err := parseFlags([]string{"fanout", "-secret", "s", "-users", "7", "-url", "http://h:1"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.conns != 7 || cfg.trigger != "http://h:1" || cfg.emits != 20 || cfg.rounds != 1 || cfg.concurrency != 200 || cfg.timeout != 120*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, tt := range []struct {
		scenario, transport string
		emits, rounds       int
	}{
		{"pollfanout", "polling", 20, 1},
		{"roundsfanout", "websocket", 1, 20},
	} {
		cfg, err := parseFlags([]string{tt.scenario, "-secret", "s"}, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.conns != 1000 || cfg.transport != tt.transport || cfg.emits != tt.emits || cfg.rounds != tt.rounds || cfg.stall != 10*time.Second || cfg.trigger != cfg.url {
			t.Errorf("%s defaults: %+v", tt.scenario, cfg)
		}
	}
}

// The orchestrator never creates the hold-until file: the run ends at
// -timeout, READY and the ready file came first, the JSON says incomplete.
func TestIdleTimeout(t *testing.T) {
	ts := startBenchServer(t)
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	var res idleResult
	start := time.Now()
	stderr, err := runLoad(t, &res, "idle", "-url", ts.URL, "-secret", testSecret, "-users", "10",
		"-ready-file", ready, "-hold-until-file", filepath.Join(dir, "never"), "-timeout", "500ms")
	if !errors.Is(err, errIncomplete) {
		t.Fatalf("run = %v, want errIncomplete\n%s", err, stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("run took %v after a 500ms timeout", took)
	}
	if _, err := os.Stat(ready); err != nil {
		t.Errorf("ready file: %v", err)
	}
	if !strings.Contains(stderr, "READY\n") || !res.Incomplete || res.Connected != 10 {
		t.Errorf("result = %+v, stderr:\n%s", res, stderr)
	}
	waitSockets(t, ts, 0)
}
