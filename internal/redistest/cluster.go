package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/testenv"
)

// ClusterReadyTimeout bounds how long StartCluster and Cluster.WaitOK wait
// for every node to report a healthy cluster.
const ClusterReadyTimeout = 20 * time.Second

const (
	// ClusterNodeTimeout is the --cluster-node-timeout of every node: a node
	// that does not answer for this long is suspected (PFAIL), then marked
	// failed once a majority of the masters agree.
	ClusterNodeTimeout = 2 * time.Second

	// clusterSlots is the number of hash slots of Redis Cluster.
	clusterSlots = 16384
	// clusterBusOffset: a node's cluster bus listens on its port + 10000.
	clusterBusOffset = 10000
	// maxClusterPort is the highest port whose bus port exists.
	maxClusterPort = 65535 - clusterBusOffset
	// minClusterPort is the lowest port of the fallback random choice.
	minClusterPort = 16384
	// clusterPortAttempts is how many ports freeClusterPort tries.
	clusterPortAttempts = 100
	// clusterPollInterval is the pause between two checks of the cluster.
	clusterPollInterval = 50 * time.Millisecond
	// clusterCmdTimeout bounds one command of the set-up and the checks.
	clusterCmdTimeout = 2 * time.Second
	// clusterLogLines is how many lines of each node's log a failure shows.
	clusterLogLines = 15
)

// Cluster is a Redis Cluster started by StartCluster: masters only, no
// replicas, every node a *Server on 127.0.0.1.
//
// Node i serves the i-th of equal, contiguous slot ranges (with 3 masters:
// 0-5460, 5461-10922, 10923-16383).
//
// Killing a node (Nodes()[i].Kill) takes its slots down: the other nodes
// mark it failed after about ClusterNodeTimeout and report cluster_state:fail
// (there is no replica to fail over to). Restart brings it back on the same
// port with the same node id and slots, read from the nodes.conf in its
// directory, but without data; the cluster is healthy again after a few
// seconds (a master that was marked failed is forgiven 2 × node timeout
// after it was marked; a restarted master waits 2 s before it serves): call
// WaitOK before using it.
//
// Methods are safe for concurrent use.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts masters (at least 3) redis-server processes in
// cluster mode, each with Start and opts, assigns every node its share of
// the 16384 slots, joins them with CLUSTER MEET, and returns once every node
// reports cluster_state:ok, knows every node and agrees on who serves every
// slot (see WaitOK), at most ClusterReadyTimeout later. That takes about
// 2 s: Redis does not let a freshly started master report ok sooner.
//
// It skips or fails t when redis-server is missing, like Start. The nodes
// are killed by t.Cleanup; each node's directory, which holds its log and
// nodes.conf, is a t.TempDir(). Each node listens on a free 127.0.0.1 port P
// no higher than 55535, and its cluster bus on P+10000.
//
// opts apply to every node; WithArgs can override the cluster arguments
// StartCluster adds (--cluster-enabled yes, --cluster-config-file
// <dir>/nodes.conf, --cluster-node-timeout 2000).
func StartCluster(t testing.TB, masters int, opts ...Option) *Cluster {
	t.Helper()
	if masters < 3 {
		t.Fatalf("redistest: StartCluster(%d): Redis Cluster needs at least 3 masters", masters)
		return nil
	}
	nodeOpts := append([]Option{clusterNode()}, opts...)
	c := &Cluster{}
	for range masters {
		c.nodes = append(c.nodes, Start(t, nodeOpts...))
	}
	if err := c.form(); err != nil {
		t.Fatalf("redistest: start cluster: %v\n%s", err, c.logs())
		return nil
	}
	c.WaitOK(t)
	return c
}

// clusterNode is the Option that makes Start run a cluster node.
func clusterNode() Option {
	return func(c *config) {
		c.dirArgs = func(dir string) []string {
			return []string{
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", strconv.Itoa(int(ClusterNodeTimeout / time.Millisecond)),
			}
		}
		c.pickPort = freeClusterPort
	}
}

// Addrs returns the nodes' "127.0.0.1:port", in the order of Nodes.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, s := range c.nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Nodes returns the nodes; node i serves the i-th slot range. The slice is
// a copy; the servers are the cluster's own, so Kill, Restart, Pause on them
// act on the cluster.
func (c *Cluster) Nodes() []*Server {
	return slices.Clone(c.nodes)
}

// Client returns a go-redis cluster client seeded with every node's
// address, closed by t.Cleanup (before the nodes are killed when t is the
// test given to StartCluster or one of its subtests).
func (c *Cluster) Client(t testing.TB) *redis.ClusterClient {
	t.Helper()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() {
		if err := cc.Close(); err != nil {
			t.Errorf("redistest: close cluster client: %v", err)
		}
	})
	return cc
}

// WaitOK waits until the cluster is healthy, at most ClusterReadyTimeout,
// and fails t with every node's state and log otherwise. Healthy means that
// every node reports cluster_state:ok, all 16384 slots assigned and ok and
// all the nodes known, and that CLUSTER SLOTS answers the same on every
// node: every slot served by one of the cluster's addresses. A killed node
// never becomes healthy: restart it first.
func (c *Cluster) WaitOK(t testing.TB) {
	t.Helper()
	if err := c.waitOK(ClusterReadyTimeout); err != nil {
		t.Fatalf("redistest: cluster not ok after %v: %v\n%s", ClusterReadyTimeout, err, c.logs())
	}
}

func (c *Cluster) waitOK(timeout time.Duration) error {
	clients := c.nodeClients()
	defer closeAll(clients)
	deadline := time.Now().Add(timeout)
	for {
		err := c.check(clients)
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(clusterPollInterval)
	}
}

// form assigns the slots and joins the nodes, much as redis-cli --cluster
// create does for masters: a distinct config epoch for each node (so they
// need not resolve a collision) and its slot range; then, unlike redis-cli,
// a CLUSTER MEET for every pair of nodes rather than from the first node to
// the others only, so that no node has to learn of another through gossip,
// which takes up to two more seconds.
func (c *Cluster) form() error {
	clients := c.nodeClients()
	defer closeAll(clients)
	for i, cl := range clients {
		ctx, cancel := context.WithTimeout(context.Background(), clusterCmdTimeout)
		err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err()
		if err == nil {
			lo, hi := slotRange(i, len(clients))
			err = cl.ClusterAddSlotsRange(ctx, lo, hi).Err()
		}
		cancel()
		if err != nil {
			return fmt.Errorf("node %s: %w", c.nodes[i].Addr(), err)
		}
	}
	for i := range c.nodes {
		for _, s := range c.nodes[i+1:] {
			ctx, cancel := context.WithTimeout(context.Background(), clusterCmdTimeout)
			err := clients[i].ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(s.Port())).Err()
			cancel()
			if err != nil {
				return fmt.Errorf("CLUSTER MEET %s from %s: %w", s.Addr(), c.nodes[i].Addr(), err)
			}
		}
	}
	return nil
}

// slotRange returns the first and last slot of node i of n, split as
// redis-cli --cluster create does: node i's last slot is
// round((i+1) × 16384/n − 1), the last node's is 16383.
func slotRange(i, n int) (lo, hi int) {
	last := func(i int) int {
		if i == n-1 {
			return clusterSlots - 1
		}
		// round(x/n) = (2x+n) / 2n for x >= 0.
		return (2*((i+1)*clusterSlots-n) + n) / (2 * n)
	}
	if i > 0 {
		lo = last(i-1) + 1
	}
	return lo, last(i)
}

// check returns nil when the cluster is healthy (see WaitOK), or what is
// not yet.
func (c *Cluster) check(clients []*redis.Client) error {
	var want string
	for i, cl := range clients {
		addr := c.nodes[i].Addr()
		ctx, cancel := context.WithTimeout(context.Background(), clusterCmdTimeout)
		info, err := cl.ClusterInfo(ctx).Result()
		var slots []redis.ClusterSlot
		if err == nil {
			//lint:ignore SA1019 CLUSTER SLOTS gives the slot ranges compared here; Redis 7 serves it
			slots, err = cl.ClusterSlots(ctx).Result()
		}
		cancel()
		if err != nil {
			return fmt.Errorf("node %s: %w", addr, err)
		}
		if err := c.checkInfo(info); err != nil {
			return fmt.Errorf("node %s: %w", addr, err)
		}
		got, err := c.slotMap(slots)
		if err != nil {
			return fmt.Errorf("node %s: CLUSTER SLOTS: %w", addr, err)
		}
		if i == 0 {
			want = got
		} else if got != want {
			return fmt.Errorf("CLUSTER SLOTS differ: %s says %s, %s says %s", c.nodes[0].Addr(), want, addr, got)
		}
	}
	return nil
}

// checkInfo checks a CLUSTER INFO reply.
func (c *Cluster) checkInfo(info string) error {
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": strconv.Itoa(clusterSlots),
		"cluster_slots_ok":       strconv.Itoa(clusterSlots),
		"cluster_known_nodes":    strconv.Itoa(len(c.nodes)),
	}
	var bad []string
	for _, k := range []string{"cluster_state", "cluster_slots_assigned", "cluster_slots_ok", "cluster_known_nodes"} {
		if fields[k] != want[k] {
			bad = append(bad, fmt.Sprintf("%s:%s (want %s)", k, fields[k], want[k]))
		}
	}
	if bad != nil {
		return errors.New(strings.Join(bad, " "))
	}
	return nil
}

// slotMap renders a CLUSTER SLOTS reply as "lo-hi=addr ..." sorted by slot,
// after checking that it covers every slot exactly once and that every
// range is served by one of the cluster's nodes.
func (c *Cluster) slotMap(slots []redis.ClusterSlot) (string, error) {
	addrs := c.Addrs()
	slots = slices.Clone(slots)
	slices.SortFunc(slots, func(a, b redis.ClusterSlot) int { return a.Start - b.Start })
	var b strings.Builder
	next := 0
	for _, s := range slots {
		if s.Start != next || s.End < s.Start {
			return "", fmt.Errorf("slots %d-%d follow slot %d", s.Start, s.End, next-1)
		}
		if len(s.Nodes) == 0 || !slices.Contains(addrs, s.Nodes[0].Addr) {
			return "", fmt.Errorf("slots %d-%d served by %v, not by a node of the cluster", s.Start, s.End, s.Nodes)
		}
		fmt.Fprintf(&b, "%d-%d=%s ", s.Start, s.End, s.Nodes[0].Addr)
		next = s.End + 1
	}
	if next != clusterSlots {
		return "", fmt.Errorf("slots %d-%d not served", next, clusterSlots-1)
	}
	return strings.TrimSpace(b.String()), nil
}

// nodeClients returns a client for each node, for the set-up and checks:
// one connection each, no retries (the caller polls).
func (c *Cluster) nodeClients() []*redis.Client {
	clients := make([]*redis.Client, len(c.nodes))
	for i, s := range c.nodes {
		clients[i] = redis.NewClient(&redis.Options{
			Addr:         s.Addr(),
			DialTimeout:  probeTimeout,
			ReadTimeout:  clusterCmdTimeout,
			WriteTimeout: clusterCmdTimeout,
			MaxRetries:   -1,
			PoolSize:     1,
		})
	}
	return clients
}

func closeAll(clients []*redis.Client) {
	for _, cl := range clients {
		_ = cl.Close()
	}
}

// logs returns the end of every node's log, for failure messages.
func (c *Cluster) logs() string { return tailLogs(c.nodes) }

// tailLogs returns the last clusterLogLines lines of each server's log,
// for failure messages.
func tailLogs(servers []*Server) string {
	var b strings.Builder
	for _, s := range servers {
		lines := strings.Split(strings.TrimRight(s.Log(), "\n"), "\n")
		if len(lines) > clusterLogLines {
			lines = lines[len(lines)-clusterLogLines:]
		}
		fmt.Fprintf(&b, "--- %s (%s), last lines of its log:\n%s\n", s.Addr(), s.Dir(), strings.Join(lines, "\n"))
	}
	return b.String()
}

// freeClusterPort returns a 127.0.0.1 port P such that P and its bus port
// P+10000 were free a moment ago, P no higher than 55535. It takes the
// kernel's choice when that fits, and falls back to random ports when the
// kernel's ephemeral range lies above 55535.
func freeClusterPort() (int, error) {
	for attempt := range clusterPortAttempts {
		var port int
		if attempt < clusterPortAttempts/2 {
			p, err := testenv.FreePort()
			if err != nil {
				return 0, err
			}
			if p > maxClusterPort {
				continue
			}
			port = p
		} else {
			port = minClusterPort + rand.IntN(maxClusterPort-minClusterPort+1)
			if !portFree(port) {
				continue
			}
		}
		if portFree(port + clusterBusOffset) {
			return port, nil
		}
	}
	return 0, fmt.Errorf("redistest: no free port P <= %d with P+%d free after %d attempts", maxClusterPort, clusterBusOffset, clusterPortAttempts)
}

// portFree reports whether 127.0.0.1:port can be listened on.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	return l.Close() == nil
}
