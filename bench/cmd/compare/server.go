package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// The bench servers: starting, asking, stopping.

// server is a running bench server.
type server struct {
	c   *child
	url string // http://host:port
}

// childEnv returns the orchestrator's environment without the bench
// variables, plus the server's.
func (b *bench) childEnv(redisURL string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BENCH_") || strings.HasPrefix(kv, "REDIS_URL=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "BENCH_ADDR=127.0.0.1:0", "BENCH_JWT_SECRET="+b.secret)
	if redisURL != "" {
		env = append(env, "REDIS_URL="+redisURL)
	}
	return env
}

// startServer starts a server of kind, waits for its listening line and
// warms it up with a GET /bench/runtime.
func (b *bench) startServer(ctx context.Context, kind, name, redisURL string) (*server, error) {
	var c *child
	var err error
	switch kind {
	case herald:
		c, err = b.cs.start(name, b.pinTo(serverCPU), b.root, b.childEnv(redisURL), listeningPrefix, b.cfg.verbose, b.herald)
	case node:
		c, err = b.cs.start(name, b.pinTo(serverCPU), b.nodeDir, b.childEnv(redisURL), listeningPrefix, b.cfg.verbose, "node", "server.js")
	default:
		err = fmt.Errorf("compare: unknown server %q", kind)
	}
	if err != nil {
		return nil, err
	}
	s := &server{c: c}
	line, err := c.waitLine(ctx, startTimeout)
	if err == nil {
		s.url, err = parseListening(line)
	}
	if err == nil {
		var rt runtimeStats
		err = b.getJSON(ctx, s.url+"/bench/runtime", &rt)
	}
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("%w\n%s", err, c.describe())
	}
	return s, nil
}

// parseListening checks the rest of a "listening on " line: an
// http://host:port URL, returned without a trailing slash.
func parseListening(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("compare: the listening line has %q, want http://HOST:PORT", s)
	}
	return "http://" + u.Host, nil
}

// stopServer stops s with SIGTERM and notes on res when it did not exit 0
// promptly, as bench/SPEC.md asks.
func (b *bench) stopServer(s *server, res *runResult) {
	if s == nil {
		return
	}
	exited := s.c.exitedNow()
	st := s.c.stop()
	switch {
	case exited:
		res.note("%s had exited before the end of the run (%v)", s.c.name, st.err)
	case st.killed:
		res.note("%s ignored SIGTERM for %v and was killed", s.c.name, stopGrace)
	case st.err != nil:
		res.note("%s exited with %v on SIGTERM", s.c.name, st.err)
	case st.took > 2*time.Second:
		res.note("%s took %v to exit on SIGTERM", s.c.name, st.took.Round(time.Millisecond))
	}
}

// runtimeStats is the answer of GET /bench/runtime.
type runtimeStats struct {
	Goroutines *int64 `json:"goroutines"`
	HeapInuse  *int64 `json:"heapInuse"`
	RSS        *int64 `json:"rss"`
}

func (rt runtimeStats) check() error {
	if rt.Goroutines == nil || rt.HeapInuse == nil || rt.RSS == nil {
		return errors.New("compare: /bench/runtime lacks goroutines, heapInuse or rss")
	}
	return nil
}

// wsStats is the part of GET /api/v1/websocket/stats the runs use.
type wsStats struct {
	Success bool `json:"success"`
	Data    struct {
		Connected *int64 `json:"connected"`
		Users     *int64 `json:"users"`
	} `json:"data"`
}

// getJSON GETs u and decodes its JSON answer into v.
func (b *bench) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("compare: GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("compare: GET %s: %s: %.200s", u, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("compare: GET %s: %w: %.200s", u, err, body)
	}
	return nil
}
