package adapter

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
)

var allModes = []RedisMode{RedisPubSub, RedisSharded, RedisStreams}

// publishOnly is an Emitter's broker: Subscribe is never called.
func publishOnly(t *testing.T, c redis.UniversalClient, mode RedisMode, prefix string) *RedisBroker {
	t.Helper()
	b, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode, Prefix: prefix, LogInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// A node that starts in another mode than the running nodes of its cluster
// fails its start check; one in the same mode passes. Every pair of modes.
func TestCheckClusterNodes(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	for _, running := range allModes {
		for _, starting := range allModes {
			t.Run(string(running)+"_then_"+string(starting), func(t *testing.T) {
				a, _ := newBroker(t, c, running)
				if err := a.CheckCluster(ctx); err != nil {
					t.Fatalf("first node: CheckCluster = %v, want nil", err)
				}
				b, _ := newBroker(t, c, starting)
				err := b.CheckCluster(ctx)
				if running == starting {
					if err != nil {
						t.Errorf("same mode: CheckCluster = %v, want nil", err)
					}
					return
				}
				if !errors.Is(err, ErrModeMismatch) {
					t.Fatalf("CheckCluster = %v, want ErrModeMismatch", err)
				}
				for _, want := range []string{string(running), string(starting), `"socket.io"`} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not name %s", err, want)
					}
				}
				// The running node sees the newcomer too (both registered).
				if err := a.CheckCluster(ctx); !errors.Is(err, ErrModeMismatch) {
					t.Errorf("running node: CheckCluster = %v, want ErrModeMismatch", err)
				}
			})
		}
	}
	// Closed nodes leave the registry.
	if n, err := c.HLen(ctx, RegistryKey).Result(); err != nil || n != 0 {
		t.Errorf("registry after every node closed: %d entries, %v; want none", n, err)
	}
}

// An emitter whose mode differs from the nodes' fails on emit, never
// reporting success for a message nobody can receive; in the same mode the
// message arrives. Every pair of modes.
func TestEmitterModeMismatch(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	for _, node := range allModes {
		for _, emitter := range allModes {
			t.Run("nodes_"+string(node)+"_emitter_"+string(emitter), func(t *testing.T) {
				_, in := newBroker(t, c, node)
				em := publishOnly(t, c, emitter, "")
				err := em.Publish(ctx, msg(nil, "hello", `1`))
				if node == emitter {
					if err != nil {
						t.Fatalf("same mode: Publish = %v, want nil", err)
					}
					in.waitN(t, 1)
					return
				}
				if !errors.Is(err, ErrModeMismatch) {
					t.Fatalf("Publish = %v, want ErrModeMismatch", err)
				}
				if errors.Is(err, ErrRemoteUndelivered) {
					t.Errorf("error %v also wraps ErrRemoteUndelivered: Redis was fine", err)
				}
				if m := em.Metrics(); m.Published != 0 {
					t.Errorf("Metrics().Published = %d after a refused emit, want 0", m.Published)
				}
			})
		}
	}
}

// An emitter on another prefix than the nodes', or with no node at all,
// fails with ErrNoListeners, whose message says where nodes do listen.
func TestEmitterNoListeners(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			em := publishOnly(t, c, mode, "app-b")
			err := em.Publish(ctx, msg([]string{"user:1"}, "hello", `1`))
			if !errors.Is(err, ErrNoListeners) || !strings.Contains(err.Error(), "no herald node is registered") {
				t.Fatalf("no node at all: Publish = %v, want ErrNoListeners saying no node is registered", err)
			}
			if err := em.CheckCluster(ctx); !errors.Is(err, ErrNoListeners) {
				t.Errorf("CheckCluster = %v, want ErrNoListeners", err)
			}

			node, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode, Prefix: "app-a", Stream: "app-a"})
			if err != nil {
				t.Fatal(err)
			}
			if err := node.Subscribe(func(Message) {}); err != nil {
				t.Fatal(err)
			}
			defer node.Close(ctx)
			eventually(t, "the node subscribed", func() bool { return node.Metrics().SubscriptionUp })
			if err := node.CheckCluster(ctx); err != nil {
				t.Fatal(err)
			}
			em = publishOnly(t, c, mode, "app-b")
			err = em.Publish(ctx, msg([]string{"user:1"}, "hello", `1`))
			if !errors.Is(err, ErrNoListeners) || !strings.Contains(err.Error(), `"app-a"`) {
				t.Errorf("other prefix: Publish = %v, want ErrNoListeners naming app-a", err)
			}
			// The same prefix works.
			em = publishOnly(t, c, mode, "app-a")
			if mode == RedisStreams {
				em.cfg.Stream = "app-a"
			}
			if err := em.Publish(ctx, msg([]string{"user:1"}, "hello", `1`)); err != nil {
				t.Errorf("same prefix: Publish = %v", err)
			}
			// SkipListenerCheck publishes regardless.
			skip, err := NewRedisBroker(RedisBrokerConfig{Client: c, Mode: mode, Prefix: "app-c", SkipListenerCheck: true})
			if err != nil {
				t.Fatal(err)
			}
			defer skip.Close(ctx)
			if err := skip.Publish(ctx, msg(nil, "hello", `1`)); err != nil {
				t.Errorf("SkipListenerCheck: Publish = %v, want nil", err)
			}
		})
	}
}

// Node.js socket.io servers do not register, but the check finds them by
// their subscriptions (pub/sub, sharded) or the heartbeats their streams
// adapter writes: an emitter in a Node-only cluster of its mode works, and
// one in another mode fails.
func TestEmitterNodeJSListeners(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodeMode := map[RedisMode]string{RedisPubSub: "classic", RedisSharded: "sharded", RedisStreams: "streams"}
	for _, mode := range allModes {
		t.Run(string(mode), func(t *testing.T) {
			s := nodeclient.StartNodeServer(ctx, t, nodeclient.NodeServerOptions{RedisURL: srv.URL(), Mode: nodeMode[mode]})
			defer s.Close()
			em := publishOnly(t, c, mode, "")
			if err := em.Publish(ctx, msg([]string{"user:1"}, "hello", `1`)); err != nil {
				t.Errorf("Publish beside a Node.js %s server = %v, want nil", nodeMode[mode], err)
			}
			for _, other := range allModes {
				if other == mode {
					continue
				}
				em := publishOnly(t, c, other, "")
				if err := em.Publish(ctx, msg([]string{"user:1"}, "hello", `1`)); !errors.Is(err, ErrNoListeners) {
					t.Errorf("%s emitter beside a Node.js %s server: Publish = %v, want ErrNoListeners", other, nodeMode[mode], err)
				}
			}
		})
	}
}
