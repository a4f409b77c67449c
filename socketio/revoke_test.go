package socketio_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// waitRevoked waits for server_disconnect with reason, then the
// disconnect "io server disconnect".
func waitRevoked(t *testing.T, ctx context.Context, c *nodeclient.Client, reason string) {
	t.Helper()
	m, err := c.WaitEvent(ctx, "server_disconnect")
	must(t, err)
	if p := decodeArg[events.ServerDisconnectPayload](t, m); p.Reason != reason {
		t.Fatalf("server_disconnect reason %q, want %q", p.Reason, reason)
	}
	d, err := c.WaitType(ctx, "disconnect")
	must(t, err)
	if d.Reason != "io server disconnect" {
		t.Fatalf("disconnect: %v, want io server disconnect", d)
	}
}

// TestDisconnectUser: every socket of the user, in every namespace and
// over every transport, gets server_disconnect and is disconnected, and the
// client does not reconnect by itself; other users are untouched.
func TestDisconnectUser(t *testing.T) {
	ts := startServer(t, socketio.Config{Namespaces: []string{"/admin"}})
	registerWhere(t, ts)
	ctx := testCtx(t, 30*time.Second)
	if err := ts.DisconnectUser(ctx, "", "x"); !errors.Is(err, socketio.ErrInvalidUserID) {
		t.Fatalf("DisconnectUser with no user = %v", err)
	}
	if err := ts.DisconnectUser(ctx, "u", strings.Repeat("r", events.MaxMessageLength+1)); !errors.Is(err, events.ErrInvalidPayload) {
		t.Fatalf("DisconnectUser with a huge reason = %v", err)
	}
	const user = "revoked-user"
	var tabs []*nodeclient.Client
	for _, tr := range []string{"websocket", "polling"} {
		auth := map[string]any{"token": ts.token(t, user)}
		c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{tr}, Auth: auth, Reconnection: true, Extra: reconnectOptions})
		if _, err := c.WaitType(ctx, "connect"); err != nil {
			t.Fatal(err)
		}
		waitAuthenticated(t, ctx, c, user)
		tabs = append(tabs, c)
	}
	must(t, tabs[0].OpenNamespace("/admin", map[string]any{"token": ts.token(t, user)}))
	if _, err := tabs[0].WaitIn(ctx, "/admin", "event", "authenticated"); err != nil {
		t.Fatal(err)
	}
	other := ts.connect(t, "bystander", "websocket")

	must(t, ts.DisconnectUser(ctx, user, "access revoked"))
	for _, c := range tabs {
		waitRevoked(t, ctx, c, "access revoked")
	}
	if _, err := tabs[0].WaitIn(ctx, "/admin", "disconnect", ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "user offline", func() bool {
		online, err := ts.IsOnline(ctx, user)
		return err == nil && !online
	})
	// No reconnection ("io server disconnect" stops the client), and the
	// bystander is still connected.
	time.Sleep(500 * time.Millisecond)
	for _, c := range tabs {
		for _, m := range c.History() {
			if m.Type == "reconnect_attempt" {
				t.Fatalf("client tried to reconnect: %v", m)
			}
		}
	}
	if args, err := other.EmitWithAck(ctx, "where", 0, map[string]any{"text": "?"}); err != nil || len(args) != 1 {
		t.Fatalf("bystander: %s %v", args, err)
	}
}

// TestDisconnectUserCluster: DisconnectUser on one node, and an Emitter's,
// disconnect the user's sockets on another, in every Redis mode; and a Node
// socket.io server sharing the Redis honours the request too.
func TestDisconnectUserCluster(t *testing.T) {
	r := redistest.Start(t)
	for _, mode := range []struct {
		herald adapter.RedisMode
		node   string
	}{{adapter.RedisPubSub, "classic"}, {adapter.RedisSharded, "sharded"}, {adapter.RedisStreams, "streams"}} {
		t.Run(string(mode.herald), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			a := clusterServer(t, r.Client(t), mode.herald)
			b := clusterServer(t, r.Client(t), mode.herald)
			ns := nodeclient.StartNodeServer(ctx, t, nodeclient.NodeServerOptions{RedisURL: r.URL(), Mode: mode.node})
			user := "rv-" + string(mode.herald)
			onB := b.connect(t, user, "websocket")
			onNode := nodeclient.Start(t, nodeclient.Options{URL: ns.URL, Auth: map[string]any{"user": user}})
			if _, err := onNode.WaitType(ctx, "connect"); err != nil {
				t.Fatal(err)
			}
			if _, err := ns.WaitConnection(ctx, user, "/"); err != nil {
				t.Fatal(err)
			}
			must(t, a.DisconnectUser(ctx, user, "bye"))
			waitRevoked(t, ctx, onB, "bye")
			d, err := onNode.WaitType(ctx, "disconnect")
			must(t, err)
			if d.Reason != "io server disconnect" {
				t.Fatalf("Node's client: %v", d)
			}

			// From a worker.
			again := b.connect(t, user, "websocket")
			broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: r.Client(t), Mode: mode.herald})
			must(t, err)
			defer broker.Close(context.Background())
			em, err := socketio.NewEmitter(socketio.EmitterConfig{Broker: broker})
			must(t, err)
			must(t, em.DisconnectUser(ctx, user, "from the worker"))
			waitRevoked(t, ctx, again, "from the worker")
		})
	}
}
