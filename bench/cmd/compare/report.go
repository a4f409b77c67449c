package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The results: what one run measured, and the Markdown that summarises the
// runs.

// Server kinds, in the order they run and appear in the table.
const (
	herald = "herald"
	node   = "node"
)

// runResult is one run of one scenario point against one server.
type runResult struct {
	Scenario string `json:"scenario"`
	Point    string `json:"point"` // e.g. "n=5000"
	Server   string `json:"server"`
	Run      int    `json:"run"` // 1-based
	// Metrics are the figures of the run, by metric name (see metrics).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Load is what the load generator printed, by phase ("idle", "fanout",
	// "pollfanout", "roundsfanout", "churn"), and LoadArgs the arguments it
	// ran with.
	Load     map[string]json.RawMessage `json:"load,omitempty"`
	LoadArgs map[string][]string        `json:"loadArgs,omitempty"`
	Notes    []string                   `json:"notes,omitempty"`
	Error    string                     `json:"error,omitempty"`
}

func (r *runResult) set(name string, v float64) {
	if r.Metrics == nil {
		r.Metrics = make(map[string]float64)
	}
	r.Metrics[name] = v
}

func (r *runResult) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// better says which direction of a figure is the good one.
type better int

const (
	noDirection better = iota
	lowerBetter
	higherBetter
)

func (b better) String() string {
	switch b {
	case lowerBetter:
		return "lower is better"
	case higherBetter:
		return "higher is better"
	}
	return ""
}

// metric describes one key of runResult.Metrics.
type metric struct {
	name   string
	label  string // what it is, with its unit
	better better
}

// metrics lists every metric a run can have, in the order of the raw-run
// columns.
var metrics = []metric{
	{"rssPerConnKiB", "RSS per connection, KiB", lowerBetter},
	{"connectRate", "connect rate, conns/s", higherBetter},
	{"connectP50Ms", "connect p50, ms", lowerBetter},
	{"connectP99Ms", "connect p99, ms", lowerBetter},
	{"connected", "connected", noDirection},
	{"failed", "failed", lowerBetter},
	{"serverConnected", "connected (server's count)", noDirection},
	{"rssBeforeMiB", "RSS before, MiB", lowerBetter},
	{"rssHeldMiB", "RSS held, MiB", lowerBetter},
	{"msgsPerSec", "msgs/s", higherBetter},
	{"latP50Ms", "latency p50, ms", lowerBetter},
	{"latP99Ms", "latency p99, ms", lowerBetter},
	{"cpuUsPerMsg", "server CPU per delivered message, µs", lowerBetter},
	{"handshakeCPUUsPerConn", "handshake CPU per connection, µs", lowerBetter},
	{"received", "received", noDirection},
	{"expected", "expected", noDirection},
	{"outOfOrder", "out of order", lowerBetter},
	{"lost", "lost", lowerBetter},
	{"duplicates", "duplicates", lowerBetter},
	{"unexpected", "not the run's", lowerBetter},
	{"roundP50Ms", "round p50 (POST to last delivery), ms", lowerBetter},
	{"roundMaxMs", "slowest round, ms", lowerBetter},
	{"serverCPUms", "server CPU from ready to exit, ms", lowerBetter},
	{"serverCPUPct", "server CPU from ready to exit, % of a core", noDirection},
	{"cyclesPerSec", "cycles/s", higherBetter},
	{"goroutinesBefore", "goroutines before", noDirection},
	{"goroutinesAfter", "goroutines after", noDirection},
	{"goroutinesDelta", "goroutines after − before", lowerBetter},
	{"rssAfterMiB", "RSS after, MiB", lowerBetter},
	{"rssDeltaMiB", "RSS after − before, MiB", lowerBetter},
	{"loadCPUPct", "load generator CPU, % of a core", noDirection},
	{"seconds", "first POST to last event, s", noDirection},
}

// metricByName returns the description of a metric; an unknown name gets
// itself as its label.
func metricByName(name string) metric {
	for _, m := range metrics {
		if m.name == name {
			return m
		}
	}
	return metric{name: name, label: name}
}

// figure is one row of the summary table: a metric of one scenario point.
type figure struct {
	scenario, point, metric string
	title                   string // the point, e.g. "idle, 5,000 conns"
}

// row is a figure with its medians; nil means no run measured it.
type row struct {
	label          string
	better         better
	herald, node   *float64
	heraldN, nodeN int // how many runs the medians are of
}

// summarize computes the rows of the summary table from the runs.
func summarize(figs []figure, runs []runResult) []row {
	rows := make([]row, 0, len(figs))
	for _, f := range figs {
		m := metricByName(f.metric)
		r := row{label: f.title + ": " + m.label, better: m.better}
		var hv, nv []float64
		for _, run := range runs {
			if run.Scenario != f.scenario || run.Point != f.point || run.Error != "" {
				continue
			}
			v, ok := run.Metrics[f.metric]
			if !ok {
				continue
			}
			switch run.Server {
			case herald:
				hv = append(hv, v)
			case node:
				nv = append(nv, v)
			}
		}
		if med, ok := median(hv); ok {
			r.herald, r.heraldN = &med, len(hv)
		}
		if med, ok := median(nv); ok {
			r.node, r.nodeN = &med, len(nv)
		}
		rows = append(rows, r)
	}
	return rows
}

// median returns the median of vs (the mean of the middle two for an even
// count), false for none. NaN values are ignored.
func median(vs []float64) (float64, bool) {
	s := make([]float64, 0, len(vs))
	for _, v := range vs {
		if !math.IsNaN(v) {
			s = append(s, v)
		}
	}
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid], true
	}
	return (s[mid-1] + s[mid]) / 2, true
}

// writeTable writes the summary table. runs is the number of runs asked
// for: a median over fewer runs says so.
func writeTable(w io.Writer, rows []row, runs int) error {
	var b strings.Builder
	b.WriteString("| figure | herald | Node | herald/Node |\n")
	b.WriteString("|---|---:|---:|---:|\n")
	for _, r := range rows {
		label := r.label
		if s := r.better.String(); s != "" {
			label += " (" + s + ")"
		}
		ratio := "n/a"
		if r.herald != nil && r.node != nil {
			ratio = formatRatio(*r.herald, *r.node)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", escapeCell(label),
			formatMedian(r.herald, r.heraldN, runs), formatMedian(r.node, r.nodeN, runs), ratio)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatMedian formats a median cell: "—" when nothing was measured, and
// the number of runs when fewer than asked for succeeded.
func formatMedian(v *float64, n, runs int) string {
	if v == nil {
		return "—"
	}
	s := formatValue(*v)
	if n < runs {
		s += fmt.Sprintf(" (%d of %d runs)", n, runs)
	}
	return s
}

// formatRatio formats h/n with 2 decimals; "n/a" when the ratio means
// nothing (n not positive, or h negative).
func formatRatio(h, n float64) string {
	if n <= 0 || h < 0 || math.IsNaN(h) || math.IsNaN(n) || math.IsInf(h, 0) || math.IsInf(n, 0) {
		return "n/a"
	}
	return strconv.FormatFloat(h/n, 'f', 2, 64)
}

// formatValue formats a figure with a precision that suits its size:
// thousands separated from 1,000 on, 2 significant decimals below 10.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case math.Abs(math.Round(v)) >= 1000:
		return groupThousands(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// groupThousands puts a comma between groups of three digits of an
// integer written in decimal ("-1234567" -> "-1,234,567").
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String()
}

// formatCount formats an integer with thousands separators.
func formatCount(n int) string {
	return groupThousands(strconv.Itoa(n))
}

// maxErrorCell is how many characters of a run's error the raw-run table
// shows; the -json file has all of it.
const maxErrorCell = 600

// shorten collapses the white space of s and, when it is longer than n
// characters, keeps its start and its end.
func shorten(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	half := n / 2
	return string(r[:half]) + " … " + string(r[len(r)-half:])
}

// escapeCell makes s safe inside a Markdown table cell.
func escapeCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// writeRawRuns writes one table per scenario with every run, in the order
// they ran, and the columns of every metric any of its runs has.
func writeRawRuns(w io.Writer, scenarios []string, runs []runResult) error {
	var b strings.Builder
	for _, sc := range scenarios {
		var rs []runResult
		for _, r := range runs {
			if r.Scenario == sc {
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			continue
		}
		var cols []metric
		for _, m := range metrics {
			if slices.ContainsFunc(rs, func(r runResult) bool { _, ok := r.Metrics[m.name]; return ok }) {
				cols = append(cols, m)
			}
		}
		// Metrics outside the list, sorted, so that nothing measured is lost.
		var extra []string
		for _, r := range rs {
			for k := range r.Metrics {
				if !slices.ContainsFunc(metrics, func(m metric) bool { return m.name == k }) && !slices.Contains(extra, k) {
					extra = append(extra, k)
				}
			}
		}
		slices.Sort(extra)
		for _, k := range extra {
			cols = append(cols, metric{name: k, label: k})
		}

		fmt.Fprintf(&b, "\n### %s\n\n| point | server | run |", sc)
		for _, c := range cols {
			fmt.Fprintf(&b, " %s |", escapeCell(c.label))
		}
		b.WriteString(" notes |\n|---|---|---:|")
		for range cols {
			b.WriteString("---:|")
		}
		b.WriteString("---|\n")
		for _, r := range rs {
			fmt.Fprintf(&b, "| %s | %s | %d |", r.Point, r.Server, r.Run)
			for _, c := range cols {
				v, ok := r.Metrics[c.name]
				if !ok {
					b.WriteString(" — |")
					continue
				}
				fmt.Fprintf(&b, " %s |", formatValue(v))
			}
			notes := slices.Clone(r.Notes)
			if r.Error != "" {
				notes = append([]string{"FAILED: " + shorten(r.Error, maxErrorCell)}, notes...)
			}
			fmt.Fprintf(&b, " %s |\n", escapeCell(strings.Join(notes, "; ")))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
