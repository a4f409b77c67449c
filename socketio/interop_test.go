package socketio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// Interop with Node's Socket.IO Redis ecosystem, with the real npm packages
// (testdata/package.json): @socket.io/redis-emitter publishing to a herald
// node, and herald publishing to a Node socket.io server running
// @socket.io/redis-adapter or @socket.io/redis-streams-adapter, on one real
// redis-server.

// clusterServer starts a herald Server on the Redis at addr.
func clusterServer(t testing.TB, client redis.UniversalClient, mode adapter.RedisMode) *testServer {
	t.Helper()
	return clusterServerWith(t, client, mode, socketio.Config{})
}

// clusterServerWith is clusterServer with more of the Config (Broker and
// Presence are set here).
func clusterServerWith(t testing.TB, client redis.UniversalClient, mode adapter.RedisMode, cfg socketio.Config) *testServer {
	t.Helper()
	broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: client, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	presence, err := adapter.NewRedisPresence(adapter.RedisPresenceConfig{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-in first-out: the Server shuts down first.
	t.Cleanup(func() {
		_ = presence.Close(context.Background())
		_ = broker.Close(context.Background())
	})
	cfg.Broker, cfg.Presence = broker, presence
	ts := startServer(t, cfg)
	eventually(t, "redis subscription", func() bool { return broker.Metrics().SubscriptionUp })
	return ts
}

func TestInteropNodeEmitterToHerald(t *testing.T) {
	r := redistest.Start(t)
	ts := clusterServer(t, r.Client(t), adapter.RedisPubSub)
	alice := ts.connect(t, "alice", "websocket")
	bob := ts.connect(t, "bob", "polling")
	ctx := testCtx(t, 30*time.Second)
	em := nodeclient.StartEmitter(ctx, t, nodeclient.EmitterOptions{RedisURL: r.URL()})

	payload := map[string]any{"jobId": "j1", "progress": 40, "message": "<b>&", "nested": map[string]any{"z": 1, "a": []any{1.5, nil, true}}}
	pubs, err := em.Emit(ctx, nodeclient.Emission{To: []string{"user:alice"}, Event: "job_progress", Args: []any{payload}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pubs) != 1 || pubs[0].Channel != "socket.io#/#user:alice#" || pubs[0].Receivers != 1 {
		t.Fatalf("emitter published %+v", pubs)
	}
	m, err := alice.WaitEvent(ctx, "job_progress")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(payload) // encoding/json sorts map keys, as JSON.stringify kept them
	var got, wantV any
	_ = json.Unmarshal(m.Args[0], &got)
	_ = json.Unmarshal(want, &wantV)
	if !jsonEqual(got, wantV) {
		t.Fatalf("alice got %s, want %s", m.Args[0], want)
	}

	// Several arguments, a broadcast, and an except.
	if _, err := em.Emit(ctx, nodeclient.Emission{Event: "announce", Args: []any{"hello", 2, map[string]any{"k": "v"}}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*nodeclient.Client{alice, bob} {
		m, err := c.WaitEvent(ctx, "announce")
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Args) != 3 || string(m.Args[0]) != `"hello"` || string(m.Args[1]) != "2" || string(m.Args[2]) != `{"k":"v"}` {
			t.Fatalf("announce args = %s", m.Args)
		}
	}
	if _, err := em.Emit(ctx, nodeclient.Emission{Event: "notbob", Except: []string{"user:bob"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WaitEvent(ctx, "notbob"); err != nil {
		t.Fatal(err)
	}
	// A date crosses as JSON.stringify writes it.
	if _, err := em.Emit(ctx, nodeclient.Emission{To: []string{"user:bob"}, Event: "when", Args: []any{map[string]any{"$date": 1700000000123}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := bob.WaitEvent(ctx, "when"); err != nil || string(m.Args[0]) != `"2023-11-14T22:13:20.123Z"` {
		t.Fatalf("date arrived as %v (%v)", m.Args, err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(eventsNamed(bob, "notbob")); n != 0 {
		t.Errorf("bob got %d events he was excepted from", n)
	}
	if n := len(eventsNamed(bob, "job_progress")); n != 0 {
		t.Errorf("bob got alice's event")
	}
}

// TestInteropHeraldToNodeServer: herald and a Node socket.io server share a
// Redis in each mode both speak. In streams mode (with
// @socket.io/redis-streams-adapter) both servers read the one stream, and
// with connection-state recovery on both sides a client of either gets the
// same offset (the stream entry's id) as last argument of the same event.
func TestInteropHeraldToNodeServer(t *testing.T) {
	r := redistest.Start(t)
	for _, mode := range []struct {
		name, node string
		herald     adapter.RedisMode
		recovery   time.Duration
	}{
		{"classic", "classic", adapter.RedisPubSub, 0},
		{"sharded", "sharded", adapter.RedisSharded, 0},
		{"streams", "streams", adapter.RedisStreams, 0},
		{"streams-recovery", "streams", adapter.RedisStreams, time.Minute},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			client := r.Client(t)
			ns := nodeclient.StartNodeServer(ctx, t, nodeclient.NodeServerOptions{
				RedisURL: r.URL(), Mode: mode.node, MaxDisconnectionDuration: mode.recovery.Milliseconds(),
			})
			nodeAlice := nodeclient.Start(t, nodeclient.Options{URL: ns.URL, Auth: map[string]any{"user": "alice"}})
			if _, err := nodeAlice.WaitType(ctx, "connect"); err != nil {
				t.Fatal(err)
			}
			if _, err := ns.WaitConnection(ctx, "alice", "/"); err != nil {
				t.Fatal(err)
			}
			// A herald node on the same Redis, with alice connected too.
			ts := clusterServerWith(t, client, mode.herald, socketio.Config{Recovery: mode.recovery})
			heraldAlice := ts.connect(t, "alice", "websocket")
			// wantArgs is the number of arguments of each event: with
			// recovery on, the offset comes last.
			wantArgs := 1
			if mode.recovery > 0 {
				wantArgs = 2
			}

			// 1. herald's Emitter (a worker) reaches alice on both servers.
			broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: client, Mode: mode.herald})
			if err != nil {
				t.Fatal(err)
			}
			defer broker.Close(context.Background())
			at := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
			emitter, err := socketio.NewEmitter(socketio.EmitterConfig{Broker: broker, Now: func() time.Time { return at }})
			if err != nil {
				t.Fatal(err)
			}
			p := events.JobProgressPayload{JobID: "job<1>", Progress: 50, Message: "half & half"}
			if err := emitter.EmitToUser(ctx, "alice", events.JobProgress, p); err != nil {
				t.Fatal(err)
			}
			want := `{"jobId":"job\u003c1\u003e","progress":50,"message":"half \u0026 half","timestamp":"2026-11-22T01:02:03Z"}`
			m, err := nodeAlice.WaitEvent(ctx, "job_progress")
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV any
			_ = json.Unmarshal(m.Args[0], &gotV)
			_ = json.Unmarshal([]byte(want), &wantV)
			if !jsonEqual(gotV, wantV) || !strings.HasPrefix(string(m.Args[0]), `{"jobId":`) {
				t.Fatalf("Node's client got %s, want %s (fields in order)", m.Args[0], want)
			}
			h, err := heraldAlice.WaitEvent(ctx, "job_progress")
			if err != nil {
				t.Fatal(err)
			}
			if string(h.Args[0]) != string(m.Args[0]) {
				t.Errorf("herald's client and Node's client got different JSON:\n%s\n%s", h.Args[0], m.Args[0])
			}
			sameArgs(t, "job_progress", wantArgs, h.Args, m.Args)

			// 2. An emit on the Node server reaches alice on herald.
			if err := ns.Emit(ctx, nodeclient.EmitRequest{User: "alice", Event: "from_node", Args: []any{json.RawMessage(`{"b":1,"a":"x"}`)}}); err != nil {
				t.Fatal(err)
			}
			h, err = heraldAlice.WaitEvent(ctx, "from_node")
			if err != nil || string(h.Args[0]) != `{"b":1,"a":"x"}` {
				t.Fatalf("herald's client got %v (%v)", h.Args, err)
			}
			if m, err = nodeAlice.WaitEvent(ctx, "from_node"); err != nil {
				t.Fatal(err)
			}
			sameArgs(t, "from_node", wantArgs, h.Args, m.Args)
			// 3. herald's Server.EmitToUser reaches alice on the Node server.
			if err := ts.EmitToUser(ctx, "alice", events.JobCompleted, events.JobCompletedPayload{JobID: "j2"}); err != nil {
				t.Fatal(err)
			}
			if m, err = nodeAlice.WaitEvent(ctx, "job_completed"); err != nil {
				t.Fatal(err)
			}
			if h, err = heraldAlice.WaitEvent(ctx, "job_completed"); err != nil {
				t.Fatal(err)
			}
			sameArgs(t, "job_completed", wantArgs, h.Args, m.Args)

			// 4. Binary data crosses both ways as Buffers (MessagePack bin).
			fp := filePayload{Name: "bin", Data: events.Bytes{0, 1, 2, 0xff}, Parts: []events.Bytes{{}, {9}}}
			if err := ts.EmitToUser(ctx, "alice", fileEvent, fp); err != nil {
				t.Fatal(err)
			}
			wantFile := fmt.Sprintf(`{"name":"bin","data":%s,"parts":[%s,%s],"meta":{"thumb":null},"timestamp":"%s"}`,
				binJSON([]byte{0, 1, 2, 0xff}), binJSON(nil), binJSON([]byte{9}), "")
			for who, c := range map[string]*nodeclient.Client{"Node's": nodeAlice, "herald's": heraldAlice} {
				m, err := c.WaitEvent(ctx, "file")
				if err != nil {
					t.Fatal(err)
				}
				var got map[string]any
				if len(m.Args) != wantArgs || json.Unmarshal(m.Args[0], &got) != nil {
					t.Fatalf("%s client got file %s", who, m.Args)
				}
				ts, _ := got["timestamp"].(string)
				if !sameJSON(m.Args[0], strings.Replace(wantFile, `"timestamp":""`, `"timestamp":"`+ts+`"`, 1)) {
					t.Fatalf("%s client got file %s, want %s", who, m.Args[0], wantFile)
				}
			}
			if err := ns.Emit(ctx, nodeclient.EmitRequest{User: "alice", Event: "node_file", Args: []any{map[string]any{"buf": bin([]byte{7, 8})}, bin([]byte{1})}}); err != nil {
				t.Fatal(err)
			}
			h, err = heraldAlice.WaitEvent(ctx, "node_file")
			if err != nil || len(h.Args) != wantArgs+1 || !sameJSON(h.Args[0], `{"buf":`+binJSON([]byte{7, 8})+`}`) || !sameJSON(h.Args[1], binJSON([]byte{1})) {
				t.Fatalf("herald's client got node_file %s (%v)", h.Args, err)
			}
		})
	}
}

// sameArgs fails t unless herald's client and Node's client got the same n
// arguments of event, byte for byte; a second argument is the offset of
// connection-state recovery, a stream entry id.
func sameArgs(t *testing.T, event string, n int, herald, node []json.RawMessage) {
	t.Helper()
	if len(herald) != n || len(node) != n {
		t.Fatalf("%s: herald's client got %s, Node's client %s; want %d argument(s) each", event, herald, node, n)
	}
	for i := range herald {
		if string(herald[i]) != string(node[i]) {
			t.Errorf("%s: argument %d differs: herald's client got %s, Node's client %s", event, i, herald[i], node[i])
		}
	}
	if n == 2 {
		var offset string
		if json.Unmarshal(herald[1], &offset) != nil || !streamID.MatchString(offset) {
			t.Errorf("%s: last argument %s is not a stream offset", event, herald[1])
		}
	}
}

var streamID = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

func eventsNamed(c *nodeclient.Client, name string) []nodeclient.Message {
	var out []nodeclient.Message
	for _, m := range c.Events() {
		if m.Event == name {
			out = append(out, m)
		}
	}
	return out
}

// jsonEqual compares decoded JSON values.
func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
