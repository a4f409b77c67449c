package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The benchmark: the points to run, setting up, running them in turn.

const (
	// serverCPU and loadCPU are where the servers (and redis-server) and
	// the load generator are pinned.
	serverCPU pin = 0
	loadCPU   pin = 1

	// listeningPrefix starts the line a server prints when it is ready.
	listeningPrefix = "listening on "
	// startTimeout bounds how long a server takes to print it.
	startTimeout = 30 * time.Second
	// settle is the pause before RSS or runtime samples, and rssSamples
	// samples rssInterval apart follow it; the figure is their maximum.
	settle      = 2 * time.Second
	rssSamples  = 5
	rssInterval = 200 * time.Millisecond
	// httpTimeout bounds one request to a server.
	httpTimeout = 10 * time.Second
	// runSlack is what a run may take beyond its load generator's timeout:
	// starting and stopping the servers, the settles.
	runSlack = 90 * time.Second
	// fdMargin is how many files a process needs besides its connections.
	fdMargin = 256
	// emits is how many times each user gets the event in fanout runs
	// (fanout, cluster, scale, pollfanout, pollcluster): one POST of
	// count emits.
	emits = 20
	// closedRounds is how many rounds of one event per user the
	// closed-loop runs (roundsfanout, roundscluster) POST, one at a time.
	closedRounds = 20
	// churnConcurrency is how many churn cycles run in parallel.
	churnConcurrency = 200
	// buildTimeout bounds each go build and npm ci.
	buildTimeout = 10 * time.Minute
)

// srcConns is the most connections (churn: cycles) one run dials from one
// source address: a quarter of the usual 28,232 ephemeral ports. Each run
// dials from loopback addresses of its own (bench.nextSources), as many as
// it needs at srcConns each. With one address shared by every run, the
// kernel's search for a free ephemeral port, among the ports held and
// those in TIME_WAIT from the runs before, became the load generator's
// bottleneck: at 19,500 idle connections from a fresh 127.0.0.1 herald
// was dialled at 2,100 conns/s, from 3 fresh addresses at 4,400-4,700,
// and after the 5,000 runs at 1,350-1,430 (BENCHMARKS.md).
const srcConns = 7000

// sources is how many source addresses a run of p dials from.
func (p point) sources() int { return max(1, (p.n+srcConns-1)/srcConns) }

// point is one setting of a scenario: the figures are medians of its runs.
type point struct {
	scenario string
	key      string // e.g. "n=5000", in the raw runs and the JSON
	title    string // e.g. "idle, 5,000 conns", in the table
	n        int    // connections and users; churn: cycles
	fds      uint64 // open files the server and the load generator each need
	skip     string // why the point does not run; "" = it does
	figures  []string
	// asked is the N of the plan when the point runs with fewer
	// connections (see capConns), 0 otherwise; capped says why.
	asked  int
	capped string
}

// pointKey is the key of a point of scenario with N = n.
func pointKey(scenario string, n int) string {
	switch scenario {
	case "fanout", "cluster", "pollfanout", "roundsfanout", "pollcluster", "roundscluster":
		return fmt.Sprintf("users=%d", n)
	case "churn":
		return fmt.Sprintf("cycles=%d", n)
	}
	return fmt.Sprintf("n=%d", n)
}

// pointTitle is the title of a point of scenario with N = n.
func pointTitle(scenario string, n int) string {
	switch scenario {
	case "idle":
		return fmt.Sprintf("idle, %s conns", formatCount(n))
	case "fanout":
		return fmt.Sprintf("fanout, %s users × %d emits", formatCount(n), emits)
	case "churn":
		return fmt.Sprintf("churn, %s cycles", formatCount(n))
	case "cluster":
		return fmt.Sprintf("cluster (2 nodes + Redis), %s users × %d emits", formatCount(n), emits)
	case "scale":
		return fmt.Sprintf("scale, %s conns", formatCount(n))
	case "pollfanout":
		return fmt.Sprintf("long-polling fanout, %s users × %d emits", formatCount(n), emits)
	case "roundsfanout":
		return fmt.Sprintf("closed-loop fanout, %s users × %d rounds of 1 emit", formatCount(n), closedRounds)
	case "pollcluster":
		return fmt.Sprintf("long-polling cluster (2 nodes + Redis), %s users × %d emits", formatCount(n), emits)
	case "roundscluster":
		return fmt.Sprintf("closed-loop cluster (2 nodes + Redis), %s users × %d rounds of 1 emit", formatCount(n), closedRounds)
	}
	return fmt.Sprintf("%s, N = %s", scenario, formatCount(n))
}

// plan returns the points of the selected scenarios, in order; quick
// divides every N by 10.
func plan(scenarios []string, quick bool) []point {
	div := 1
	if quick {
		div = 10
	}
	var ps []point
	add := func(sc string, n int, figures ...string) *point {
		ps = append(ps, point{scenario: sc, key: pointKey(sc, n), title: pointTitle(sc, n), n: n, figures: figures})
		return &ps[len(ps)-1]
	}
	for _, sc := range scenarios {
		switch sc {
		case "idle":
			for _, n := range []int{5000 / div, 20000 / div} {
				add(sc, n, "rssPerConnKiB", "connectRate", "connectP99Ms")
			}
		case "fanout", "cluster", "pollfanout", "roundsfanout", "pollcluster", "roundscluster":
			add(sc, 1000/div, "msgsPerSec", "latP50Ms", "latP99Ms", "cpuUsPerMsg")
		case "churn":
			add(sc, 20000/div, "cyclesPerSec", "goroutinesDelta", "rssDeltaMiB")
		case "scale":
			for _, n := range []int{1000 / div, 10000 / div, 50000 / div} {
				add(sc, n, "rssPerConnKiB", "msgsPerSec")
			}
		}
	}
	for i := range ps {
		p := &ps[i]
		switch p.scenario {
		case "churn":
			p.fds = churnConcurrency + fdMargin
		default:
			p.fds = uint64(p.n) + fdMargin
		}
	}
	return ps
}

// capUnit is what the default connection cap is a multiple of.
const capUnit = 500

// connsCap returns the most connections a point may have: maxConns
// (-max-conns) when it is positive, else what the open-files limit allows,
// the limit − fdMargin rounded down to a multiple of capUnit (0 = no cap:
// the limit allows less than capUnit). why says where the cap comes from,
// for the table.
func connsCap(maxConns int, nofile noFile) (limit int, why string) {
	if maxConns > 0 {
		return maxConns, "-max-conns " + formatCount(maxConns)
	}
	if nofile.limit <= fdMargin {
		return 0, ""
	}
	c := (nofile.limit - fdMargin) / capUnit * capUnit
	if c == 0 || c > math.MaxInt32 {
		return 0, ""
	}
	return int(c), "RLIMIT_NOFILE " + formatCount(int(nofile.limit))
}

// capConns makes the points with more than limit connections run at
// limit instead (0 = no cap), and says so in their key, title and capped
// (detail explains the cap). Churn is left alone: its N is cycles, only
// churnConcurrency of them open at a time.
func capConns(ps []point, limit int, why, detail string) {
	if limit <= 0 {
		return
	}
	for i := range ps {
		p := &ps[i]
		if p.scenario == "churn" || p.n <= limit {
			continue
		}
		p.asked, p.n = p.n, limit
		p.fds = uint64(limit) + fdMargin
		p.key = fmt.Sprintf("%s (%d asked)", pointKey(p.scenario, limit), p.asked)
		p.title = fmt.Sprintf("%s (%s asked; %s)", pointTitle(p.scenario, limit), formatCount(p.asked), why)
		p.capped = fmt.Sprintf("runs with %s connections, not %s: %s", formatCount(limit), formatCount(p.asked), detail)
	}
}

// applyLimits marks the points that the open-files limit or the
// ephemeral ports (ports per source address, 0 = unknown) do not allow.
func applyLimits(ps []point, nofile noFile, ports int) {
	for i := range ps {
		p := &ps[i]
		if p.fds > nofile.limit {
			p.skip = fmt.Sprintf("needs %s open files in the server and in the load generator; RLIMIT_NOFILE is %s", formatCount(int(p.fds)), formatCount(int(nofile.limit)))
			if nofile.why != "" {
				p.skip += ": " + nofile.why
			}
			continue
		}
		if srcs := p.sources(); p.scenario != "churn" && ports > 0 && p.n > srcs*ports {
			p.skip = fmt.Sprintf("needs %s connections from %d source address(es) with %s ephemeral ports each (net.ipv4.ip_local_port_range)", formatCount(p.n), srcs, formatCount(ports))
		}
	}
}

// figures returns the table rows of the points that run.
func figures(ps []point) []figure {
	var fs []figure
	for _, p := range ps {
		if p.skip != "" {
			continue
		}
		for _, m := range p.figures {
			fs = append(fs, figure{scenario: p.scenario, point: p.key, metric: m, title: p.title})
		}
	}
	return fs
}

// bench holds what the runs share.
type bench struct {
	cfg     config
	root    string // the module root
	nodeDir string // bench/node
	tmp     string // binaries, ready files
	herald  string // the heraldserver binary
	load    string // the load generator binary
	secret  string // BENCH_JWT_SECRET and -secret
	pinWhy  string // why children run unpinned; "" = pinned
	nofile  noFile
	// maxConns is the most connections a point runs with (0 = no cap),
	// capWhy where that comes from (see connsCap).
	maxConns int
	capWhy   string
	ports    int // ephemeral ports per source address
	machine  machine
	started  time.Time
	points   []point
	cs       children
	client   *http.Client
	redis    string // "127.0.0.1:port" of our redis-server, cluster only

	results    []runResult
	incomplete string // why not every run ran
	seq        int    // numbers the ready files
	srcSeq     int    // loopback source addresses handed out (nextSources)
}

// nextSources returns p.sources() loopback addresses that no run before
// used, for the load generator's -src: 127.1.0.1, 127.1.0.2, … (Linux
// routes all of 127.0.0.0/8 to the loopback interface).
func (b *bench) nextSources(p point) string {
	addrs := make([]string, p.sources())
	for i := range addrs {
		k := b.srcSeq
		b.srcSeq++
		addrs[i] = fmt.Sprintf("127.1.%d.%d", k/254%256, k%254+1)
	}
	return strings.Join(addrs, ",")
}

// newBench checks the tools, builds the binaries and starts redis-server.
// On error, everything it started is stopped.
func newBench(ctx context.Context, cfg config) (_ *bench, err error) {
	b := &bench{cfg: cfg, started: time.Now(), client: &http.Client{Timeout: httpTimeout}}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.root, err = findRoot(); err != nil {
		return nil, err
	}
	b.nodeDir = filepath.Join(b.root, "bench", "node")
	for _, t := range []struct{ name, install string }{
		{"go", "https://go.dev/dl"},
		{"node", "Node 20: apt-get install nodejs"},
		{"npm", "apt-get install npm"},
	} {
		if _, err := lookPath(t.name, t.install); err != nil {
			return nil, err
		}
	}
	withCluster := slices.ContainsFunc(cfg.scenarios, isCluster)
	if withCluster {
		if _, err := lookPath("redis-server", "apt-get install redis-server, or leave out the cluster scenarios (cluster, pollcluster, roundscluster)"); err != nil {
			return nil, err
		}
	}
	b.machine = readMachine(ctx, b.root, withCluster)
	b.pinWhy = pinning()
	b.ports = localPorts()

	b.points = plan(cfg.scenarios, cfg.quick)
	var want uint64
	for _, p := range b.points {
		want = max(want, p.fds)
	}
	b.nofile = raiseNoFile(want)
	b.maxConns, b.capWhy = connsCap(cfg.maxConns, b.nofile)
	capConns(b.points, b.maxConns, b.capWhy, b.capDetail())
	applyLimits(b.points, b.nofile, b.ports)
	for _, p := range b.points {
		if p.capped != "" {
			b.logf("%s %s: %s", p.scenario, p.key, p.capped)
		}
		if p.skip != "" {
			b.logf("%s %s: will be skipped: %s", p.scenario, p.key, p.skip)
		}
	}
	if b.pinWhy != "" {
		b.logf("running unpinned: %s", b.pinWhy)
	}

	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // never fails
	b.secret = hex.EncodeToString(secret)

	if b.tmp, err = os.MkdirTemp("", "herald-compare-"); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	b.herald = filepath.Join(b.tmp, "heraldserver")
	b.load = filepath.Join(b.tmp, "load")
	for _, pkg := range []struct{ out, pkg string }{{b.herald, "./bench/cmd/heraldserver"}, {b.load, "./bench/cmd/load"}} {
		b.logf("go build %s", pkg.pkg)
		if _, err := runCommand(ctx, buildTimeout, b.root, "go", "build", "-o", pkg.out, pkg.pkg); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(b.nodeDir, "node_modules")); errors.Is(err, os.ErrNotExist) {
		b.logf("npm ci in %s", b.nodeDir)
		if _, err := runCommand(ctx, buildTimeout, b.nodeDir, "npm", "ci", "--no-audit", "--no-fund"); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	if _, err := os.Stat(filepath.Join(b.nodeDir, "server.js")); err != nil {
		return nil, fmt.Errorf("compare: the Node server: %w", err)
	}

	if withCluster {
		if err := b.startRedis(ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// capDetail explains the connection cap, for the points it shrinks.
func (b *bench) capDetail() string {
	if b.cfg.maxConns > 0 {
		return "-max-conns is " + formatCount(b.cfg.maxConns)
	}
	s := fmt.Sprintf("RLIMIT_NOFILE is %s (each side needs N + %d open files; -max-conns defaults to the limit − %d rounded down to a multiple of %d)",
		formatCount(int(b.nofile.limit)), fdMargin, fdMargin, capUnit)
	if b.nofile.why != "" {
		s += ": " + b.nofile.why
	}
	return s
}

// close stops every child and removes the temporary directory.
func (b *bench) close() {
	b.cs.stopAll()
	b.client.CloseIdleConnections()
	if b.tmp != "" {
		_ = os.RemoveAll(b.tmp)
	}
}

// logf prints progress on stderr.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "compare: %s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// pinTo returns cpu, or noPin when the children run unpinned.
func (b *bench) pinTo(cpu pin) pin {
	if b.pinWhy != "" {
		return noPin
	}
	return cpu
}

// runAll runs every point: for each run, herald then Node. It returns the
// context's cause when it stopped early.
func (b *bench) runAll(ctx context.Context) error {
	for _, p := range b.points {
		if p.skip != "" {
			continue
		}
		for r := 1; r <= b.cfg.runs; r++ {
			for _, kind := range []string{herald, node} {
				if ctx.Err() != nil {
					return b.stopped(ctx)
				}
				b.logf("%s %s: %s run %d of %d", p.scenario, p.key, kind, r, b.cfg.runs)
				res := b.runOne(ctx, p, kind, r)
				b.client.CloseIdleConnections() // the server is gone
				if res.Error != "" {
					b.logf("%s %s: %s run %d FAILED: %s", p.scenario, p.key, kind, r, res.Error)
				} else {
					b.logf("%s %s: %s run %d: %s", p.scenario, p.key, kind, r, summaryLine(p, res))
				}
				b.results = append(b.results, res)
			}
		}
	}
	if ctx.Err() != nil {
		return b.stopped(ctx)
	}
	return nil
}

// stopped records why the runs stopped early and returns it.
func (b *bench) stopped(ctx context.Context) error {
	err := context.Cause(ctx)
	if !errors.Is(err, errTimeout) {
		err = fmt.Errorf("compare: stopped: %w", err) // a signal
	}
	b.incomplete = err.Error()
	return err
}

// summaryLine shows a run's table figures on one line.
func summaryLine(p point, res runResult) string {
	var parts []string
	for _, m := range p.figures {
		if v, ok := res.Metrics[m]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", metricByName(m).label, formatValue(v)))
		}
	}
	return strings.Join(parts, ", ")
}

// runOne runs one point once against one server, within a deadline.
func (b *bench) runOne(ctx context.Context, p point, kind string, run int) runResult {
	res := runResult{Scenario: p.scenario, Point: p.key, Server: kind, Run: run}
	timeout := loadTimeout(p)
	if p.scenario == "scale" {
		timeout *= 2 // an idle and a fanout phase
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout+runSlack, fmt.Errorf("compare: the run's deadline (%v) passed", timeout+runSlack))
	defer cancel()
	var err error
	switch p.scenario {
	case "idle":
		err = b.measureIdle(ctx, kind, p, &res)
	case "fanout", "pollfanout", "roundsfanout":
		err = b.measureFanout(ctx, kind, p, &res, false)
	case "churn":
		err = b.measureChurn(ctx, kind, p, &res)
	case "cluster", "pollcluster", "roundscluster":
		err = b.measureFanout(ctx, kind, p, &res, true)
	case "scale":
		err = b.measureIdle(ctx, kind, p, &res)
		if err == nil {
			err = b.measureFanout(ctx, kind, p, &res, false)
		}
	default:
		err = fmt.Errorf("compare: unknown scenario %q", p.scenario)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// loadTimeout is the load generator's -timeout for one phase of p: a
// minute plus generous time per connection and message.
func loadTimeout(p point) time.Duration {
	switch p.scenario {
	case "churn":
		return time.Minute + time.Duration(p.n)*5*time.Millisecond
	case "fanout", "cluster", "pollfanout", "pollcluster":
		return time.Minute + time.Duration(p.n)*2*time.Millisecond + time.Duration(p.n*emits)*20*time.Microsecond
	case "roundsfanout", "roundscluster":
		return time.Minute + time.Duration(p.n)*2*time.Millisecond + time.Duration(p.n*closedRounds)*20*time.Microsecond
	case "scale":
		return time.Minute + time.Duration(p.n)*2*time.Millisecond + time.Duration(p.n*emits)*20*time.Microsecond
	}
	return time.Minute + time.Duration(p.n)*2*time.Millisecond
}
