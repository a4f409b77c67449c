package redistest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/internal/testenv"
)

// keyOn returns a key whose slot node serves, according to cc.
func keyOn(t *testing.T, cc *redis.ClusterClient, node *redistest.Server, prefix string) string {
	t.Helper()
	ctx := context.Background()
	for i := range 1000 {
		key := prefix + strconv.Itoa(i)
		master, err := cc.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if master.Options().Addr == node.Addr() {
			return key
		}
	}
	t.Fatalf("no key %s0..999 lands on %s", prefix, node.Addr())
	return ""
}

// clusterField returns a field of CLUSTER INFO on c.
func clusterField(t *testing.T, c *redis.Client, field string) string {
	t.Helper()
	info, err := c.ClusterInfo(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	t.Fatalf("no %s in CLUSTER INFO:\n%s", field, info)
	return ""
}

// receive waits for the next message on ps, at most 5 s.
func receive(t *testing.T, ps *redis.PubSub) *redis.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		if m, ok := msg.(*redis.Message); ok {
			return m
		}
	}
}

// subscribed waits until ps's subscription is confirmed.
func subscribed(t *testing.T, ps *redis.PubSub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg, err := ps.Receive(ctx)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if _, ok := msg.(*redis.Subscription); !ok {
		t.Fatalf("subscribe: got %T %v, want a confirmation", msg, msg)
	}
}

func closePubSub(t *testing.T, ps *redis.PubSub) {
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Errorf("close pubsub: %v", err)
		}
	})
}

func TestClusterSetGet(t *testing.T) {
	t.Parallel()
	start := time.Now()
	c := redistest.StartCluster(t, 3)
	t.Logf("cluster of 3 masters ready in %v", time.Since(start))

	addrs, nodes := c.Addrs(), c.Nodes()
	if len(addrs) != 3 || len(nodes) != 3 {
		t.Fatalf("Addrs = %v, %d Nodes; want 3 of each", addrs, len(nodes))
	}
	seen := map[string]bool{}
	for i, addr := range addrs {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if host != "127.0.0.1" || port == "6379" || seen[addr] || nodes[i].Addr() != addr {
			t.Errorf("node %d: Addr %s, Nodes()[%d].Addr() %s; want distinct 127.0.0.1 addresses other than :6379", i, addr, i, nodes[i].Addr())
		}
		if nodes[i].Port() > 55535 {
			t.Errorf("node %d: port %d has no cluster bus port (port+10000)", i, nodes[i].Port())
		}
		seen[addr] = true
	}

	ctx := context.Background()
	nodeClients := make([]*redis.Client, len(nodes))
	for i, n := range nodes {
		nodeClients[i] = n.Client(t)
		if got := clusterField(t, nodeClients[i], "cluster_state"); got != "ok" {
			t.Errorf("node %d: cluster_state:%s", i, got)
		}
		if got := clusterField(t, nodeClients[i], "cluster_size"); got != "3" {
			t.Errorf("node %d: cluster_size:%s, want 3 masters serving slots", i, got)
		}
	}

	// Node i serves the i-th third of the slots.
	//lint:ignore SA1019 CLUSTER SLOTS gives the slot ranges compared here; Redis 7 serves it
	slots, err := nodeClients[0].ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0-5460 " + addrs[0], "5461-10922 " + addrs[1], "10923-16383 " + addrs[2]}
	var got []string
	for _, s := range slots {
		got = append(got, fmt.Sprintf("%d-%d %s", s.Start, s.End, s.Nodes[0].Addr))
	}
	slices.Sort(got)
	slices.SortFunc(want, strings.Compare)
	if !slices.Equal(got, want) {
		t.Errorf("CLUSTER SLOTS = %q, want %q", got, want)
	}

	cc := c.Client(t)
	for i, n := range nodes {
		key := keyOn(t, cc, n, "key")
		val := fmt.Sprintf("value %d", i)
		if err := cc.Set(ctx, key, val, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if got, err := cc.Get(ctx, key).Result(); err != nil || got != val {
			t.Errorf("GET %s = %q, %v; want %q", key, got, err, val)
		}
		// The key is on node i, and only there: the others redirect.
		if got, err := nodeClients[i].Get(ctx, key).Result(); err != nil || got != val {
			t.Errorf("GET %s on node %d = %q, %v; want %q", key, i, got, err, val)
		}
		other := nodeClients[(i+1)%len(nodes)]
		if err := other.Get(ctx, key).Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") || !strings.HasSuffix(err.Error(), " "+n.Addr()) {
			t.Errorf("GET %s on node %d: err = %v, want MOVED to %s", key, (i+1)%len(nodes), err, n.Addr())
		}
	}
}

func TestClusterShardedPubSub(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	cc := c.Client(t)
	ctx := context.Background()
	// One channel per shard: each subscription is on a different node.
	for i, n := range c.Nodes() {
		ch := keyOn(t, cc, n, "shard-channel-")
		ps := cc.SSubscribe(ctx, ch)
		closePubSub(t, ps)
		subscribed(t, ps)
		msg := fmt.Sprintf("hello %d", i)
		if got, err := cc.SPublish(ctx, ch, msg).Result(); err != nil || got != 1 {
			t.Fatalf("SPUBLISH %s = %d, %v; want 1 receiver", ch, got, err)
		}
		if m := receive(t, ps); m.Channel != ch || m.Payload != msg {
			t.Errorf("got %q on %q, want %q on %q", m.Payload, m.Channel, msg, ch)
		}
	}
}

func TestClusterPubSubIsClusterWide(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	nodes := c.Nodes()
	ctx := context.Background()
	// Subscribers on nodes 1 and 2, the publisher on node 0.
	var subs []*redis.PubSub
	for _, n := range nodes[1:] {
		ps := n.Client(t).PSubscribe(ctx, "news.*")
		closePubSub(t, ps)
		subscribed(t, ps)
		subs = append(subs, ps)
	}
	if err := nodes[0].Client(t).Publish(ctx, "news.sport", "goal").Err(); err != nil {
		t.Fatal(err)
	}
	for i, ps := range subs {
		if m := receive(t, ps); m.Pattern != "news.*" || m.Channel != "news.sport" || m.Payload != "goal" {
			t.Errorf("node %d got %+v, want goal on news.sport by news.*", i+1, m)
		}
	}
}

func TestClusterKillRestartNode(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	nodes := c.Nodes()
	victim, survivor := nodes[2], nodes[0].Client(t)
	ctx := context.Background()
	cc := c.Client(t)
	key := keyOn(t, cc, victim, "key")
	if err := cc.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	vc := victim.Client(t)
	id, err := vc.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	victim.Kill()
	// Without a replica, the cluster goes down once the others agree the
	// node has failed.
	for clusterField(t, survivor, "cluster_state") != "fail" {
		if time.Since(start) > 10*redistest.ClusterNodeTimeout {
			t.Fatalf("cluster_state still ok %v after a master was killed", time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("cluster down %v after the kill", time.Since(start))

	// Hold the node's cluster bus port: Restart must retry until it is
	// free, as for its client port.
	bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(victim.Port()+10000)))
	if err != nil {
		t.Fatalf("take the bus port of the killed node: %v", err)
	}
	logged := len(victim.Log())
	released := make(chan bool, 1)
	go func() {
		defer bus.Close()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(victim.Log()[logged:], "Address already in use") {
			if time.Now().After(deadline) {
				released <- false
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		released <- true
	}()

	start = time.Now()
	victim.Restart(t)
	if !<-released {
		t.Errorf("Restart did not meet the busy bus port; log:\n%s", victim.Log())
	}
	c.WaitOK(t)
	t.Logf("cluster ok %v after the restart", time.Since(start))
	if got, err := vc.ClusterMyID(ctx).Result(); err != nil || got != id {
		t.Errorf("node id after Restart = %q, %v; want %q (from nodes.conf)", got, err, id)
	}
	// The node is back with its slots but without its data.
	if err := cc.Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET %s after Restart: err = %v, want redis.Nil", key, err)
	}
	if err := cc.Set(ctx, key, "w", 0).Err(); err != nil {
		t.Fatalf("SET %s after Restart: %v", key, err)
	}
	if got, err := cc.Get(ctx, key).Result(); err != nil || got != "w" {
		t.Errorf("GET %s after Restart = %q, %v; want w", key, got, err)
	}
}

func TestStartClusterSkipsWithoutRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(testenv.IntegrationEnv, "")
	var sub *testing.T
	t.Run("start", func(t *testing.T) {
		sub = t
		redistest.StartCluster(t, 3)
		t.Error("StartCluster returned without redis-server on PATH")
	})
	if !sub.Skipped() {
		t.Error("StartCluster did not skip without redis-server on PATH")
	}
}
