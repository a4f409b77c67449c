package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/internal/testenv"
	"github.com/herald-rt/herald/socketio"
)

// The chaos test: three demo nodes on one redis-server, socket.io-client
// tabs that fail over between the nodes as behind a load balancer, and a
// worker (an Emitter in this process, with its own Redis client) that runs
// jobs for every user the whole time. While it runs, the test drops two
// tabs' connections, kills a node with SIGKILL and starts it again, kills
// Redis and starts it again, and stops a node with SIGSTOP for longer than
// the client heartbeat and the node TTL.
//
// It then checks, for every tab, that every job event the worker emitted
// while the tab was connected to a live node arrived, and that no event
// arrived twice; and that presence converged on every node to exactly the
// tabs and users that are connected.

const (
	chaosUsers       = 4
	chaosTabsPerUser = 2
	// chaosHeartbeat is the demo's ping interval and ping timeout: a client
	// gives up on a silent node after about twice this.
	chaosHeartbeat = time.Second
	// chaosSettle is how long after a tab's connect an emit must start to
	// count: the client sees "connect" about when the server joins it to
	// its user's room.
	chaosSettle = 500 * time.Millisecond
	// chaosDeliverBy is how long after an emit the tab must have stayed
	// connected to a live node for the event to count: the time to deliver
	// it, generously (a stream reader that lost Redis retries after up to 2s).
	chaosDeliverBy = 3 * time.Second
	// chaosRedisHandoff is how long before a SIGKILL of Redis a publish it
	// answered may still be lost in pub/sub mode (see runChaos).
	chaosRedisHandoff = 250 * time.Millisecond
)

func TestChaos(t *testing.T) {
	testenv.RequireNode(t)
	for _, mode := range []string{"streams", "pubsub"} {
		t.Run(mode, func(t *testing.T) { runChaos(t, adapter.RedisMode(mode)) })
	}
}

// emission is one event the worker emitted, with when the call started and
// when it returned.
type emission struct {
	user, event, key string // key: job id plus, for progress, the percentage
	t0, t1           time.Time
}

// outage is a time span during which events to some tabs need not arrive:
// a node down (url set) or, in pub/sub mode, Redis and the resubscription
// after it (url empty: every node).
type outage struct {
	url      string
	from, to time.Time
}

// chaosLog is what the test and the worker record while faults happen.
type chaosLog struct {
	mu       sync.Mutex
	emitted  []emission
	failed   int // emits that returned an error: nothing is promised for them
	outages  []outage
	timeline []string
	start    time.Time
}

func (l *chaosLog) note(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timeline = append(l.timeline, fmt.Sprintf("%6.2fs ", time.Since(l.start).Seconds())+fmt.Sprintf(format, args...))
}

func (l *chaosLog) down(url string, from, to time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outages = append(l.outages, outage{url: url, from: from, to: to})
}

func runChaos(t *testing.T, mode adapter.RedisMode) {
	var r *redis.Client
	var rs *redistest.Server
	// Job state off: a tab that reconnects would be told the latest state
	// of its jobs again, which this test would count as duplicates (the
	// job state has its own tests).
	env := []string{"HERALD_REDIS_MODE=" + string(mode), "HERALD_HANDSHAKE_RATE=-1", "HERALD_JOB_STATE=off",
		"HERALD_PING_INTERVAL=" + chaosHeartbeat.String(), "HERALD_PING_TIMEOUT=" + chaosHeartbeat.String()}
	if mode == adapter.RedisStreams {
		// Streams keep what Redis acknowledged across a crash when Redis
		// writes it to disk before answering; recovery replays a dropped
		// tab's missed events.
		rs = redistest.Start(t, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
		env = append(env, "HERALD_RECOVERY=30s")
	} else {
		rs = redistest.Start(t)
	}
	r = rs.Client(t)
	log := &chaosLog{}

	nodes := []*demoNode{startNode(t, "A", rs.URL(), env...), startNode(t, "B", rs.URL(), env...), startNode(t, "C", rs.URL(), env...)}
	urls := []string{nodes[0].URL, nodes[1].URL, nodes[2].URL}
	transports := [][]string{{"websocket"}, {"polling"}, nil} // nil: polling, then the upgrade
	var tabs []*chaosTab
	for u := range chaosUsers {
		for i := range chaosTabsPerUser {
			n := len(tabs)
			user := fmt.Sprintf("u%d", u)
			tab := &chaosTab{user: user, c: connect(t, urls[n%3], user, nodeclient.Options{
				Transports: transports[(n/3+n)%3], Reconnection: true, Failover: urls,
				Timeout: 2 * time.Second,
				Extra:   map[string]any{"reconnectionDelay": 100, "reconnectionDelayMax": 500, "randomizationFactor": 0.5},
			})}
			tab.name = fmt.Sprintf("%s/tab%d", user, i)
			tabs = append(tabs, tab)
		}
	}
	all := clusterStats{Connected: len(tabs), Users: chaosUsers, Nodes: 3, Scope: "cluster"}
	waitStats(t, urls[0], all)

	worker := startChaosWorker(t, r, mode, log)
	log.start = worker.start
	step := func(d time.Duration) { time.Sleep(d) }

	step(2 * time.Second)
	// A network failure on two tabs: with recovery they get their session
	// back on the next node, and the events they missed.
	for _, tab := range tabs[:2] {
		if err := tab.c.Send(map[string]any{"cmd": "drop"}); err != nil {
			t.Fatal(err)
		}
	}
	log.note("dropped %s and %s", tabs[0].name, tabs[1].name)

	step(2 * time.Second)
	killed := time.Now()
	nodes[2].kill9()
	log.note("killed node C (SIGKILL)")
	step(3 * time.Second)
	u, err := url.Parse(urls[2])
	if err != nil {
		t.Fatal(err)
	}
	nodes[2] = startNode(t, "C2", rs.URL(), append(env, "HERALD_ADDR="+u.Host)...)
	log.down(urls[2], killed, time.Now())
	log.note("node C started again on %s", u.Host)

	step(3 * time.Second)
	redisDown := time.Now()
	rs.Kill()
	log.note("killed redis-server (SIGKILL)")
	step(2 * time.Second)
	marks := make([]int, len(nodes))
	for i, n := range nodes {
		marks[i] = len(n.logs.String())
	}
	rs.Restart(t)
	log.note("redis-server started again")
	if mode == adapter.RedisPubSub {
		// A message published before a node has subscribed again is not
		// for that node (pub/sub keeps nothing): the outage lasts until
		// every node says its subscription is back.
		// And it starts a little before the kill: Redis answers a PUBLISH
		// once it has queued the message for the subscribers, and under
		// this load their connections lag the publisher's by some
		// milliseconds; SIGKILL loses what is still queued (docs/cluster.md,
		// Redis outages: a crash of Redis loses what it had not yet
		// handed to the nodes). A CI run lost one event answered at the
		// instant of the kill.
		back := waitLogs(t, nodes, marks, "redis subscription re-established")
		log.down("", redisDown.Add(-chaosRedisHandoff), back)
		log.note("every node subscribed again")
	}

	step(3 * time.Second)
	paused := time.Now()
	if err := nodes[1].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nodes[1].cmd.Process.Signal(syscall.SIGCONT) }) // before its SIGTERM
	log.note("stopped node B (SIGSTOP)")
	// The other nodes expire B after NodeTTL and count its tabs again once
	// they have given up on B and reconnected to them.
	waitStats(t, urls[0], clusterStats{Connected: len(tabs), Users: chaosUsers, Nodes: 2, Scope: "cluster"})
	log.note("node B expired, its tabs counted on the other nodes")
	step(time.Until(paused.Add(4*chaosHeartbeat + time.Second)))
	if err := nodes[1].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	log.down(urls[1], paused, resumed)
	log.note("node B continues (SIGCONT)")

	// Presence converges: every node counts exactly the connected tabs,
	// node B's old sockets no longer, its tabs' new ones on other nodes.
	for _, u := range urls {
		waitStats(t, u, all)
	}
	for _, u := range urls {
		if got := onlineUsers(t, u); !slices.Equal(got, []string{"u0", "u1", "u2", "u3"}) {
			t.Errorf("online users on %s = %v", u, got)
		}
	}
	log.note("presence converged on every node, %v after SIGCONT", time.Since(resumed).Round(time.Millisecond))

	step(3 * time.Second)
	worker.stop()
	log.note("worker stopped")
	time.Sleep(chaosDeliverBy) // late events, and duplicates, would have arrived by now
	for _, u := range urls {
		waitStats(t, u, all)
	}
	checkChaos(t, log, tabs)
}

// chaosTab is one socket.io-client of the chaos test.
type chaosTab struct {
	name, user string
	c          *nodeclient.Client
}

// chaosWorker runs jobs for every user: two progress events and a terminal
// event each, one emit every few milliseconds.
type chaosWorker struct {
	start time.Time
	stop  func()
}

func startChaosWorker(t *testing.T, r *redis.Client, mode adapter.RedisMode, log *chaosLog) *chaosWorker {
	t.Helper()
	broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: r, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	em, err := socketio.NewEmitter(socketio.EmitterConfig{Broker: broker})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w := &chaosWorker{start: time.Now()}
	emit := func(user string, ev events.Event, key string, payload any) {
		t0 := time.Now()
		ectx, ecancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err := em.EmitToUser(ectx, user, ev, payload)
		ecancel()
		log.mu.Lock()
		defer log.mu.Unlock()
		if err != nil {
			log.failed++
			return
		}
		log.emitted = append(log.emitted, emission{user: user, event: ev.Name(), key: key, t0: t0, t1: time.Now()})
	}
	go func() {
		defer close(done)
		for n := 0; ctx.Err() == nil; n++ {
			user := fmt.Sprintf("u%d", n%chaosUsers)
			job := fmt.Sprintf("job_%s_%d", user, n)
			for _, p := range []int{50, 100} {
				emit(user, events.JobProgress, fmt.Sprintf("%s@%d", job, p), events.JobProgressPayload{JobID: job, Progress: p})
				time.Sleep(3 * time.Millisecond)
			}
			if n%2 == 0 {
				emit(user, events.JobCompleted, job, events.JobCompletedPayload{JobID: job})
			} else {
				emit(user, events.JobFailed, job, events.JobFailedPayload{JobID: job, Error: "chaos"})
			}
			time.Sleep(3 * time.Millisecond)
		}
	}()
	w.stop = func() {
		cancel()
		<-done
		if err := broker.Close(context.Background()); err != nil {
			t.Logf("worker broker close: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			w.stop()
		}
	})
	return w
}

// waitLogs waits until each node's log, after its mark, holds line, and
// returns when the last one did.
func waitLogs(t *testing.T, nodes []*demoNode, marks []int, line string) time.Time {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := true
		for i, n := range nodes {
			if !strings.Contains(n.logs.String()[marks[i]:], line) {
				all = false
			}
		}
		if all {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every node logged %q", line)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func onlineUsers(t *testing.T, nodeURL string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, nodeURL+"/api/v1/users/online", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token(t, "observer"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Users []string `json:"users"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out.Data.Users)
	return out.Data.Users
}

// span is a time a tab was connected, to one node or, after a recovered
// reconnection, to several in turn.
type span struct {
	from, to time.Time
	urls     []string
}

// spans reads a tab's connections from its connect and disconnect
// messages (the client's clock). A recovered connect continues the span
// before it: the session, and the events meanwhile, were kept.
func spans(history []nodeclient.Message, end time.Time) []span {
	var out []span
	open := false
	for _, m := range history {
		switch {
		case m.Type == "connect" && m.Nsp == "":
			if m.Recovered && len(out) > 0 && !open {
				last := &out[len(out)-1]
				last.to, last.urls = time.Time{}, append(last.urls, m.URL)
			} else {
				out = append(out, span{from: m.At, urls: []string{m.URL}})
			}
			open = true
		case m.Type == "disconnect" && m.Nsp == "" && open:
			out[len(out)-1].to = m.At
			open = false
		}
	}
	if open {
		out[len(out)-1].to = end
	}
	return out
}

// required tells whether e had to reach a tab with these spans: it started
// chaosSettle after a connect, and the tab stayed connected chaosDeliverBy
// after it, to nodes that were live all that time.
func required(e emission, sp []span, outages []outage) bool {
	for _, s := range sp {
		if e.t0.Before(s.from.Add(chaosSettle)) || s.to.Before(e.t1.Add(chaosDeliverBy)) {
			continue
		}
		live := true
		for _, o := range outages {
			switch {
			case o.url == "":
				// Redis: what was emitted during the outage is not promised.
				if o.from.Before(e.t1) && e.t0.Before(o.to) {
					return false
				}
			case slices.Contains(s.urls, o.url):
				// A node of this span was down between the connect and
				// the delivery deadline.
				if o.from.Before(e.t1.Add(chaosDeliverBy)) && s.from.Before(o.to) {
					live = false
				}
			}
		}
		if live {
			return true
		}
	}
	return false
}

func checkChaos(t *testing.T, log *chaosLog, tabs []*chaosTab) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	t.Logf("timeline:\n%s", strings.Join(log.timeline, "\n"))
	end := time.Now()
	var need, got, extra, lost, dups, reconnects, recovered int
	for _, tab := range tabs {
		history := tab.c.History()
		received := map[string]int{} // event name + key -> count
		for _, m := range history {
			switch {
			case m.Type == "connect" && m.Recovered:
				recovered++
			case m.Type == "reconnect":
				reconnects++
			}
			if m.Type != "event" || !strings.HasPrefix(m.Event, "job_") || len(m.Args) == 0 {
				continue
			}
			var p struct {
				JobID    string `json:"jobId"`
				Progress int    `json:"progress"`
			}
			if err := json.Unmarshal(m.Args[0], &p); err != nil || !strings.HasPrefix(p.JobID, "job_"+tab.user+"_") {
				t.Errorf("%s got %s %s, not one of its user's jobs", tab.name, m.Event, m.Args[0])
				continue
			}
			key := p.JobID
			if m.Event == events.JobProgress.Name() {
				key = fmt.Sprintf("%s@%d", p.JobID, p.Progress)
			}
			received[m.Event+" "+key]++
		}
		for k, n := range received {
			if n > 1 {
				dups++
				t.Errorf("%s got %s %d times", tab.name, k, n)
			}
		}
		sp := spans(history, end)
		var missing []string
		for _, e := range log.emitted {
			if e.user != tab.user {
				continue
			}
			n := received[e.event+" "+e.key]
			if !required(e, sp, log.outages) {
				extra += min(n, 1)
				continue
			}
			need++
			if n == 0 {
				lost++
				missing = append(missing, fmt.Sprintf("%s %s (emitted at %.3fs)", e.event, e.key, e.t0.Sub(log.start).Seconds()))
				continue
			}
			got++
		}
		if len(missing) > 0 {
			t.Errorf("%s lost %d events it had to get, e.g. %v; its connections: %v", tab.name, len(missing), missing[:min(5, len(missing))], describeSpans(sp, log.start))
		}
	}
	t.Logf("emitted %d events (%d emits failed while Redis was down); %d tab deliveries required, %d arrived, %d lost, %d duplicates; %d more arrived outside the required windows; %d reconnections, %d recovered",
		len(log.emitted), log.failed, need, got, lost, dups, extra, reconnects, recovered)
	// Each event goes to chaosTabsPerUser tabs; if the windows above
	// excused most of them, the test would prove little.
	if need < len(log.emitted) {
		t.Errorf("only %d tab deliveries were required for %d events to %d tabs each: the faults left too little to check", need, len(log.emitted), chaosTabsPerUser)
	}
}

func describeSpans(sp []span, start time.Time) string {
	var b strings.Builder
	for _, s := range sp {
		fmt.Fprintf(&b, "[%.2fs..%.2fs %v] ", s.from.Sub(start).Seconds(), s.to.Sub(start).Seconds(), s.urls)
	}
	return b.String()
}
