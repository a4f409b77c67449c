package socketio_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// whereEvent is acked with the namespace and user the server sees.
var whereEvent = events.Define[echoPayload]("where")

type wherePayload struct {
	Namespace string `json:"namespace"`
	User      string `json:"user"`
}

func registerWhere(t *testing.T, ts *testServer) {
	t.Helper()
	must(t, socketio.OnAck(ts.Server, whereEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (wherePayload, error) {
		return wherePayload{Namespace: s.Namespace(), User: s.UserID()}, nil
	}))
}

// TestNamespaces: a client of every socket.io-client release, over every
// transport, opens "/" and "/admin" on one connection (the manager's
// multiplexing, as io(url) and io(url + "/admin") do): each namespace
// authenticates and greets its socket, an emit into a namespace reaches
// only that namespace's socket, handlers see which namespace a socket is
// in, leaving one namespace leaves the other connected, and an unknown
// namespace gets connect_error "Invalid namespace".
func TestNamespaces(t *testing.T) {
	ts := startServer(t, socketio.Config{Namespaces: []string{"/admin", "/chat"}})
	registerWhere(t, ts)
	admin, err := ts.Of("/admin")
	must(t, err)
	if _, err := ts.Of("/nope"); !errors.Is(err, socketio.ErrUnknownNamespace) {
		t.Fatalf(`Of("/nope") = %v, want ErrUnknownNamespace`, err)
	}
	main, err := ts.Of("/")
	must(t, err)

	for _, cv := range matrixClients {
		t.Run(cv.version, func(t *testing.T) {
			t.Parallel()
			for _, tr := range matrixTransports {
				t.Run(tr.name, func(t *testing.T) {
					t.Parallel()
					user := "ns-" + cv.version + "-" + tr.name
					ctx := testCtx(t, 30*time.Second)
					opts := matrixOptions(ts, cv, tr)
					auth := map[string]any{"token": ts.token(t, user)}
					opts.Auth = auth
					c := nodeclient.Start(t, opts)
					waitConnected(t, ctx, c, cv, tr, user)

					must(t, c.OpenNamespace("/admin", auth))
					m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool {
						return m.Nsp == "/admin" && (m.Type == "connect" || m.Type == "connect_error")
					})
					must(t, err)
					if m.Type != "connect" {
						t.Fatalf("/admin: %v", m)
					}
					if _, err := c.WaitIn(ctx, "/admin", "event", "authenticated"); err != nil {
						t.Fatal(err)
					}
					must(t, c.OpenNamespace("/nope", auth))
					if m, err := c.WaitIn(ctx, "/nope", "connect_error", ""); err != nil || m.Message != "Invalid namespace" {
						t.Fatalf("/nope: %v %v", m, err)
					}

					// Handlers see each socket's namespace.
					args, err := c.EmitWithAckIn(ctx, "/admin", "where", map[string]any{"text": "?"})
					must(t, err)
					if want := fmt.Sprintf(`{"namespace":"/admin","user":%q}`, user); len(args) != 1 || string(args[0]) != want {
						t.Fatalf("where in /admin = %s, want %s", args, want)
					}
					args, err = c.EmitWithAck(ctx, "where", 0, map[string]any{"text": "?"})
					must(t, err)
					if want := fmt.Sprintf(`{"namespace":"/","user":%q}`, user); len(args) != 1 || string(args[0]) != want {
						t.Fatalf("where in / = %s, want %s", args, want)
					}

					// An emit into a namespace reaches that namespace only:
					// /admin's event is emitted first, so when "/" has its own
					// event it would also have /admin's.
					must(t, admin.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "admin", Progress: 1}))
					must(t, main.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "main", Progress: 2}))
					am, err := c.WaitIn(ctx, "/admin", "event", "job_progress")
					must(t, err)
					mm, err := c.WaitEvent(ctx, "job_progress")
					must(t, err)
					if p := decodeArg[events.JobProgressPayload](t, am); p.JobID != "admin" {
						t.Errorf("/admin got %+v", p)
					}
					if p := decodeArg[events.JobProgressPayload](t, mm); p.JobID != "main" {
						t.Errorf("/ got %+v", p)
					}
					must(t, ts.EmitToRoom(ctx, socketio.UserRoom(user), events.JobProgress, events.JobProgressPayload{JobID: "main2", Progress: 3}))
					if mm, err = c.WaitEvent(ctx, "job_progress"); err != nil || decodeArg[events.JobProgressPayload](t, mm).JobID != "main2" {
						t.Fatalf("/ got %v %v", mm, err)
					}
					for _, e := range c.Events() {
						if e.Event == "job_progress" && e.Nsp == "/admin" && decodeArg[events.JobProgressPayload](t, e).JobID != "admin" {
							t.Errorf("/admin got another namespace's event: %v", e)
						}
					}

					// Leaving /admin keeps "/" (and the connection) alive.
					must(t, c.Send(map[string]any{"cmd": "disconnect", "nsp": "/admin"}))
					if _, err := c.WaitIn(ctx, "/admin", "disconnect", ""); err != nil {
						t.Fatal(err)
					}
					args, err = c.EmitWithAck(ctx, "where", 0, map[string]any{"text": "?"})
					if err != nil || len(args) != 1 {
						t.Fatalf("/ after leaving /admin: %s %v", args, err)
					}
					online, err := ts.IsOnline(ctx, user)
					if err != nil || !online {
						t.Fatalf("IsOnline after leaving /admin = %v, %v", online, err)
					}
				})
			}
		})
	}
}

// TestNamespacesCluster: Server.Of and Emitter.Of reach a namespace's
// sockets on another node, in every Redis mode.
func TestNamespacesCluster(t *testing.T) {
	r := redistest.Start(t)
	for _, mode := range []adapter.RedisMode{adapter.RedisPubSub, adapter.RedisSharded, adapter.RedisStreams} {
		t.Run(string(mode), func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			cfg := socketio.Config{Namespaces: []string{"/admin"}}
			a := clusterServerWith(t, r.Client(t), mode, cfg)
			b := clusterServerWith(t, r.Client(t), mode, cfg)
			user := "nsc-" + string(mode)
			c := b.connect(t, user, "websocket")
			auth := map[string]any{"token": b.token(t, user)}
			must(t, c.OpenNamespace("/admin", auth))
			if _, err := c.WaitIn(ctx, "/admin", "event", "authenticated"); err != nil {
				t.Fatal(err)
			}
			admin, err := a.Of("/admin")
			must(t, err)
			// waitJob waits for job_progress of jobID in nsp ("" for "/").
			waitJob := func(ctx context.Context, nsp, jobID string) error {
				_, err := c.WaitFor(ctx, func(m nodeclient.Message) bool {
					return m.Type == "event" && m.Event == "job_progress" && m.Nsp == nsp &&
						decodeArg[events.JobProgressPayload](t, m).JobID == jobID
				})
				return err
			}
			// A sharded node subscribes to the room's channel when the
			// socket joins it, asynchronously: emit until it arrives.
			deadline := time.Now().Add(10 * time.Second)
			for {
				must(t, admin.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "from-a", Progress: 1}))
				wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				err := waitJob(wctx, "/admin", "from-a")
				cancel()
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("Server.Of(/admin).EmitToUser never arrived")
				}
			}

			broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: r.Client(t), Mode: mode})
			must(t, err)
			defer broker.Close(context.Background())
			em, err := socketio.NewEmitter(socketio.EmitterConfig{Broker: broker})
			must(t, err)
			if _, err := em.Of("admin"); !errors.Is(err, socketio.ErrUnknownNamespace) {
				t.Fatalf(`Emitter.Of("admin") = %v, want ErrUnknownNamespace`, err)
			}
			emAdmin, err := em.Of("/admin")
			must(t, err)
			must(t, emAdmin.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "from-worker", Progress: 2}))
			must(t, waitJob(ctx, "/admin", "from-worker"))
			// The main namespace got none of them: its first job_progress
			// is the one emitted to it, after them.
			must(t, a.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "main", Progress: 3}))
			m, err := c.WaitEvent(ctx, "job_progress")
			must(t, err)
			if p := decodeArg[events.JobProgressPayload](t, m); p.JobID != "main" {
				t.Fatalf("/ got %+v", p)
			}
		})
	}
}

// TestNamespacesRecovery: with connection-state recovery, each namespace
// socket of a connection that dropped gets back its own missed events, and
// none of the other namespace's.
func TestNamespacesRecovery(t *testing.T) {
	ts := startServer(t, socketio.Config{Namespaces: []string{"/admin"}, Recovery: time.Minute})
	admin, err := ts.Of("/admin")
	must(t, err)
	ctx := testCtx(t, 30*time.Second)
	const user = "ns-recovery"
	auth := map[string]any{"token": ts.token(t, user)}
	c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"}, Auth: auth, Reconnection: true, Extra: reconnectOptions})
	first, err := c.WaitType(ctx, "connect")
	must(t, err)
	waitAuthenticated(t, ctx, c, user)
	must(t, c.OpenNamespace("/admin", auth))
	firstAdmin, err := c.WaitIn(ctx, "/admin", "connect", "")
	must(t, err)
	if _, err := c.WaitIn(ctx, "/admin", "event", "authenticated"); err != nil {
		t.Fatal(err)
	}
	job := func(id string) events.JobProgressPayload { return events.JobProgressPayload{JobID: id} }
	// One event each, so that both sockets hold an offset.
	must(t, ts.EmitToUser(ctx, user, events.JobProgress, job("seen")))
	must(t, admin.EmitToUser(ctx, user, events.JobProgress, job("admin-seen")))
	_, err = c.WaitEvent(ctx, "job_progress")
	must(t, err)
	_, err = c.WaitIn(ctx, "/admin", "event", "job_progress")
	must(t, err)

	must(t, c.Send(map[string]any{"cmd": "drop"}))
	eventually(t, "server to see both sockets go", func() bool { return ts.SocketCount() == 0 })
	for _, id := range []string{"m1", "m2"} {
		must(t, ts.EmitToUser(ctx, user, events.JobProgress, job(id)))
		must(t, admin.EmitToUser(ctx, user, events.JobProgress, job("admin-"+id)))
	}
	again, err := c.WaitType(ctx, "connect")
	must(t, err)
	againAdmin, err := c.WaitIn(ctx, "/admin", "connect", "")
	must(t, err)
	if !again.Recovered || again.ID != first.ID || !againAdmin.Recovered || againAdmin.ID != firstAdmin.ID {
		t.Fatalf("reconnected as %s and %s, want %s and %s recovered", again.Raw, againAdmin.Raw, first.ID, firstAdmin.ID)
	}
	// Then one live event each: what came before it was replayed.
	must(t, ts.EmitToUser(ctx, user, events.JobProgress, job("live")))
	must(t, admin.EmitToUser(ctx, user, events.JobProgress, job("admin-live")))
	for _, nsp := range []string{"", "/admin"} {
		prefix := ""
		if nsp != "" {
			prefix = "admin-"
		}
		for _, want := range []string{"m1", "m2", "live"} {
			var m nodeclient.Message
			if nsp == "" {
				m, err = c.WaitEvent(ctx, "job_progress")
			} else {
				m, err = c.WaitIn(ctx, nsp, "event", "job_progress")
			}
			must(t, err)
			if p := decodeArg[events.JobProgressPayload](t, m); p.JobID != prefix+want {
				t.Fatalf("namespace %q: got %q, want %q", nsp, p.JobID, prefix+want)
			}
		}
	}
}
