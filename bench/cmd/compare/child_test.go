package main

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{max: 5}
	for _, s := range []string{"ab", "cdef", "", "g"} {
		if n, err := tb.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := tb.String(); got != "cdefg" {
		t.Errorf("tail = %q, want %q", got, "cdefg")
	}
	if _, err := tb.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if got := string(tb.Bytes()); got != "56789" {
		t.Errorf("tail = %q, want %q", got, "56789")
	}
}

func TestLineWatcher(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string // "" = nothing found
	}{
		{"one write", []string{"listening on http://127.0.0.1:5\n"}, "http://127.0.0.1:5"},
		{"split across writes", []string{"noise\nlisten", "ing on http://h:1", "\r\nmore\n"}, "http://h:1"},
		{"first of two", []string{"listening on a\nlistening on b\n"}, "a"},
		{"no newline yet", []string{"listening on http://h:1"}, ""},
		{"prefix not at line start", []string{"x listening on http://h:1\n"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newLineWatcher(listeningPrefix)
			for _, s := range tt.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			got := ""
			select {
			case got = <-w.found:
			default:
			}
			if got != tt.want {
				t.Errorf("found %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("after a very long partial line", func(t *testing.T) {
		// The partial line is dropped once too long; a line after the next
		// newline is still found.
		w := newLineWatcher(listeningPrefix)
		_, _ = w.Write([]byte(strings.Repeat("x", 3*tailBytes)))
		_, _ = w.Write([]byte("\nlistening on ok\n"))
		select {
		case got := <-w.found:
			if got != "ok" {
				t.Errorf("found %q, want ok", got)
			}
		default:
			t.Error("nothing found")
		}
	})
}

func TestParseListening(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"http://127.0.0.1:41234", "http://127.0.0.1:41234", false},
		{"http://127.0.0.1:41234/", "http://127.0.0.1:41234", false},
		{"http://[::1]:80", "http://[::1]:80", false},
		{"https://127.0.0.1:1", "", true},
		{"http://127.0.0.1", "", true},
		{"127.0.0.1:80", "", true},
		{"http://h:1/path", "", true},
		{"", "", true},
		{"http://%zz", "", true},
	}
	for _, tt := range tests {
		got, err := parseListening(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseListening(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseLoadOutput(t *testing.T) {
	t.Run("last JSON line", func(t *testing.T) {
		out := "progress\n{\"scenario\":\"idle\",\"connected\":10}\n\n{\"scenario\":\"idle\",\"connected\":12,\"connectRate\":1.5,\"extra\":[1]}\n"
		raw, lr, err := parseLoadOutput([]byte(out), "idle")
		if err != nil {
			t.Fatal(err)
		}
		if lr.Connected == nil || *lr.Connected != 12 || lr.ConnectRate == nil || *lr.ConnectRate != 1.5 || lr.Failed != nil {
			t.Errorf("parsed %+v", lr)
		}
		if !strings.Contains(string(raw), `"extra":[1]`) {
			t.Errorf("raw = %s", raw)
		}
	})
	for _, tt := range []struct{ name, out string }{
		{"empty", ""},
		{"no JSON", "hello\nworld\n"},
		{"bad JSON", "{\"scenario\":\"idle\",\n"},
		{"wrong type", `{"scenario":"idle","connected":"many"}`},
		{"other scenario", `{"scenario":"churn"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := parseLoadOutput([]byte(tt.out), "idle"); err == nil {
				t.Errorf("parseLoadOutput(%q): no error", tt.out)
			}
		})
	}
}

func TestParseLoadOutputRounds(t *testing.T) {
	out := `{"scenario":"roundsfanout","transport":"websocket","expected":60,"received":58,"lost":2,"duplicates":1,"unexpected":0,"roundP50Ms":1.5,"roundMaxMs":3,"incomplete":true,"error":"2 events lost"}`
	_, lr, err := parseLoadOutput([]byte(out), "roundsfanout")
	if err != nil {
		t.Fatal(err)
	}
	if lr.Lost == nil || *lr.Lost != 2 || lr.Duplicates == nil || *lr.Duplicates != 1 || lr.Unexpected == nil || *lr.Unexpected != 0 ||
		lr.RoundP50Ms == nil || *lr.RoundP50Ms != 1.5 || lr.RoundMaxMs == nil || *lr.RoundMaxMs != 3 {
		t.Errorf("parsed %+v", lr)
	}
	var res runResult
	lr.notes(&res)
	if got := strings.Join(res.Notes, "; "); got != "load roundsfanout: incomplete; load roundsfanout: 2 events lost" {
		t.Errorf("notes %q", got)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		runs      int
		scenarios string
		wantErr   bool
	}{
		{"defaults", nil, 3, "idle,fanout,churn,cluster,scale,pollfanout,roundsfanout,pollcluster,roundscluster", false},
		{"quick: 1 run", []string{"-quick"}, 1, "idle,fanout,churn,cluster,scale,pollfanout,roundsfanout,pollcluster,roundscluster", false},
		{"quick with runs", []string{"-quick", "-runs", "2"}, 2, "idle,fanout,churn,cluster,scale,pollfanout,roundsfanout,pollcluster,roundscluster", false},
		{"selection in canonical order, deduplicated", []string{"-scenarios", "scale, idle,idle"}, 3, "idle,scale", false},
		{"the new ones after the others", []string{"-scenarios", "roundscluster,pollfanout,cluster"}, 3, "cluster,pollfanout,roundscluster", false},
		{"unknown scenario", []string{"-scenarios", "idle,bogus"}, 0, "", true},
		{"empty selection", []string{"-scenarios", ","}, 0, "", true},
		{"zero runs", []string{"-runs", "0"}, 0, "", true},
		{"bad timeout", []string{"-timeout", "-1s"}, 0, "", true},
		{"negative max-conns", []string{"-max-conns", "-1"}, 0, "", true},
		{"max-conns", []string{"-max-conns", "3000"}, 3, "idle,fanout,churn,cluster,scale,pollfanout,roundsfanout,pollcluster,roundscluster", false},
		{"extra argument", []string{"idle"}, 0, "", true},
		{"unknown flag", []string{"-nope"}, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			cfg, err := parseFlags(tt.args, &out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%q) error = %v, want error %v", tt.args, err, tt.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errUsage) {
					t.Errorf("error %v is not errUsage", err)
				}
				return
			}
			if cfg.runs != tt.runs || strings.Join(cfg.scenarios, ",") != tt.scenarios {
				t.Errorf("runs %d, scenarios %v; want %d, %s", cfg.runs, cfg.scenarios, tt.runs, tt.scenarios)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	full := plan(allScenarios, false)
	quick := plan(allScenarios, true)
	if len(full) != len(quick) {
		t.Fatalf("full has %d points, quick %d", len(full), len(quick))
	}
	var keys []string
	for i, p := range full {
		keys = append(keys, p.scenario+" "+p.key)
		if q := quick[i]; q.n*10 != p.n {
			t.Errorf("%s %s: quick n = %d, want %d", p.scenario, p.key, q.n, p.n/10)
		}
		if p.fds < uint64(min(p.n, churnConcurrency)) {
			t.Errorf("%s %s: fds %d below the connections", p.scenario, p.key, p.fds)
		}
	}
	want := "idle n=5000,idle n=20000,fanout users=1000,churn cycles=20000,cluster users=1000,scale n=1000,scale n=10000,scale n=50000," +
		"pollfanout users=1000,roundsfanout users=1000,pollcluster users=1000,roundscluster users=1000"
	if got := strings.Join(keys, ","); got != want {
		t.Errorf("points %s\nwant %s", got, want)
	}
	for i, want := range map[int]int{0: 1, 1: 3, 6: 2, 7: 8, len(full) - 1: 1} {
		if got := full[i].sources(); got != want {
			t.Errorf("%s %s: %d source addresses, want %d", full[i].scenario, full[i].key, got, want)
		}
	}
	if figs := figures(full[:1]); len(figs) != 3 || figs[0].metric != "rssPerConnKiB" {
		t.Errorf("figures(idle 5000) = %+v", figs)
	}
	skipped := full[:1]
	skipped[0].skip = "no"
	if figs := figures(skipped); len(figs) != 0 {
		t.Errorf("a skipped point has figures: %+v", figs)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"/tmp/go-build123/b001/exe/compare", "-quick", "-out", "a b.md"}, "go run ./bench/cmd/compare -quick -out 'a b.md'"},
		{[]string{"./compare", "-scenarios", "idle,scale", "-json", "it's.json", "-x="}, "./compare -scenarios idle,scale -json 'it'\\''s.json' -x="},
		{[]string{"compare", ""}, "compare ''"},
	}
	for _, tt := range tests {
		if got := commandLine(tt.argv); got != tt.want {
			t.Errorf("commandLine(%q) = %s, want %s", tt.argv, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact([]string{"-secret", "s3cr3t", "-x=s3cr3t!"}, "s3cr3t")
	if strings.Join(got, " ") != "-secret SECRET -x=SECRET!" {
		t.Errorf("redact = %q", got)
	}
}

// TestChildStop starts real processes: one that exits on SIGTERM, one that
// prints its line, and stops them.
func TestChildStop(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	var cs children
	t.Cleanup(cs.stopAll)
	c, err := cs.start("sh", noPin, t.TempDir(), nil, listeningPrefix, false,
		"sh", "-c", `trap 'exit 0' TERM; echo hello; echo "listening on http://127.0.0.1:9"; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	line, err := c.waitLine(context.Background(), 10*time.Second)
	if err != nil || line != "http://127.0.0.1:9" {
		t.Fatalf("waitLine = %q, %v", line, err)
	}
	if c.exitedNow() {
		t.Fatal("exited early")
	}
	st := c.stop()
	if st.killed || st.err != nil {
		t.Errorf("stop = %+v, want a clean exit", st)
	}
	if again := c.stop(); again.err != nil || again.killed {
		t.Errorf("second stop = %+v", again)
	}

	quiet, err := cs.start("quiet", noPin, t.TempDir(), nil, listeningPrefix, false, "sh", "-c", "echo nope; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	_, err = quiet.waitLine(context.Background(), 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited before printing") || !strings.Contains(err.Error(), "nope") {
		t.Errorf("waitLine of a failing child: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	long, err := cs.start("long", noPin, t.TempDir(), nil, "", false, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	if err := long.wait(ctx); err == nil || !long.exitedNow() {
		t.Errorf("wait with a cancelled context = %v, exited %v", err, long.exitedNow())
	}
}

func TestRunCommand(t *testing.T) {
	out, err := runCommand(context.Background(), 10*time.Second, t.TempDir(), "sh", "-c", "echo out; echo err >&2")
	if err != nil || string(out) != "out\nerr\n" {
		t.Errorf("runCommand = %q, %v", out, err)
	}
	_, err = runCommand(context.Background(), 10*time.Second, t.TempDir(), "sh", "-c", "echo why; exit 2")
	if err == nil || !strings.Contains(err.Error(), "why") {
		t.Errorf("runCommand of a failing command: %v", err)
	}
	start := time.Now()
	_, err = runCommand(context.Background(), 200*time.Millisecond, t.TempDir(), "sleep", "30")
	if err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("runCommand past its timeout: %v after %v", err, time.Since(start))
	}
}

func TestApplyLimits(t *testing.T) {
	ps := plan([]string{"idle", "churn", "scale"}, false)
	applyLimits(ps, noFile{limit: 20000, why: "the hard limit is 20000"}, 28231)
	got := map[string]string{}
	for _, p := range ps {
		got[p.scenario+" "+p.key] = p.skip
	}
	for k, wantSkip := range map[string]bool{
		"idle n=5000": false, "idle n=20000": true, "churn cycles=20000": false,
		"scale n=1000": false, "scale n=10000": false, "scale n=50000": true,
	} {
		if (got[k] != "") != wantSkip {
			t.Errorf("%s: skip = %q, want skipped %v", k, got[k], wantSkip)
		}
	}
	if s := got["idle n=20000"]; !strings.Contains(s, "20,256 open files") || !strings.Contains(s, "RLIMIT_NOFILE is 20,000: the hard limit is 20000") {
		t.Errorf("idle 20000 skip reason %q", s)
	}

	// 5,000 ports per address: 1,000 connections fit from one, 10,000
	// from two, 50,000 not from eight.
	ps = plan([]string{"scale"}, false)
	applyLimits(ps, noFile{limit: 1 << 20}, 5000)
	for i, wantSkip := range []bool{false, false, true} {
		if (ps[i].skip != "") != wantSkip {
			t.Errorf("ports 5000: %s skip = %q, want skipped %v", ps[i].key, ps[i].skip, wantSkip)
		}
	}
}

func TestConnsCap(t *testing.T) {
	tests := []struct {
		name     string
		maxConns int
		limit    uint64
		want     int
		why      string
	}{
		{"the hard limit here", 0, 20000, 19500, "RLIMIT_NOFILE 20,000"},
		{"rounded down", 0, 20755, 20000, "RLIMIT_NOFILE 20,755"},
		{"just a unit", 0, 756, 500, "RLIMIT_NOFILE 756"},
		{"too low for a unit", 0, 755, 0, ""},
		{"below the margin", 0, 100, 0, ""},
		{"unknown limit", 0, 0, 0, ""},
		{"-max-conns wins", 3000, 20000, 3000, "-max-conns 3,000"},
		{"-max-conns above the limit", 30000, 20000, 30000, "-max-conns 30,000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := connsCap(tt.maxConns, noFile{limit: tt.limit})
			if got != tt.want || why != tt.why {
				t.Errorf("connsCap(%d, %d) = %d, %q; want %d, %q", tt.maxConns, tt.limit, got, why, tt.want, tt.why)
			}
		})
	}
}

// With RLIMIT_NOFILE 20,000 (the hard limit of the machine the benchmark
// was written on), idle 20,000 and scale 50,000 run at 19,500, labelled,
// and nothing is skipped.
func TestCapConns(t *testing.T) {
	nofile := noFile{limit: 20000, why: "the hard limit is 20000"}
	ps := plan(allScenarios, false)
	limit, why := connsCap(0, nofile)
	capConns(ps, limit, why, "RLIMIT_NOFILE is 20,000: the hard limit is 20000")
	applyLimits(ps, nofile, 28232)
	type want struct{ key, title string }
	got := map[string]point{}
	for _, p := range ps {
		if p.skip != "" {
			t.Errorf("%s %s skipped: %s", p.scenario, p.key, p.skip)
		}
		got[p.scenario+" "+p.key] = p
	}
	for k, w := range map[string]want{
		"idle n=5000":                 {"", "idle, 5,000 conns"},
		"idle n=19500 (20000 asked)":  {"20000", "idle, 19,500 conns (20,000 asked; RLIMIT_NOFILE 20,000)"},
		"scale n=19500 (50000 asked)": {"50000", "scale, 19,500 conns (50,000 asked; RLIMIT_NOFILE 20,000)"},
		"scale n=10000":               {"", "scale, 10,000 conns"},
		"churn cycles=20000":          {"", "churn, 20,000 cycles"},
		"fanout users=1000":           {"", "fanout, 1,000 users × 20 emits"},
		"cluster users=1000":          {"", "cluster (2 nodes + Redis), 1,000 users × 20 emits"},
		"pollfanout users=1000":       {"", "long-polling fanout, 1,000 users × 20 emits"},
		"roundsfanout users=1000":     {"", "closed-loop fanout, 1,000 users × 20 rounds of 1 emit"},
		"pollcluster users=1000":      {"", "long-polling cluster (2 nodes + Redis), 1,000 users × 20 emits"},
		"roundscluster users=1000":    {"", "closed-loop cluster (2 nodes + Redis), 1,000 users × 20 rounds of 1 emit"},
	} {
		p, ok := got[k]
		if !ok {
			t.Errorf("no point %s", k)
			continue
		}
		if p.title != w.title {
			t.Errorf("%s: title %q, want %q", k, p.title, w.title)
		}
		if (w.key != "") != (p.capped != "") || (p.capped != "" && !strings.Contains(p.capped, "runs with 19,500 connections, not "+formatCount(p.asked)+": RLIMIT_NOFILE is 20,000")) {
			t.Errorf("%s: capped %q", k, p.capped)
		}
	}
	if p := got["scale n=19500 (50000 asked)"]; p.n != 19500 || p.asked != 50000 || p.fds != 19500+fdMargin || p.sources() != 3 {
		t.Errorf("scale capped: %+v", p)
	}

	// A cap below several points keeps their keys apart; churn is cycles
	// and keeps its N.
	ps = plan([]string{"idle", "churn"}, false)
	capConns(ps, 3000, "-max-conns 3,000", "-max-conns is 3,000")
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.key)
	}
	if got, want := strings.Join(keys, ", "), "n=3000 (5000 asked), n=3000 (20000 asked), cycles=20000"; got != want {
		t.Errorf("keys %s, want %s", got, want)
	}

	// No cap: nothing changes.
	ps = plan([]string{"idle"}, false)
	capConns(ps, 0, "", "")
	if ps[1].n != 20000 || ps[1].capped != "" {
		t.Errorf("no cap: %+v", ps[1])
	}
}

// The report's header says what was capped and skipped, and why; the
// table labels a capped point.
func TestMarkdownCapped(t *testing.T) {
	b := &bench{cfg: config{runs: 1, scenarios: []string{"idle"}}, started: time.Now(), nofile: noFile{limit: 20000}}
	b.points = plan([]string{"idle"}, false)
	b.maxConns, b.capWhy = connsCap(0, b.nofile)
	capConns(b.points, b.maxConns, b.capWhy, b.capDetail())
	b.points[0].skip = "for the test"
	b.results = []runResult{{Scenario: "idle", Point: b.points[1].key, Server: herald, Run: 1, Metrics: map[string]float64{"rssPerConnKiB": 9}}}
	var out strings.Builder
	if err := b.writeMarkdown(&out); err != nil {
		t.Fatal(err)
	}
	md := out.String()
	for _, want := range []string{
		"- connections per point: at most 19,500 (what RLIMIT_NOFILE allows: the limit − 256 rounded down to a multiple of 500; -max-conns sets another cap)\n",
		"- **capped** idle n=19500 (20000 asked): runs with 19,500 connections, not 20,000: RLIMIT_NOFILE is 20,000",
		"- **skipped** idle n=5000: for the test\n",
		"| idle, 19,500 conns (20,000 asked; RLIMIT_NOFILE 20,000): RSS per connection, KiB (lower is better) | 9 |",
		"| n=19500 (20000 asked) | herald | 1 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}

// TestNextSources: every run gets loopback addresses that no run before
// had, as many as its connections need.
func TestNextSources(t *testing.T) {
	var b bench
	seen := map[string]bool{}
	for run := range 600 {
		p := point{n: 1 + run*100}
		got := strings.Split(b.nextSources(p), ",")
		if len(got) != p.sources() {
			t.Fatalf("n=%d: %d addresses, want %d", p.n, len(got), p.sources())
		}
		for _, a := range got {
			ip := net.ParseIP(a).To4()
			if ip == nil || ip[0] != 127 || ip[3] == 0 || ip[3] == 255 {
				t.Fatalf("run %d: %q is not a loopback host address", run, a)
			}
			if seen[a] {
				t.Fatalf("run %d: %s handed out twice", run, a)
			}
			seen[a] = true
		}
	}
}

// Every scenario has its title, its explanation in the report, and, when it
// measures deliveries, a load generator scenario that takes its arguments.
func TestScenarioDefinitions(t *testing.T) {
	for _, sc := range allScenarios {
		if strings.HasPrefix(pointTitle(sc, 10), sc+", N = ") {
			t.Errorf("%s: no title of its own", sc)
		}
		if howMeasured(sc) == "" {
			t.Errorf("%s: the report does not say how it is measured", sc)
		}
	}
	tests := []struct {
		scenario, load, args string
		cluster              bool
	}{
		{"fanout", "fanout", "-emits 20 -pad 0", false},
		{"cluster", "fanout", "-emits 20 -pad 0", true},
		{"scale", "fanout", "-emits 20 -pad 0", false},
		{"pollfanout", "pollfanout", "-emits 20 -pad 0", false},
		{"pollcluster", "pollfanout", "-emits 20 -pad 0", true},
		{"roundsfanout", "roundsfanout", "-rounds 20 -pad 0", false},
		{"roundscluster", "roundsfanout", "-rounds 20 -pad 0", true},
	}
	for _, tt := range tests {
		load, args := fanoutLoad(tt.scenario)
		if load != tt.load || strings.Join(args, " ") != tt.args {
			t.Errorf("fanoutLoad(%s) = %s %q, want %s %s", tt.scenario, load, args, tt.load, tt.args)
		}
		if isCluster(tt.scenario) != tt.cluster {
			t.Errorf("isCluster(%s) = %v", tt.scenario, !tt.cluster)
		}
	}
	for _, sc := range []string{"pollfanout", "roundsfanout", "pollcluster", "roundscluster"} {
		p := plan([]string{sc}, false)[0]
		if loadTimeout(p) < time.Minute || p.n != 1000 || p.fds != 1000+fdMargin || len(p.figures) != 4 {
			t.Errorf("%s: point %+v, timeout %v", sc, p, loadTimeout(p))
		}
	}
}
