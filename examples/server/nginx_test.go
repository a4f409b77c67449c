package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/internal/testenv"
)

// shippedNginx reads examples/nginx/herald.conf and splits it into what
// testenv.StartNginx takes, pointing the upstream at the given nodes. With
// sticky false the hash line is removed (round-robin), the negative control.
func shippedNginx(t *testing.T, nodes []string, sticky bool) testenv.NginxConfig {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.ModuleRoot(t), "examples", "nginx", "herald.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(raw)
	for i, placeholder := range []string{"server 127.0.0.1:3000;", "server 127.0.0.1:3001;"} {
		if !strings.Contains(conf, placeholder) {
			t.Fatalf("herald.conf lost its %q line", placeholder)
		}
		conf = strings.Replace(conf, placeholder, "server "+nodes[i]+";", 1)
	}
	if !sticky {
		conf = strings.Replace(conf, "hash $remote_addr consistent;", "", 1)
	}
	// The http-level part is everything before "server {"; the server
	// block's body, less its listen line, is the rest.
	i := strings.Index(conf, "\nserver {")
	j := strings.LastIndex(conf, "}")
	if i < 0 || j < i {
		t.Fatal("herald.conf: no server block")
	}
	body := strings.Replace(conf[i+len("\nserver {"):j], "listen 80;", "", 1)
	return testenv.NginxConfig{HTTP: conf[:i], Server: body}
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestNginxStickySessions puts real nginx, configured with the shipped
// examples/nginx/herald.conf, in front of two nodes and runs polling,
// upgrading and WebSocket clients through it. Each client gets a job started
// on each node, so at least one of the two crosses nodes through Redis.
func TestNginxStickySessions(t *testing.T) {
	testenv.RequireNode(t)
	testenv.RequireNginx(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	nodes := []string{hostPort(t, a.URL), hostPort(t, b.URL)}
	ngx := testenv.StartNginx(t, shippedNginx(t, nodes, true))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ngx.ErrorLog())
		}
	})

	clients := map[string]nodeclient.Options{
		"alice": {Transports: []string{"polling"}},
		"bob":   {}, // polling, then upgrade to WebSocket
		"carol": {Transports: []string{"websocket"}},
		"dave":  {Transports: []string{"websocket"}, Extra: map[string]any{"localAddress": "127.0.0.2"}},
	}
	conns := map[string]*nodeclient.Client{}
	for user, opts := range clients {
		conns[user] = connect(t, ngx.URL(), user, opts)
	}
	waitStats(t, ngx.URL(), clusterStats{Connected: 4, Users: 4, Nodes: 2, Scope: "cluster"})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := conns["bob"].WaitType(ctx, "upgrade"); err != nil {
		t.Fatalf("bob did not upgrade to WebSocket through nginx: %v", err)
	}
	for user, c := range conns {
		jobA := postJob(t, a.URL, user, 10, false)
		jobB := postJob(t, b.URL, user, 10, true)
		jobEvents(t, c, jobA, 10, "job_completed")
		jobEvents(t, c, jobB, 10, "job_failed")
	}
	for user, c := range conns {
		for _, m := range c.History() {
			if m.Type == "disconnect" || m.Type == "connect_error" {
				t.Errorf("%s: %s through nginx", user, m.Raw)
			}
		}
	}
}

// TestNginxWithoutStickiness is the negative control: the same config
// without its hash line (round-robin) breaks long-polling, which is why the
// docs/cluster.md asks for sticky sessions.
func TestNginxWithoutStickiness(t *testing.T) {
	testenv.RequireNode(t)
	testenv.RequireNginx(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	ngx := testenv.StartNginx(t, shippedNginx(t, []string{hostPort(t, a.URL), hostPort(t, b.URL)}, false))
	c := nodeclient.Start(t, nodeclient.Options{URL: ngx.URL(), Transports: []string{"polling"},
		Auth: map[string]any{"token": token(t, "alice")}, Timeout: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool {
		return m.Type == "connect" || m.Type == "connect_error" || m.Type == "disconnect"
	})
	if err != nil {
		t.Fatalf("no outcome: %v", err)
	}
	t.Logf("without sticky sessions the polling client saw: %s", m.Raw)
	if m.Type == "connect" {
		// The session may have been opened; it cannot survive alternating nodes.
		if _, err := c.WaitType(ctx, "disconnect"); err != nil {
			t.Fatalf("a polling session survived round-robin across two nodes: %v", err)
		}
	}
}

// TestRollingRestart stops one of two nodes behind nginx (SIGTERM, a
// graceful shutdown) in the middle of a job: its client reconnects through
// nginx to the other node, recovers its session, and gets every event of
// the job once, in order; a user with a tab on the other node never appears
// offline.
func TestRollingRestart(t *testing.T) {
	testenv.RequireNode(t)
	testenv.RequireNginx(t)
	r := redistest.Start(t)
	env := []string{"HERALD_REDIS_MODE=streams", "HERALD_RECOVERY=30s"}
	nodes := []*demoNode{startNode(t, "A", r.URL(), env...), startNode(t, "B", r.URL(), env...)}
	ngx := testenv.StartNginx(t, shippedNginx(t, []string{hostPort(t, nodes[0].URL), hostPort(t, nodes[1].URL)}, true))

	alice := connect(t, ngx.URL(), "alice", nodeclient.Options{
		Transports: []string{"websocket"}, Reconnection: true,
		Extra: map[string]any{"reconnectionDelay": 200, "reconnectionDelayMax": 500},
	})
	// Which node did nginx pick? The other one stays up.
	var gone, stays *demoNode
	deadline := time.Now().Add(10 * time.Second)
	for gone == nil {
		for i, n := range nodes {
			if stats(t, n.URL).Node.Connected == 1 {
				gone, stays = n, nodes[1-i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("alice's socket is on no node")
		}
	}
	// carol has a tab on each node; bob watches presence from the node that stays.
	connect(t, gone.URL, "carol", nodeclient.Options{Transports: []string{"websocket"}})
	connect(t, stays.URL, "carol", nodeclient.Options{Transports: []string{"websocket"}})
	bob := connect(t, stays.URL, "bob", nodeclient.Options{Transports: []string{"websocket"}})
	// An event with an offset, so that alice can recover.
	jobEvents(t, alice, postJob(t, stays.URL, "alice", 1, false), 1, "job_completed")

	// A 40-step job on the node that stays; the other node stops midway.
	body := `{"steps":40,"delayMs":50}`
	req, _ := http.NewRequest(http.MethodPost, stays.URL+"/api/v1/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		JobID string `json:"jobId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&job); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	time.Sleep(500 * time.Millisecond)
	gone.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := alice.WaitFor(ctx, func(m nodeclient.Message) bool {
		return m.Type == "connect" && m.Recovered || m.Type == "connect_error"
	})
	if err != nil || m.Type != "connect" {
		t.Fatalf("alice did not recover through nginx: %v %v", m, err)
	}
	jobEvents(t, alice, job.JobID, 40, "job_completed")
	time.Sleep(300 * time.Millisecond)
	if n := countEvents(alice, "job_progress", job.JobID); n != 40 {
		t.Errorf("alice got %d progress events, want exactly 40", n)
	}
	if n := countEvents(bob, "user_offline", `"carol"`); n != 0 {
		t.Errorf("bob saw carol go offline %d times during the restart, want 0", n)
	}
}
