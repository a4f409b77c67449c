package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The fake children of TestMeasureFanout: a server that prints its
// listening line (the URL of a test server that answers /bench/runtime)
// and waits for SIGTERM, and a load generator that records its arguments,
// plays the ready/hold handshake and prints a given JSON line.
const (
	fakeServer = `trap 'exit 0' TERM
echo "listening on $FAKE_SERVER_URL"
while :; do sleep 0.05; done
`
	fakeLoad = `echo "$@" > "$FAKE_LOAD_ARGS"
ready= hold=
while [ $# -gt 0 ]; do
	case "$1" in
	-ready-file) ready=$2 ;;
	-hold-until-file) hold=$2 ;;
	esac
	shift
done
: > "$ready"
while [ ! -e "$hold" ]; do sleep 0.02; done
echo "$FAKE_LOAD_OUT"
exit "${FAKE_LOAD_EXIT:-0}"
`
)

// TestMeasureFanout runs the orchestrator's side of the one-node fanout
// scenarios against fake children: the load generator gets the scenario
// and arguments of the point, its figures land in the run, and a run that
// lost events fails with its counts kept.
func TestMeasureFanout(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	write := func(name, script string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bench/runtime" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"goroutines":1,"heapInuse":1,"rss":1}`))
	}))
	defer ts.Close()
	argsFile := filepath.Join(dir, "load-args")
	t.Setenv("FAKE_SERVER_URL", ts.URL)
	t.Setenv("FAKE_LOAD_ARGS", argsFile)

	const delivered = `"expected":2000,"received":2000,"msgsPerSec":5000,"latP50Ms":1,"latP99Ms":2,"outOfOrder":0,"seconds":0.4,"connected":100,"failed":0,"dropped":0,"incomplete":false`
	tests := []struct {
		scenario string
		out      string
		exit     string
		args     string // what the load generator is run with, after -secret and -timeout
		metrics  map[string]float64
		err      string // in the run's error
	}{
		{
			scenario: "fanout",
			out:      `{"scenario":"fanout",` + delivered + `}`,
			args:     "fanout -users 100 -conns 100 -emits 20 -pad 0",
			metrics:  map[string]float64{"msgsPerSec": 5000, "latP99Ms": 2, "received": 2000},
		},
		{
			scenario: "pollfanout",
			out:      `{"scenario":"pollfanout","transport":"polling","lost":0,"duplicates":0,"unexpected":0,` + delivered + `}`,
			args:     "pollfanout -users 100 -conns 100 -emits 20 -pad 0",
			metrics:  map[string]float64{"msgsPerSec": 5000, "lost": 0, "duplicates": 0},
		},
		{
			scenario: "roundsfanout",
			out:      `{"scenario":"roundsfanout","transport":"websocket","lost":0,"duplicates":1,"unexpected":0,"roundP50Ms":3,"roundMaxMs":7,` + delivered + `}`,
			args:     "roundsfanout -users 100 -conns 100 -rounds 20 -pad 0",
			metrics:  map[string]float64{"msgsPerSec": 5000, "duplicates": 1, "roundP50Ms": 3, "roundMaxMs": 7},
		},
		{
			scenario: "roundsfanout",
			out:      `{"scenario":"roundsfanout","transport":"websocket","expected":2000,"received":1998,"lost":2,"duplicates":0,"unexpected":0,"msgsPerSec":10,"latP99Ms":1,"incomplete":true,"error":"round 3: no event for 10s, 2 connections waiting"}`,
			exit:     "3",
			args:     "roundsfanout -users 100 -conns 100 -rounds 20 -pad 0",
			metrics:  map[string]float64{"lost": 2},
			err:      "exit status 3",
		},
	}
	for _, tt := range tests {
		name := tt.scenario
		if tt.err != "" {
			name += " fails"
		}
		t.Run(name, func(t *testing.T) {
			t.Setenv("FAKE_LOAD_OUT", tt.out)
			t.Setenv("FAKE_LOAD_EXIT", tt.exit)
			b := &bench{
				cfg:    config{runs: 1},
				root:   dir,
				tmp:    t.TempDir(),
				herald: write("server", fakeServer),
				load:   write("load", fakeLoad),
				secret: "s3cr3t",
				pinWhy: "a test",
				client: &http.Client{},
			}
			t.Cleanup(b.cs.stopAll)
			p := plan([]string{tt.scenario}, true)[0]
			res := b.runOne(context.Background(), p, herald, 1)
			if tt.err == "" && res.Error != "" || !strings.Contains(res.Error, tt.err) {
				t.Errorf("run error %q, want %q", res.Error, tt.err)
			}
			for k, want := range tt.metrics {
				if got, ok := res.Metrics[k]; !ok || got != want {
					t.Errorf("metric %s = %v (%v), want %v", k, got, ok, want)
				}
			}
			got, err := os.ReadFile(argsFile)
			if err != nil {
				t.Fatal(err)
			}
			if args := strings.TrimSpace(string(got)); !strings.HasPrefix(args, strings.Fields(tt.args)[0]+" -secret s3cr3t -timeout ") ||
				!strings.Contains(args, strings.TrimPrefix(tt.args, strings.Fields(tt.args)[0])) ||
				!strings.Contains(args, " -url "+ts.URL+" ") {
				t.Errorf("load generator ran with %q, want %q", args, tt.args)
			}
			if !strings.Contains(strings.Join(res.LoadArgs[strings.Fields(tt.args)[0]], " "), "-secret SECRET") {
				t.Errorf("LoadArgs %v: the secret is not redacted", res.LoadArgs)
			}
		})
	}
}
