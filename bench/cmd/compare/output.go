package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The Markdown report and the JSON file.

// writeReports prints the Markdown report on stdout, and writes it to
// -out and the raw results to -json when asked.
func (b *bench) writeReports() error {
	var md bytes.Buffer
	if err := b.writeMarkdown(&md); err != nil {
		return err
	}
	if _, err := os.Stdout.Write(md.Bytes()); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	if b.cfg.outPath != "" {
		if err := os.WriteFile(b.cfg.outPath, md.Bytes(), 0o644); err != nil {
			return fmt.Errorf("compare: -out: %w", err)
		}
	}
	if b.cfg.jsonPath != "" {
		data, err := json.MarshalIndent(b.jsonReport(), "", "  ")
		if err != nil {
			return fmt.Errorf("compare: -json: %w", err)
		}
		if err := os.WriteFile(b.cfg.jsonPath, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("compare: -json: %w", err)
		}
	}
	return nil
}

// jsonReport is the -json file.
type jsonReport struct {
	Date       string      `json:"date"`
	Command    string      `json:"command"`
	Machine    machine     `json:"machine"`
	Pinned     bool        `json:"pinned"`
	Unpinned   string      `json:"unpinnedBecause,omitempty"`
	NoFile     uint64      `json:"rlimitNofile"`
	MaxConns   int         `json:"maxConns,omitempty"`
	Capped     []capped    `json:"capped,omitempty"`
	ClockTicks int         `json:"clockTicksPerSecond"`
	Runs       int         `json:"runs"`
	Quick      bool        `json:"quick"`
	Scenarios  []string    `json:"scenarios"`
	Skipped    []skipped   `json:"skipped,omitempty"`
	Incomplete string      `json:"incomplete,omitempty"`
	Results    []runResult `json:"results"`
}

type skipped struct {
	Scenario string `json:"scenario"`
	Point    string `json:"point"`
	Reason   string `json:"reason"`
}

// capped is a point that runs with fewer connections than asked.
type capped struct {
	Scenario string `json:"scenario"`
	Point    string `json:"point"`
	Asked    int    `json:"asked"`
	Conns    int    `json:"conns"`
	Reason   string `json:"reason"`
}

func (b *bench) capped() []capped {
	var c []capped
	for _, p := range b.points {
		if p.capped != "" {
			c = append(c, capped{p.scenario, p.key, p.asked, p.n, p.capped})
		}
	}
	return c
}

func (b *bench) skipped() []skipped {
	var s []skipped
	for _, p := range b.points {
		if p.skip != "" {
			s = append(s, skipped{p.scenario, p.key, p.skip})
		}
	}
	return s
}

func (b *bench) jsonReport() jsonReport {
	return jsonReport{
		Date:       b.started.UTC().Format(time.RFC3339),
		Command:    commandLine(os.Args),
		Machine:    b.machine,
		Pinned:     b.pinWhy == "",
		Unpinned:   b.pinWhy,
		NoFile:     b.nofile.limit,
		MaxConns:   b.maxConns,
		Capped:     b.capped(),
		ClockTicks: clockTicks,
		Runs:       b.cfg.runs,
		Quick:      b.cfg.quick,
		Scenarios:  b.cfg.scenarios,
		Skipped:    b.skipped(),
		Incomplete: b.incomplete,
		Results:    b.results,
	}
}

// writeMarkdown writes the report.
func (b *bench) writeMarkdown(w io.Writer) error {
	var s strings.Builder
	m := b.machine
	s.WriteString("# herald vs Node socket.io\n\n")
	fmt.Fprintf(&s, "- date: %s\n", b.started.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&s, "- command: `%s`\n", commandLine(os.Args))
	fmt.Fprintf(&s, "- machine: nproc %d, %s, kernel %s", m.NProc, m.CPUModel, m.Kernel)
	if m.MemTotal != "" {
		fmt.Fprintf(&s, ", MemTotal %s", m.MemTotal)
	}
	s.WriteString("\n")
	fmt.Fprintf(&s, "- `go version`: %s; `node --version`: %s", m.GoVersion, m.NodeVersion)
	if m.RedisVersion != "" {
		fmt.Fprintf(&s, "; %s", m.RedisVersion)
	}
	s.WriteString("\n")
	if b.pinWhy == "" {
		s.WriteString("- pinning: servers (and redis-server) on CPU 0 (`taskset -c 0`), the load generator on CPU 1 (`taskset -c 1`)\n")
	} else {
		fmt.Fprintf(&s, "- pinning: NONE, every process runs unpinned: %s\n", b.pinWhy)
	}
	fmt.Fprintf(&s, "- server CPU time: utime+stime of /proc/<pid>/stat in clock ticks of %d Hz (sysconf(_SC_CLK_TCK) on Linux), i.e. %v resolution\n", clockTicks, ticksToDuration(1))
	fmt.Fprintf(&s, "- RLIMIT_NOFILE of the children: %s\n", formatCount(int(b.nofile.limit)))
	switch {
	case b.cfg.maxConns > 0:
		fmt.Fprintf(&s, "- connections per point: at most %s (-max-conns)\n", formatCount(b.maxConns))
	case b.maxConns > 0:
		fmt.Fprintf(&s, "- connections per point: at most %s (what RLIMIT_NOFILE allows: the limit − %d rounded down to a multiple of %d; -max-conns sets another cap)\n",
			formatCount(b.maxConns), fdMargin, capUnit)
	}
	for _, c := range b.capped() {
		fmt.Fprintf(&s, "- **capped** %s %s: %s\n", c.Scenario, c.Point, c.Reason)
	}
	for _, k := range b.skipped() {
		fmt.Fprintf(&s, "- **skipped** %s %s: %s\n", k.Scenario, k.Point, k.Reason)
	}
	fmt.Fprintf(&s, "- each figure is the median of %d run(s) per server; herald and Node alternate run by run, each run on freshly started servers\n", b.cfg.runs)
	if b.cfg.quick {
		s.WriteString("- **-quick**: every N divided by 10: a smoke test, not figures to quote\n")
	}
	if b.incomplete != "" {
		fmt.Fprintf(&s, "- **INCOMPLETE**: %s; the figures are of the runs that finished\n", b.incomplete)
	}

	s.WriteString("\n## Figures\n\n")
	if err := writeTable(&s, summarize(figures(b.points), b.results), b.cfg.runs); err != nil {
		return err
	}
	s.WriteString("\nHow they are measured:\n\n")
	for _, sc := range b.cfg.scenarios {
		fmt.Fprintf(&s, "- %s: %s\n", sc, howMeasured(sc))
	}
	fmt.Fprintf(&s, "- every run: the load generator dials from loopback addresses no run before used (127.1.x.y), "+
		"one per %s connections (churn: cycles), so that no run waits for ports held or in TIME_WAIT.\n", formatCount(srcConns))
	s.WriteString("\n## Raw runs\n")
	if err := writeRawRuns(&s, b.cfg.scenarios, b.results); err != nil {
		return err
	}
	_, err := io.WriteString(w, s.String())
	return err
}

// howMeasured explains a scenario's figures for the report.
func howMeasured(scenario string) string {
	switch scenario {
	case "idle":
		return fmt.Sprintf("one connection per user. RSS is VmRSS of /proc/<pid>/status, the maximum of %d samples %v apart after a %v settle: "+
			"before = the started server after one GET /bench/runtime, held = while the load generator holds the connections; "+
			"RSS per connection = (held − before) / connections. Connect rate and latency (dial to `40{\"sid\"`) from the load generator.",
			rssSamples, rssInterval, settle)
	case "fanout":
		return fmt.Sprintf("one connection per user, %d emits per user through one POST /bench/emit; msgs/s and latency (receive − sentAt) from the load generator. "+
			"The load generator connects every client, creates its ready file and waits for the orchestrator before its POST. "+
			"Server CPU per delivered message = the server's utime+stime from the ready file to the load generator's exit "+
			"(the POST, the deliveries and the closing of the connections; not the handshakes) / events received. "+
			"Handshake CPU per connection (raw runs) = utime+stime from the started server, after one GET /bench/runtime, "+
			"to the ready file / connections made: mostly the WebSocket upgrades and the JWT checks.", emits)
	case "churn":
		return fmt.Sprintf("connect (to `40{\"sid\"`) + close cycles, %d in parallel. Goroutines and RSS from GET /bench/runtime, "+
			"%v after the server started and %v after the last cycle (Node has no goroutines: —).", churnConcurrency, settle, settle)
	case "cluster":
		return "two servers of the same kind, both pinned with redis-server, on one redis-server (FLUSHALL before each run); " +
			"the clients connect to node B and POST /bench/emit goes to node A; server CPU, as in fanout, is both nodes' (handshake CPU too)."
	case "scale":
		return fmt.Sprintf("at each N an idle run and a fanout run (%d emits per user), each on a fresh server, as above.", emits)
	case "pollfanout":
		return fmt.Sprintf("as fanout (%d emits per user in one POST, ready file, CPU samples), but every client is an HTTP long-polling "+
			"session that never upgrades: a loop of GETs, each answered with a payload of packets, pongs POSTed, keep-alive on, no "+
			"Accept-Encoding (neither server compresses). The load generator counts each client's events by seq: a lost event "+
			"fails the run; duplicates are counted (raw runs). msgs/s counts each client's seqs once.", emits)
	case "roundsfanout":
		return fmt.Sprintf("a closed loop, as request-driven services emit: one WebSocket per user, %d POST /bench/emit of one "+
			"event per user (count 1, seq = the round), each POSTed by the load generator once the round before has reached every "+
			"client; msgs/s = events / (first POST to the last event), latency (receive − sentAt) over every event, server CPU as "+
			"in fanout (all the rounds). A lost event fails the run; round p50 and the slowest round in the raw runs.", closedRounds)
	case "pollcluster":
		return "pollfanout on two nodes and redis-server, as cluster: the long-polling clients on node B, POST /bench/emit to node A."
	case "roundscluster":
		return "roundsfanout on two nodes and redis-server, as cluster: the clients on node B, every round's POST to node A."
	}
	return ""
}
