package main

import (
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want float64
		ok   bool
	}{
		{"none", nil, 0, false},
		{"one", []float64{7}, 7, true},
		{"odd, unsorted", []float64{3, 1, 2}, 2, true},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5, true},
		{"negative", []float64{-1, -5, 10}, -1, true},
		{"NaN ignored", []float64{math.NaN(), 1, 3}, 2, true},
		{"only NaN", []float64{math.NaN()}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.in...)
			got, ok := median(in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("median(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
			for i := range in { // the input is left alone
				if in[i] != tt.in[i] && !math.IsNaN(in[i]) {
					t.Errorf("median reordered its input: %v", in)
				}
			}
		})
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{3, "3"},
		{1.234, "1.23"},
		{0.005, "0.01"},
		{-0.5, "-0.50"},
		{12.34, "12.3"},
		{123.4, "123"},
		{999.6, "1,000"},
		{1234.5, "1,235"},
		{1234567, "1,234,567"},
		{-1234567, "-1,234,567"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "+Inf"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.in); got != tt.want {
			t.Errorf("formatValue(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestGroupThousands(t *testing.T) {
	for in, want := range map[string]string{"1": "1", "123": "123", "1234": "1,234", "123456": "123,456", "-1000": "-1,000", "-12": "-12"} {
		if got := groupThousands(in); got != want {
			t.Errorf("groupThousands(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormatRatio(t *testing.T) {
	tests := []struct {
		h, n float64
		want string
	}{
		{1, 2, "0.50"},
		{2, 1, "2.00"},
		{1, 3, "0.33"},
		{0, 5, "0.00"},
		{5, 0, "n/a"},
		{-1, 5, "n/a"},
		{1, -5, "n/a"},
		{math.NaN(), 1, "n/a"},
		{math.Inf(1), 1, "n/a"},
	}
	for _, tt := range tests {
		if got := formatRatio(tt.h, tt.n); got != tt.want {
			t.Errorf("formatRatio(%v, %v) = %q, want %q", tt.h, tt.n, got, tt.want)
		}
	}
}

func TestSummarizeAndWriteTable(t *testing.T) {
	runs := []runResult{
		{Scenario: "fanout", Point: "users=100", Server: herald, Run: 1, Metrics: map[string]float64{"msgsPerSec": 3000, "latP99Ms": 2}},
		{Scenario: "fanout", Point: "users=100", Server: node, Run: 1, Metrics: map[string]float64{"msgsPerSec": 1000, "latP99Ms": 8}},
		{Scenario: "fanout", Point: "users=100", Server: herald, Run: 2, Metrics: map[string]float64{"msgsPerSec": 5000, "latP99Ms": 4}},
		{Scenario: "fanout", Point: "users=100", Server: node, Run: 2, Error: "boom", Metrics: map[string]float64{"msgsPerSec": 1e9}},
		{Scenario: "fanout", Point: "users=100", Server: herald, Run: 3, Metrics: map[string]float64{"msgsPerSec": 4000, "latP99Ms": 3}},
		{Scenario: "fanout", Point: "users=100", Server: node, Run: 3, Metrics: map[string]float64{"msgsPerSec": 2000, "latP99Ms": 6}},
		{Scenario: "churn", Point: "cycles=10", Server: herald, Run: 1, Metrics: map[string]float64{"goroutinesDelta": 0}},
		{Scenario: "churn", Point: "cycles=10", Server: node, Run: 1, Metrics: map[string]float64{}},
	}
	figs := []figure{
		{scenario: "fanout", point: "users=100", metric: "msgsPerSec", title: "fanout, 100 users"},
		{scenario: "fanout", point: "users=100", metric: "latP99Ms", title: "fanout, 100 users"},
		{scenario: "churn", point: "cycles=10", metric: "goroutinesDelta", title: "churn | 10"},
		{scenario: "idle", point: "n=5", metric: "rssPerConnKiB", title: "idle, 5 conns"},
	}
	rows := summarize(figs, runs)
	var b strings.Builder
	if err := writeTable(&b, rows, 3); err != nil {
		t.Fatal(err)
	}
	want := `| figure | herald | Node | herald/Node |
|---|---:|---:|---:|
| fanout, 100 users: msgs/s (higher is better) | 4,000 | 1,500 (2 of 3 runs) | 2.67 |
| fanout, 100 users: latency p99, ms (lower is better) | 3 | 7 (2 of 3 runs) | 0.43 |
| churn \| 10: goroutines after − before (lower is better) | 0 (1 of 3 runs) | — | n/a |
| idle, 5 conns: RSS per connection, KiB (lower is better) | — | — | n/a |
`
	if got := b.String(); got != want {
		t.Errorf("writeTable:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteRawRuns(t *testing.T) {
	runs := []runResult{
		{Scenario: "idle", Point: "n=10", Server: herald, Run: 1, Metrics: map[string]float64{"connectRate": 1500, "zzExtra": 1}, Notes: []string{"a|b"}},
		{Scenario: "idle", Point: "n=10", Server: node, Run: 1, Error: "it broke\nbadly"},
		{Scenario: "churn", Point: "cycles=5", Server: node, Run: 1, Metrics: map[string]float64{"cyclesPerSec": 10}},
	}
	var b strings.Builder
	if err := writeRawRuns(&b, []string{"idle", "fanout", "churn"}, runs); err != nil {
		t.Fatal(err)
	}
	want := `
### idle

| point | server | run | connect rate, conns/s | zzExtra | notes |
|---|---|---:|---:|---:|---|
| n=10 | herald | 1 | 1,500 | 1 | a\|b |
| n=10 | node | 1 | — | — | FAILED: it broke badly |

### churn

| point | server | run | cycles/s | notes |
|---|---|---:|---:|---|
| cycles=5 | node | 1 | 10.0 |  |
`
	if got := b.String(); got != want {
		t.Errorf("writeRawRuns:\n%s\nwant:\n%s", got, want)
	}
}

func TestMetricsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range metrics {
		if seen[m.name] {
			t.Errorf("metric %q listed twice", m.name)
		}
		seen[m.name] = true
	}
	for _, p := range plan(allScenarios, false) {
		for _, f := range p.figures {
			if !seen[f] {
				t.Errorf("point %s %s: figure %q is not in metrics", p.scenario, p.key, f)
			}
		}
	}
}

func TestShorten(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"a\n  b\tc", 10, "a b c"},
		{"0123456789", 10, "0123456789"},
		{"0123456789ab", 4, "01 … ab"},
		{"ééééé", 2, "é … é"},
	}
	for _, tt := range tests {
		if got := shorten(tt.in, tt.n); got != tt.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
