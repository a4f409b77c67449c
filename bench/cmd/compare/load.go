package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Running the load generator and reading what it prints.

// loadResult is what the load generator prints (bench/SPEC.md); nil means
// the field was missing. Numbers are float64: the JSON may write counts
// either way.
type loadResult struct {
	Scenario       string   `json:"scenario"`
	Conns          *float64 `json:"conns"`
	Connected      *float64 `json:"connected"`
	Failed         *float64 `json:"failed"`
	ConnectSeconds *float64 `json:"connectSeconds"`
	ConnectRate    *float64 `json:"connectRate"`
	ConnectP50Ms   *float64 `json:"connectP50Ms"`
	ConnectP99Ms   *float64 `json:"connectP99Ms"`
	Expected       *float64 `json:"expected"`
	Received       *float64 `json:"received"`
	Seconds        *float64 `json:"seconds"`
	MsgsPerSec     *float64 `json:"msgsPerSec"`
	LatP50Ms       *float64 `json:"latP50Ms"`
	LatP99Ms       *float64 `json:"latP99Ms"`
	OutOfOrder     *float64 `json:"outOfOrder"`
	Cycles         *float64 `json:"cycles"`
	CyclesPerSec   *float64 `json:"cyclesPerSec"`
	// pollfanout and roundsfanout.
	Lost       *float64 `json:"lost"`
	Duplicates *float64 `json:"duplicates"`
	Unexpected *float64 `json:"unexpected"`
	RoundP50Ms *float64 `json:"roundP50Ms"`
	RoundMaxMs *float64 `json:"roundMaxMs"`
	// Beyond bench/SPEC.md, as bench/cmd/load prints them.
	Dropped    *float64 `json:"dropped"`
	Unanswered *float64 `json:"unanswered"`
	Incomplete bool     `json:"incomplete"`
	Error      string   `json:"error"`
}

// notes adds to res what the load generator reported beyond the figures:
// dropped connections, unanswered closes, its own error.
func (lr loadResult) notes(res *runResult) {
	if lr.Dropped != nil && *lr.Dropped > 0 {
		res.note("load %s: %v connections dropped by the server", lr.Scenario, *lr.Dropped)
	}
	if lr.Unanswered != nil && *lr.Unanswered > 0 {
		res.note("load %s: %v closes not answered by the server", lr.Scenario, *lr.Unanswered)
	}
	if lr.Incomplete {
		res.note("load %s: incomplete", lr.Scenario)
	}
	if lr.Error != "" {
		res.note("load %s: %s", lr.Scenario, lr.Error)
	}
}

// parseLoadOutput finds the JSON object the load generator printed: the
// last stdout line that is one.
func parseLoadOutput(stdout []byte, scenario string) (json.RawMessage, loadResult, error) {
	var lr loadResult
	lines := bytes.Split(bytes.TrimSpace(stdout), []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		line := bytes.TrimSpace(lines[i])
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		if err := json.Unmarshal(line, &lr); err != nil {
			return nil, lr, fmt.Errorf("compare: the load generator's output: %w: %.300s", err, line)
		}
		if lr.Scenario != scenario {
			return nil, lr, fmt.Errorf("compare: the load generator printed scenario %q, want %q", lr.Scenario, scenario)
		}
		return json.RawMessage(bytes.Clone(line)), lr, nil
	}
	return nil, lr, fmt.Errorf("compare: the load generator printed no JSON object: %.300q", stdout)
}

// loadOut is one run of the load generator.
type loadOut struct {
	raw    json.RawMessage
	res    loadResult
	wall   time.Duration // start to exit
	exited time.Time
	cpu    time.Duration // its user+system CPU time
}

// runLoad runs the load generator's scenario with args and -secret and
// -timeout, pinned to loadCPU; during, when not nil, runs while it runs.
// What it printed and the load generator's CPU use go into res.
func (b *bench) runLoad(ctx context.Context, scenario string, args []string, timeout time.Duration, res *runResult, during func(context.Context, *child) error) (loadOut, error) {
	argv := append([]string{b.load, scenario, "-secret", b.secret, "-timeout", timeout.String()}, args...)
	if res.LoadArgs == nil {
		res.LoadArgs = make(map[string][]string)
	}
	res.LoadArgs[scenario] = redact(argv[1:], b.secret)
	lc, err := b.cs.start("load "+scenario, b.pinTo(loadCPU), b.root, nil, "", b.cfg.verbose, argv...)
	if err != nil {
		return loadOut{}, err
	}
	if during != nil {
		if err := during(ctx, lc); err != nil {
			lc.stop()
			return loadOut{}, err
		}
	}
	// The load generator stops itself after timeout; this bound is for a
	// hung one.
	wctx, cancel := context.WithTimeoutCause(ctx, timeout+30*time.Second, fmt.Errorf("compare: the load generator ran past its -timeout %v", timeout))
	defer cancel()
	waitErr := lc.wait(wctx)
	out := loadOut{wall: lc.exited.Sub(lc.started), exited: lc.exited}
	if ps := lc.cmd.ProcessState; ps != nil {
		out.cpu = ps.UserTime() + ps.SystemTime()
		if out.wall > 0 {
			res.set("loadCPUPct", 100*out.cpu.Seconds()/out.wall.Seconds())
		}
	}
	raw, lr, perr := parseLoadOutput(lc.stdout.tail.Bytes(), scenario)
	if perr == nil {
		if res.Load == nil {
			res.Load = make(map[string]json.RawMessage)
		}
		res.Load[scenario] = raw
		out.raw, out.res = raw, lr
		lr.notes(res)
	}
	if waitErr != nil {
		return out, fmt.Errorf("compare: %s", lc.describe())
	}
	if perr != nil {
		return out, fmt.Errorf("%w\n%s", perr, lc.describe())
	}
	return out, nil
}

// redact replaces secret in args.
func redact(args []string, secret string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, secret, "SECRET")
	}
	return out
}
