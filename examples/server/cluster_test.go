package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/internal/testenv"
)

// The cluster tests run the demo as real processes (go build), several
// nodes on one real redis-server, with real socket.io-client clients, and
// break things: kill -9 a node, kill and restart Redis.

const clusterSecret = "cluster-test-secret-0123456789abcdef"

// nodeTTL is short so that a killed node expires quickly.
const nodeTTL = 1500 * time.Millisecond

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the demo server and the worker once per test binary.
func binaries(t *testing.T) (server, worker string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "herald-cluster-bin")
		if buildErr != nil {
			return
		}
		root := testenv.ModuleRoot(t)
		for _, pkg := range []string{"server", "worker"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, pkg), "./examples/"+pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "server"), filepath.Join(binDir, "worker")
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// demoNode is one demo server process.
type demoNode struct {
	name string
	URL  string
	cmd  *exec.Cmd
	logs *syncBuf
	done chan struct{}
}

func startNode(t *testing.T, name, redisURL string, env ...string) *demoNode {
	t.Helper()
	server, _ := binaries(t)
	n := &demoNode{name: name, logs: &syncBuf{}, done: make(chan struct{})}
	n.cmd = exec.Command(server)
	n.cmd.Env = append(os.Environ(), "HERALD_ADDR=127.0.0.1:0", "HERALD_JWT_SECRET="+clusterSecret,
		"REDIS_URL="+redisURL, "HERALD_NODE_TTL="+nodeTTL.String())
	n.cmd.Env = append(n.cmd.Env, env...)
	n.cmd.Dir = testenv.ModuleRoot(t)
	n.cmd.Stderr = n.logs
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(n.logs, "stdout:", line)
			if _, url, ok := strings.Cut(line, "listening on "); ok {
				urls <- url
			}
		}
		_ = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("node %s logs:\n%s", n.name, n.logs.String())
		}
	})
	select {
	case n.URL = <-urls:
	case <-n.done:
		t.Fatalf("node %s exited at start:\n%s", name, n.logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("node %s did not start:\n%s", name, n.logs.String())
	}
	return n
}

// stop sends SIGTERM (a graceful shutdown) and waits; SIGKILL after 15s.
func (n *demoNode) stop(t *testing.T) {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		if code := n.cmd.ProcessState.ExitCode(); code != 0 && !n.killed() {
			t.Errorf("node %s exited with %d after SIGTERM", n.name, code)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("node %s ignored SIGTERM", n.name)
		n.kill9()
	}
}

func (n *demoNode) killed() bool {
	ws, ok := n.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// kill9 kills the node as a crash would: no shutdown, no goodbye to Redis.
func (n *demoNode) kill9() {
	_ = n.cmd.Process.Kill()
	<-n.done
}

func token(t *testing.T, user string) string {
	t.Helper()
	tok, err := auth.NewHMACToken([]byte(clusterSecret), user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func connect(t *testing.T, url, user string, opts nodeclient.Options) *nodeclient.Client {
	t.Helper()
	opts.URL = url
	opts.Auth = map[string]any{"token": token(t, user)}
	c := nodeclient.Start(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if m, err := c.WaitType(ctx, "connect"); err != nil {
		t.Fatalf("%s did not connect to %s: %v (%v)", user, url, err, m)
	}
	return c
}

// postJob starts a job on node url for user and returns its id.
func postJob(t *testing.T, url, user string, steps int, fail bool) string {
	t.Helper()
	body := fmt.Sprintf(`{"steps":%d,"delayMs":0,"fail":%v}`, steps, fail)
	req, err := http.NewRequest(http.MethodPost, url+"/api/v1/jobs", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token(t, user))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		JobID string `json:"jobId"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/jobs = %d, %v", resp.StatusCode, err)
	}
	return out.JobID
}

type clusterStats struct {
	Connected  int    `json:"connected"`
	Users      int    `json:"users"`
	Nodes      int    `json:"nodes"`
	StaleNodes int    `json:"staleNodes"`
	Scope      string `json:"scope"`
	Partial    bool   `json:"partial"`
	// Node is not compared by waitStats.
	Node struct {
		Connected int `json:"connected"`
		Users     int `json:"users"`
	} `json:"node"`
}

func stats(t *testing.T, url string) clusterStats {
	t.Helper()
	resp, err := http.Get(url + "/api/v1/websocket/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Success bool         `json:"success"`
		Data    clusterStats `json:"data"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &out); err != nil || !out.Success {
		t.Fatalf("stats = %s, %v", body, err)
	}
	return out.Data
}

func waitStats(t *testing.T, url string, want clusterStats) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := stats(t, url)
		got.Node = want.Node
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats on %s = %+v, want %+v", url, got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jobEvents waits for a whole job (steps progress events, then the
// terminal event) on c and checks order and content.
func jobEvents(t *testing.T, c *nodeclient.Client, jobID string, steps int, terminal string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var raw []string
	for i := 1; i <= steps; i++ {
		m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool {
			return m.Type == "event" && m.Event == "job_progress" && strings.Contains(string(m.Args[0]), jobID)
		})
		if err != nil {
			t.Fatalf("progress %d of %s: %v", i, jobID, err)
		}
		var p struct {
			JobID    string `json:"jobId"`
			Progress int    `json:"progress"`
		}
		if err := json.Unmarshal(m.Args[0], &p); err != nil || p.Progress != i*100/steps {
			t.Fatalf("progress event %d = %s (%v)", i, m.Args[0], err)
		}
		raw = append(raw, string(m.Args[0]))
	}
	m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool {
		return m.Type == "event" && (m.Event == "job_completed" || m.Event == "job_failed") && strings.Contains(string(m.Args[0]), jobID)
	})
	if err != nil {
		t.Fatalf("terminal event of %s: %v", jobID, err)
	}
	if m.Event != terminal {
		t.Fatalf("terminal event = %s, want %s", m.Event, terminal)
	}
	return append(raw, string(m.Args[0]))
}

// countEvents counts the events named name whose first argument mentions
// sub in what c has received.
func countEvents(c *nodeclient.Client, name, sub string) int {
	n := 0
	for _, m := range c.Events() {
		if m.Event == name && len(m.Args) > 0 && strings.Contains(string(m.Args[0]), sub) {
			n++
		}
	}
	return n
}

func TestClusterEmitAcrossNodes(t *testing.T) {
	testenv.RequireNode(t)
	for _, mode := range []string{"pubsub", "sharded"} {
		t.Run(mode, func(t *testing.T) {
			r := redistest.Start(t)
			a := startNode(t, "A", r.URL(), "HERALD_REDIS_MODE="+mode)
			b := startNode(t, "B", r.URL(), "HERALD_REDIS_MODE="+mode)
			c := startNode(t, "C", r.URL(), "HERALD_REDIS_MODE="+mode)
			tabA := connect(t, a.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
			tabB := connect(t, b.URL, "alice", nodeclient.Options{Transports: []string{"polling"}})
			bob := connect(t, c.URL, "bob", nodeclient.Options{})
			waitStats(t, c.URL, clusterStats{Connected: 3, Users: 2, Nodes: 3, Scope: "cluster"})

			// A job on node A: tab A gets it locally, tab B through Redis.
			job := postJob(t, a.URL, "alice", 30, false)
			gotA := jobEvents(t, tabA, job, 30, "job_completed")
			gotB := jobEvents(t, tabB, job, 30, "job_completed")
			for i := range gotA {
				if gotA[i] != gotB[i] {
					t.Fatalf("event %d differs between the local and the remote tab:\n%s\n%s", i, gotA[i], gotB[i])
				}
			}
			// A job on node C, which holds none of alice's sockets.
			job2 := postJob(t, c.URL, "alice", 5, true)
			jobEvents(t, tabA, job2, 5, "job_failed")
			jobEvents(t, tabB, job2, 5, "job_failed")

			time.Sleep(300 * time.Millisecond) // duplicates would have arrived by now
			for _, tab := range []*nodeclient.Client{tabA, tabB} {
				if n := countEvents(tab, "job_progress", job); n != 30 {
					t.Errorf("a tab got %d job_progress events of %s, want exactly 30", n, job)
				}
				if n := countEvents(tab, "job_failed", job2); n != 1 {
					t.Errorf("a tab got %d job_failed events, want exactly 1", n)
				}
			}
			if n := countEvents(bob, "job_progress", "job_"); n != 0 {
				t.Errorf("bob got %d of alice's events", n)
			}
		})
	}
}

// TestClusterPresence checks that presence transitions fire exactly once
// cluster-wide, with tabs of one user on several nodes.
func TestClusterPresence(t *testing.T) {
	testenv.RequireNode(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	bob := connect(t, b.URL, "bob", nodeclient.Options{Transports: []string{"websocket"}})
	tab1 := connect(t, a.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
	tab2 := connect(t, b.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if _, err := bob.WaitFor(ctx, func(m nodeclient.Message) bool {
		return m.Event == "user_online" && strings.Contains(string(m.Args[0]), `"alice"`)
	}); err != nil {
		t.Fatalf("bob never saw alice come online: %v", err)
	}
	waitStats(t, a.URL, clusterStats{Connected: 3, Users: 2, Nodes: 2, Scope: "cluster"})
	tab1.Close()
	waitStats(t, a.URL, clusterStats{Connected: 2, Users: 2, Nodes: 2, Scope: "cluster"})
	tab2.Close()
	if _, err := bob.WaitFor(ctx, func(m nodeclient.Message) bool {
		return m.Event == "user_offline" && strings.Contains(string(m.Args[0]), `"alice"`)
	}); err != nil {
		t.Fatalf("bob never saw alice go offline: %v", err)
	}
	waitStats(t, b.URL, clusterStats{Connected: 1, Users: 1, Nodes: 2, Scope: "cluster"})
	time.Sleep(300 * time.Millisecond)
	if n := countEvents(bob, "user_online", `"alice"`); n != 1 {
		t.Errorf("bob saw alice come online %d times, want 1", n)
	}
	if n := countEvents(bob, "user_offline", `"alice"`); n != 1 {
		t.Errorf("bob saw alice go offline %d times, want 1", n)
	}
}

// TestClusterNodeCrash kills a node with SIGKILL: its users go offline
// within the node TTL, and the stats stop counting its sockets.
func TestClusterNodeCrash(t *testing.T) {
	testenv.RequireNode(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	bob := connect(t, b.URL, "bob", nodeclient.Options{Transports: []string{"websocket"}})
	connect(t, a.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
	connect(t, a.URL, "carol", nodeclient.Options{Transports: []string{"polling"}})
	waitStats(t, b.URL, clusterStats{Connected: 3, Users: 3, Nodes: 2, Scope: "cluster"})

	killed := time.Now()
	a.kill9()
	ctx, cancel := context.WithTimeout(context.Background(), 4*nodeTTL+5*time.Second)
	defer cancel()
	for _, user := range []string{"alice", "carol"} {
		if _, err := bob.WaitFor(ctx, func(m nodeclient.Message) bool {
			return m.Event == "user_offline" && strings.Contains(string(m.Args[0]), `"`+user+`"`)
		}); err != nil {
			t.Fatalf("%s still online %v after node A was killed: %v", user, time.Since(killed), err)
		}
	}
	took := time.Since(killed)
	t.Logf("users of the killed node went offline after %v (NodeTTL %v)", took, nodeTTL)
	if took > 2*nodeTTL+time.Second {
		t.Errorf("took %v, want within about 4/3 of NodeTTL (%v)", took, nodeTTL)
	}
	waitStats(t, b.URL, clusterStats{Connected: 1, Users: 1, Nodes: 1, Scope: "cluster"})
}

// TestClusterRedisRestart kills redis-server under running nodes: they keep
// serving their own users, and once Redis is back cross-node delivery and
// presence resume without restarting anything.
func TestClusterRedisRestart(t *testing.T) {
	testenv.RequireNode(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	alice := connect(t, a.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
	bob := connect(t, b.URL, "bob", nodeclient.Options{Transports: []string{"polling"}})
	waitStats(t, a.URL, clusterStats{Connected: 2, Users: 2, Nodes: 2, Scope: "cluster"})

	r.Kill()
	// Local delivery goes on; the stats say they only cover this node.
	job := postJob(t, a.URL, "alice", 3, false)
	jobEvents(t, alice, job, 3, "job_completed")
	if st := stats(t, a.URL); st.Scope != "node" || !st.Partial || st.Connected != 1 {
		t.Errorf("stats during the outage = %+v, want this node only, partial", st)
	}
	// A client can still connect to a node while Redis is down.
	carol := connect(t, b.URL, "carol", nodeclient.Options{Transports: []string{"websocket"}})

	r.Restart(t)
	// Presence converges: every node re-registers its sockets.
	waitStats(t, a.URL, clusterStats{Connected: 3, Users: 3, Nodes: 2, Scope: "cluster"})
	// Cross-node delivery resumes: a job on A for bob and carol on B.
	deadline := time.Now().Add(15 * time.Second)
	for {
		job := postJob(t, a.URL, "bob", 1, false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := bob.WaitFor(ctx, func(m nodeclient.Message) bool {
			return m.Event == "job_completed" && strings.Contains(string(m.Args[0]), job)
		})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cross-node delivery did not resume after Redis restarted")
		}
	}
	job = postJob(t, a.URL, "carol", 2, false)
	jobEvents(t, carol, job, 2, "job_completed")
	// Node A's own subscription is not needed for what came before: it
	// may come back a moment later.
	waitLogs(t, []*demoNode{a}, []int{0}, "redis subscription re-established")
	// The outage is logged a few times, not thousands.
	if n := strings.Count(a.logs.String(), "redis"); n > 50 {
		t.Errorf("node A logged %d lines about redis during a short outage", n)
	}
}

// TestWorker runs examples/worker: a process with only a Redis client
// pushes a job's events to a user connected to two nodes.
func TestWorker(t *testing.T) {
	testenv.RequireNode(t)
	_, worker := binaries(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	tabA := connect(t, a.URL, "alice", nodeclient.Options{})
	tabB := connect(t, b.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
	for _, fail := range []bool{false, true} {
		args := []string{"-user", "alice", "-steps", "4", "-delay", "0", "-job", fmt.Sprintf("job_w%v", fail)}
		terminal := "job_completed"
		if fail {
			args = append(args, "-fail")
			terminal = "job_failed"
		}
		cmd := exec.Command(worker, args...)
		cmd.Env = append(os.Environ(), "REDIS_URL="+r.URL())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("worker: %v\n%s", err, out)
		}
		gotA := jobEvents(t, tabA, fmt.Sprintf("job_w%v", fail), 4, terminal)
		gotB := jobEvents(t, tabB, fmt.Sprintf("job_w%v", fail), 4, terminal)
		if strings.Join(gotA, "\n") != strings.Join(gotB, "\n") {
			t.Errorf("tabs got different JSON:\n%v\n%v", gotA, gotB)
		}
	}
	// Bad input: a clear error and exit code 1.
	for _, args := range [][]string{{}, {"-user", "a", "-steps", "0"}, {"-user", "a", "-bogus"}} {
		cmd := exec.Command(worker, args...)
		cmd.Env = append(os.Environ(), "REDIS_URL="+r.URL())
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "herald worker:") && !strings.Contains(string(out), "flag") {
			t.Errorf("worker %v = %v, %s; want a failure with a message", args, err, out)
		}
	}
	// Redis unreachable: the worker fails instead of pretending.
	cmd := exec.Command(worker, "-user", "alice", "-steps", "1", "-delay", "0")
	cmd.Env = append(os.Environ(), "REDIS_URL=redis://127.0.0.1:1/0")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "redis") {
		t.Errorf("worker with Redis down = %v, %s; want a failure", err, out)
	}
}

// TestClusterModeMismatch: a worker whose Redis mode differs from the
// nodes' fails on its first emit instead of printing "done", and a node
// started in another mode than the running one refuses to start; in the
// nodes' mode the worker's events arrive.
func TestClusterModeMismatch(t *testing.T) {
	testenv.RequireNode(t)
	server, worker := binaries(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL(), "HERALD_REDIS_MODE=streams")
	tab := connect(t, a.URL, "alice", nodeclient.Options{})

	for _, mode := range []string{"", "pubsub", "sharded"} {
		cmd := exec.Command(worker, "-user", "alice", "-steps", "1", "-delay", "0")
		cmd.Env = append(os.Environ(), "REDIS_URL="+r.URL(), "HERALD_REDIS_MODE="+mode)
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "done") || !strings.Contains(string(out), "redis mode mismatch") {
			t.Errorf("worker in mode %q beside streams nodes = %v, %s; want exit 1 with a mode mismatch", mode, err, out)
		}
	}
	cmd := exec.Command(worker, "-user", "alice", "-steps", "2", "-delay", "0", "-job", "job_streams")
	cmd.Env = append(os.Environ(), "REDIS_URL="+r.URL(), "HERALD_REDIS_MODE=streams")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("worker in the nodes' mode: %v\n%s", err, out)
	}
	jobEvents(t, tab, "job_streams", 2, "job_completed")

	b := exec.Command(server)
	b.Env = append(os.Environ(), "HERALD_ADDR=127.0.0.1:0", "HERALD_JWT_SECRET="+clusterSecret,
		"REDIS_URL="+r.URL(), "HERALD_REDIS_MODE=pubsub")
	out, err := b.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "redis mode mismatch") || !strings.Contains(string(out), "streams") {
		t.Errorf("pubsub node beside a streams node = %v, %s; want exit 1 naming the mismatch", err, out)
	}
}

// TestClusterRecovery: with streams and connection-state recovery, a client
// whose connection drops reconnects to another node within the window, gets
// its session back (same id, socket.recovered) and every event emitted
// meanwhile, in order, once.
func TestClusterRecovery(t *testing.T) {
	testenv.RequireNode(t)
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			r := redistest.Start(t)
			env := []string{"HERALD_REDIS_MODE=streams", "HERALD_RECOVERY=30s"}
			a := startNode(t, "A", r.URL(), env...)
			b := startNode(t, "B", r.URL(), env...)
			alice := connect(t, a.URL, "alice", nodeclient.Options{
				Transports: []string{transport}, Reconnection: true,
				Extra: map[string]any{"reconnectionDelay": 1000, "reconnectionDelayMax": 1000, "randomizationFactor": 0},
			})
			var first nodeclient.Message
			for _, m := range alice.History() {
				if m.Type == "connect" {
					first = m
					break
				}
			}
			// An event with an offset, so that the client has one to send back.
			jobEvents(t, alice, postJob(t, b.URL, "alice", 2, false), 2, "job_completed")

			if err := alice.Send(map[string]any{"cmd": "drop", "url": b.URL}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := alice.WaitType(ctx, "disconnect"); err != nil {
				t.Fatal(err)
			}
			// Emitted while alice is away, on both nodes.
			missedA := postJob(t, a.URL, "alice", 5, false)
			missedB := postJob(t, b.URL, "alice", 3, true)
			time.Sleep(300 * time.Millisecond) // let both jobs finish before she is back

			m, err := alice.WaitFor(ctx, func(m nodeclient.Message) bool {
				return m.Type == "connect" && m.ID == first.ID || m.Type == "connect" && !m.Recovered
			})
			if err != nil {
				t.Fatal(err)
			}
			if !m.Recovered || m.ID != first.ID {
				t.Fatalf("reconnected with %s; want the same socket id %s, recovered", m.Raw, first.ID)
			}
			jobEvents(t, alice, missedA, 5, "job_completed")
			jobEvents(t, alice, missedB, 3, "job_failed")
			// Live delivery goes on after the recovery.
			after := postJob(t, a.URL, "alice", 2, false)
			jobEvents(t, alice, after, 2, "job_completed")
			time.Sleep(300 * time.Millisecond)
			if n := countEvents(alice, "job_progress", missedA); n != 5 {
				t.Errorf("got %d progress events of the missed job, want exactly 5", n)
			}
		})
	}
}

// TestDevSecretSurvivesRestart: in dev mode the demo keeps its secret in
// HERALD_DEV_SECRET_FILE, so a token handed out before a restart still
// connects after it.
func TestDevSecretSurvivesRestart(t *testing.T) {
	testenv.RequireNode(t)
	file := filepath.Join(t.TempDir(), "dev-secret")
	env := []string{"HERALD_JWT_SECRET=", "REDIS_URL=", "HERALD_DEV_SECRET_FILE=" + file}
	first := startNode(t, "dev1", "", env...)
	resp, err := http.Get(first.URL + "/dev/token?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Token string `json:"token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if err != nil || body.Token == "" {
		t.Fatalf("GET /dev/token: %v, %+v", err, body)
	}
	if !strings.Contains(first.logs.String(), "new, kept in "+file) {
		t.Errorf("first start does not say it created %s:\n%s", file, first.logs.String())
	}
	first.stop(t)

	second := startNode(t, "dev2", "", env...)
	if !strings.Contains(second.logs.String(), "kept across restarts in "+file) {
		t.Errorf("second start does not say it reuses %s:\n%s", file, second.logs.String())
	}
	c := nodeclient.Start(t, nodeclient.Options{URL: second.URL, Auth: map[string]any{"token": body.Token}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := c.WaitType(ctx, "connect"); err != nil {
		t.Fatalf("the token from before the restart: %v", err)
	}
}

// TestClusterWorkerKilledJobStalls: a worker reporting a job with a lease
// is killed (SIGKILL) mid-job under two nodes: the user's tabs on both
// nodes get job_failed with code job_stalled within the lease, once; a tab
// opened later hears nothing more of the job. Before, the bar stayed at
// its last progress forever.
func TestClusterWorkerKilledJobStalls(t *testing.T) {
	testenv.RequireNode(t)
	_, worker := binaries(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	tabA := connect(t, a.URL, "alice", nodeclient.Options{})
	tabB := connect(t, b.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()

	cmd := exec.Command(worker, "-user", "alice", "-steps", "1000", "-delay", "100ms", "-lease", "1s", "-job", "job_k")
	cmd.Env = append(os.Environ(), "REDIS_URL="+r.URL())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if _, err := tabA.WaitEvent(ctx, "job_progress"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	stalled := func(c *nodeclient.Client) int {
		n := 0
		for _, m := range c.Events() {
			if m.Event == "job_failed" && len(m.Args) > 0 && strings.Contains(string(m.Args[0]), `"code":"job_stalled"`) {
				n++
			}
		}
		return n
	}
	for _, tab := range []*nodeclient.Client{tabA, tabB} {
		if _, err := tab.WaitEvent(ctx, "job_failed"); err != nil {
			t.Fatalf("no job_failed after the worker died: %v", err)
		}
	}
	t.Logf("job_failed reached both tabs %v after the SIGKILL (lease 1s, checked every 1s)", time.Since(killed).Round(10*time.Millisecond))
	// Both nodes check the leases every second: a few more checks pass.
	time.Sleep(2500 * time.Millisecond)
	if na, nb := stalled(tabA), stalled(tabB); na != 1 || nb != 1 {
		t.Errorf("job_stalled failures: %d on A's tab, %d on B's, want 1 each", na, nb)
	}
	later := connect(t, b.URL, "alice", nodeclient.Options{})
	time.Sleep(500 * time.Millisecond)
	for _, m := range later.Events() {
		if strings.Contains(string(m.Raw), "job_k") {
			t.Errorf("a tab opened after the job failed got %s", m.Raw)
		}
	}
}

// TestClusterJobState: two nodes share the job state in Redis with a worker
// (an Emitter). A job completed while its user was offline is delivered to
// the user's next tab, on any node, once; a job still running is shown to
// every tab that connects, on either node, at its latest progress.
func TestClusterJobState(t *testing.T) {
	testenv.RequireNode(t)
	_, worker := binaries(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	runWorker := func(args ...string) *exec.Cmd {
		cmd := exec.Command(worker, args...)
		cmd.Env = append(os.Environ(), "REDIS_URL="+r.URL())
		return cmd
	}
	// alice is offline: the result waits for her.
	if out, err := runWorker("-user", "alice", "-steps", "1", "-delay", "0", "-job", "done1").CombinedOutput(); err != nil {
		t.Fatalf("worker: %v\n%s", err, out)
	}
	slow := runWorker("-user", "alice", "-steps", "10", "-delay", "700ms", "-job", "run1", "-lease", "1m")
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Process.Kill(); _ = slow.Wait() })
	// Wait until run1 has a state, through the demo's API.
	var progress int
	eventually(t, "run1 reported", func() bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.URL+"/api/v1/jobs/states", nil)
		req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				Jobs []struct {
					Key      string `json:"key"`
					Progress int    `json:"progress"`
				} `json:"jobs"`
			} `json:"data"`
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Data.Jobs) != 1 || body.Data.Jobs[0].Key != "job:run1" {
			return false
		}
		progress = body.Data.Jobs[0].Progress
		return true
	})

	jobEvents := func(c *nodeclient.Client) []string {
		var out []string
		for _, m := range c.Events() {
			if strings.HasPrefix(m.Event, "job_") && len(m.Args) > 0 {
				var p struct {
					JobID string `json:"jobId"`
				}
				_ = json.Unmarshal(m.Args[0], &p)
				out = append(out, m.Event+" "+p.JobID)
			}
		}
		return out
	}
	first := connect(t, b.URL, "alice", nodeclient.Options{})
	if _, err := first.WaitEvent(ctx, "job_completed"); err != nil {
		t.Fatalf("the result of a job that ended while alice was offline: %v", err)
	}
	m, err := first.WaitEvent(ctx, "job_progress")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		JobID    string `json:"jobId"`
		Progress int    `json:"progress"`
	}
	if json.Unmarshal(m.Args[0], &p) != nil || p.JobID != "run1" || p.Progress < progress {
		t.Errorf("first job_progress on connect = %s, want run1 at %d%% or more", m.Args[0], progress)
	}
	first.Close()
	second := connect(t, a.URL, "alice", nodeclient.Options{})
	if _, err := second.WaitEvent(ctx, "job_progress"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for _, ev := range jobEvents(second) {
		if ev == "job_completed done1" {
			t.Errorf("a second tab, after the first got it, got job_completed done1 again: %v", jobEvents(second))
		}
	}
}

// eventually polls cond every 50 ms for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterNodeKilledJobStalls: the node running a job (the demo's
// simulated jobs run in the node that accepted them) is killed with SIGKILL:
// the job's lease ends and the surviving node fails it for the user's tab
// on it, with code job_stalled, once.
func TestClusterNodeKilledJobStalls(t *testing.T) {
	testenv.RequireNode(t)
	r := redistest.Start(t)
	a := startNode(t, "A", r.URL())
	b := startNode(t, "B", r.URL())
	tab := connect(t, b.URL, "alice", nodeclient.Options{Transports: []string{"websocket"}})
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	// Ten steps a second apart: its lease is 3 × 1 s + 2 s.
	body := `{"steps":10,"delayMs":1000}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.URL+"/api/v1/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/jobs = %s", resp.Status)
	}
	if _, err := tab.WaitEvent(ctx, "job_progress"); err != nil {
		t.Fatal(err)
	}
	a.kill9()
	killed := time.Now()
	m, err := tab.WaitEvent(ctx, "job_failed")
	if err != nil {
		t.Fatalf("no job_failed after the node running the job died: %v", err)
	}
	if !strings.Contains(string(m.Args[0]), `"code":"job_stalled"`) {
		t.Errorf("job_failed = %s, want code job_stalled", m.Args[0])
	}
	t.Logf("job_failed %v after the SIGKILL (lease 5 s)", time.Since(killed).Round(10*time.Millisecond))
	time.Sleep(2500 * time.Millisecond)
	n := 0
	for _, m := range tab.Events() {
		if m.Event == "job_failed" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d job_failed, want 1", n)
	}
}
