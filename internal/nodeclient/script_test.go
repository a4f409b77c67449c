package nodeclient_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/redistest"
)

// startRedis runs a redis-server of its own (internal/redistest) and
// returns its URL.
func startRedis(t *testing.T) string {
	t.Helper()
	return redistest.Start(t).URL()
}

// sameJSON reports whether the JSON values a and b are equal (key order and
// number spelling aside).
func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// waitArgs waits for event on c and checks its args.
func waitArgs(ctx context.Context, t *testing.T, c *nodeclient.Client, event string, want []any) {
	t.Helper()
	m, err := c.WaitEvent(ctx, event)
	if err != nil {
		t.Fatalf("waiting for %q: %v", event, err)
	}
	if !sameJSON(t, m.Args, want) {
		t.Fatalf("%q args = %s, want %s", event, mustJSON(t, m.Args), mustJSON(t, want))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func binary(b []byte) map[string]any {
	return map[string]any{"$binary": base64.StdEncoding.EncodeToString(b)}
}

// connectUser connects a socket.io-client as user to srv and waits until
// srv has it in the room "user:"+user.
func connectUser(ctx context.Context, t *testing.T, srv *nodeclient.NodeServer, user string) *nodeclient.Client {
	t.Helper()
	c := nodeclient.Start(t, nodeclient.Options{
		URL:        srv.URL,
		Transports: []string{"websocket"},
		Auth:       map[string]any{"user": user},
	})
	if _, err := c.WaitType(ctx, "connect"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitConnection(ctx, user, ""); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNodeServerClassicWithEmitter(t *testing.T) {
	t.Parallel()
	redisURL := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a := nodeclient.StartNodeServer(ctx, t, nodeclient.NodeServerOptions{RedisURL: redisURL, Mode: "classic"})
	b := nodeclient.StartNodeServer(ctx, t, nodeclient.NodeServerOptions{RedisURL: redisURL})
	em := nodeclient.StartEmitter(ctx, t, nodeclient.EmitterOptions{RedisURL: redisURL})

	// No auth.user: the middleware refuses the connection.
	anon := nodeclient.Start(t, nodeclient.Options{URL: a.URL, Transports: []string{"websocket"}})
	m, err := anon.WaitType(ctx, "connect_error")
	if err != nil {
		t.Fatal(err)
	}
	if m.Message != "unauthorized" {
		t.Errorf("connect_error message = %q, want unauthorized", m.Message)
	}

	u1 := connectUser(ctx, t, a, "u1")
	if n, err := a.Stats(ctx); err != nil || n != 1 {
		t.Errorf("a: GET /stats = %d, %v; want 1 socket", n, err)
	}
	if n, err := b.Stats(ctx); err != nil || n != 0 {
		t.Errorf("b: GET /stats = %d, %v; want 0 sockets", n, err)
	}

	// The emitter publishes to the room's own channel, which both servers'
	// PSUBSCRIBE socket.io#/#* receive.
	args := []any{"hello", 42, 1.5, -7, true, nil, map[string]any{"a": []any{1, "x"}}, binary([]byte{0, 1, 2, 255})}
	pub, err := em.Emit(ctx, nodeclient.Emission{To: []string{"user:u1"}, Event: "greet", Args: args})
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) != 1 || pub[0].Channel != "socket.io#/#user:u1#" || pub[0].Receivers != 2 {
		t.Errorf("emitter published %+v, want one PUBLISH on socket.io#/#user:u1# received by 2 clients", pub)
	}
	if len(pub) == 1 && !bytes.HasPrefix(pub[0].Payload, []byte("\x93\xa7emitter")) {
		t.Errorf("emitter payload % x, want a msgpack [\"emitter\", packet, opts]", pub[0].Payload)
	}
	waitArgs(ctx, t, u1, "greet", args)

	// Events for other users, or that except u1, do not reach u1; the one
	// after them does, and in order.
	for _, e := range []nodeclient.Emission{
		{To: []string{"user:u2"}, Event: "notMine"},
		{Except: []string{"user:u1"}, Event: "notMine"},
		{To: []string{"user:u1", "user:u2"}, Event: "both", Args: []any{"two rooms"}},
		{Event: "everyone", Args: []any{map[string]any{"n": 3}}},
	} {
		if _, err := em.Emit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	waitArgs(ctx, t, u1, "both", []any{"two rooms"})
	waitArgs(ctx, t, u1, "everyone", []any{map[string]any{"n": 3}})

	// POST /emit on the other server goes through Redis; on the same one it
	// is local as well.
	if err := b.Emit(ctx, nodeclient.EmitRequest{User: "u1", Event: "viaB", Args: args}); err != nil {
		t.Fatal(err)
	}
	waitArgs(ctx, t, u1, "viaB", args)
	if err := a.Emit(ctx, nodeclient.EmitRequest{Room: "user:u1", Event: "viaA", Args: []any{"local"}}); err != nil {
		t.Fatal(err)
	}
	waitArgs(ctx, t, u1, "viaA", []any{"local"})
	if err := b.Emit(ctx, nodeclient.EmitRequest{Event: ""}); !errors.Is(err, nodeclient.ErrCommand) {
		t.Errorf("POST /emit without an event = %v, want ErrCommand", err)
	}
	for _, ev := range u1.Events() {
		if ev.Event == "notMine" {
			t.Errorf("u1 got %s", ev)
		}
	}

	// Events the client emits are printed by the server.
	if err := u1.Emit("fromClient", "x", 1); err != nil {
		t.Fatal(err)
	}
	m, err = a.WaitType(ctx, "event")
	if err != nil {
		t.Fatal(err)
	}
	if m.Event != "fromClient" || !sameJSON(t, m.Args, []any{"x", 1}) {
		t.Errorf("server printed %s, want the event fromClient [\"x\",1]", m)
	}

	// SIGTERM: the server disconnects its sockets and exits 0.
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(ctx); err != nil {
		t.Errorf("node-server.js after SIGTERM: %v; stderr: %s", err, a.Stderr())
	}
	if _, err := u1.WaitType(ctx, "disconnect"); err != nil {
		t.Error(err)
	}
	// Stdin EOF: the emitter quits its client and exits 0.
	em.Close()
	if err := em.Wait(ctx); err != nil {
		t.Errorf("redis-emitter.js after close: %v; stderr: %s", err, em.Stderr())
	}
}

func TestNodeServerSharded(t *testing.T) {
	t.Parallel()
	redisURL := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	opts := nodeclient.NodeServerOptions{RedisURL: redisURL, Mode: "sharded"}
	a := nodeclient.StartNodeServer(ctx, t, opts)
	b := nodeclient.StartNodeServer(ctx, t, opts)
	u1 := connectUser(ctx, t, a, "u1")

	// Through Redis: b SPUBLISHes to socket.io#/#user:u1# (dynamic mode), a
	// is subscribed to it since u1 joined. JSON without binary, msgpack with.
	args := []any{"hello", 42, 1.5, map[string]any{"k": []any{true, nil}}}
	if err := b.Emit(ctx, nodeclient.EmitRequest{User: "u1", Event: "json", Args: args}); err != nil {
		t.Fatal(err)
	}
	waitArgs(ctx, t, u1, "json", args)
	withBinary := []any{"bin", binary([]byte{9, 8, 7})}
	if err := b.Emit(ctx, nodeclient.EmitRequest{User: "u1", Event: "msgpack", Args: withBinary}); err != nil {
		t.Fatal(err)
	}
	waitArgs(ctx, t, u1, "msgpack", withBinary)
	// To the namespace (socket.io#/#) and to two rooms (the same channel).
	if err := b.Emit(ctx, nodeclient.EmitRequest{User: "u2", Event: "notMine"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Emit(ctx, nodeclient.EmitRequest{Rooms: []string{"user:u2", "user:u1"}, Event: "both"}); err != nil {
		t.Fatal(err)
	}
	waitArgs(ctx, t, u1, "both", []any{})
	if err := b.Emit(ctx, nodeclient.EmitRequest{Event: "everyone", Args: []any{1}}); err != nil {
		t.Fatal(err)
	}
	waitArgs(ctx, t, u1, "everyone", []any{1})
	for _, ev := range u1.Events() {
		if ev.Event == "notMine" {
			t.Errorf("u1 got %s", ev)
		}
	}
	if n, err := a.Stats(ctx); err != nil || n != 1 {
		t.Errorf("a: GET /stats = %d, %v; want 1 socket", n, err)
	}

	// Stdin EOF: exits 0.
	b.Close()
	if err := b.Wait(ctx); err != nil {
		t.Errorf("node-server.js after close: %v; stderr: %s", err, b.Stderr())
	}
}

func TestEmitterHasNoShardedMode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Nothing listens there: the options are refused before connecting.
	s := nodeclient.StartScript(t, "redis-emitter.js", map[string]any{"redisUrl": "redis://127.0.0.1:1", "sharded": true})
	m, err := s.WaitType(ctx, "error")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Message, "no sharded mode") {
		t.Errorf("error = %q, want it to say there is no sharded mode", m.Message)
	}
	var exit *exec.ExitError
	if err := s.Wait(ctx); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("exit = %v, want exit status 2", err)
	}
}

func TestEmitterRequestErrors(t *testing.T) {
	t.Parallel()
	redisURL := startRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	em := nodeclient.StartEmitter(ctx, t, nodeclient.EmitterOptions{RedisURL: redisURL, Key: "legacy"})
	for _, cmd := range []map[string]any{
		{"cmd": "nope"},
		{"cmd": "emit"},                                    // no event
		{"cmd": "emit", "event": "connect"},                // reserved
		{"cmd": "emit", "event": "x", "to": "not a list"},  // bad to
		{"cmd": "emit", "event": "x", "args": "not args"},  // bad args
		{"cmd": "socketsJoin", "rooms": []any{1, 2}},       // bad rooms
		{"cmd": "emit", "event": "x", "nsp": 7},            // bad nsp
		{"cmd": "serverSideEmit", "event": ""},             // no event
		{"cmd": "emit", "event": "x", "except": []any{""}}, // accepted
	} {
		_, err := em.Do(ctx, cmd)
		if cmd["except"] != nil {
			if err != nil {
				t.Errorf("%v: %v", cmd, err)
			}
			continue
		}
		if !errors.Is(err, nodeclient.ErrCommand) {
			t.Errorf("%v: err = %v, want ErrCommand", cmd, err)
		}
	}
	// The key option is the channel prefix; a namespace other than "/".
	pub, err := em.Emit(ctx, nodeclient.Emission{Nsp: "/admin", Event: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) != 1 || pub[0].Channel != "legacy#/admin#" || pub[0].Receivers != 0 {
		t.Errorf("published %+v, want one PUBLISH on legacy#/admin# received by nobody", pub)
	}
	pub, err = em.Do(ctx, map[string]any{"cmd": "serverSideEmit", "event": "hi", "args": []any{1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) != 1 || pub[0].Channel != "legacy-request#/#" ||
		string(pub[0].Payload) != `{"uid":"emitter","type":6,"data":["hi",1]}` {
		t.Errorf("serverSideEmit published %+v, want one JSON request on legacy-request#/#", pub)
	}
}
