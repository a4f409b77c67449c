package nodeclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/herald-rt/herald/internal/testenv"
)

// ErrCommand: a Script answered a Request with {"type":"error"}, or
// client.js refused a Client command (an EmitWithAck needing an API that the
// client version of Options.Package lacks).
var ErrCommand = errors.New("nodeclient: script command failed")

// scriptPackages are the npm packages of testdata/ that each known script
// loads, checked by StartScript (testenv.RequireNode checks socket.io-client).
var scriptPackages = map[string][]string{
	"node-server.js":          {"socket.io", "@socket.io/redis-adapter", "redis"},
	"redis-emitter.js":        {"@socket.io/redis-emitter", "redis"},
	"node-engineio-server.js": {"engine.io"}, // socket.io's, at the top of node_modules
}

// Script is a JSON-lines Node program of testdata/ other than client.js, in
// its own process: node-server.js, redis-emitter.js, or any script that takes
// its options as one JSON argument, reads JSON commands on stdin, prints one
// JSON object with a "type" per line on stdout and exits on EOF on stdin.
//
// The lines come back as Messages, with the same machinery and guarantees as
// Client (Next, WaitFor and WaitType consume only the message they return).
// A script's own fields are not among Message's: read them from Raw with
// Message.Decode. "id" is Message.AckID when it is a number (the id of a
// Request) and Message.ID when it is a string.
type Script struct {
	c      *Client
	nextID atomic.Int64
}

// StartScript spawns node testdata/<script> '<opts as JSON>' and returns at
// once. It skips or fails t (see testenv.Require) when node or the npm
// packages the script needs are missing, and registers Close with t.Cleanup;
// when t has failed, the cleanup logs node's stderr and the lines printed.
func StartScript(t testing.TB, script string, opts any) *Script {
	t.Helper()
	node := testenv.RequireNode(t)
	dir := testenv.TestdataDir(t)
	requirePackages(t, dir, scriptPackages[script]...)
	optJSON, err := json.Marshal(opts)
	if err != nil {
		t.Fatalf("nodeclient: %s options: %v", script, err)
	}
	return &Script{c: start(t, node, dir, script, string(optJSON))}
}

// requirePackages skips or fails t when an npm package of testdata/ is not
// installed.
func requirePackages(t testing.TB, dir string, pkgs ...string) {
	t.Helper()
	for _, pkg := range pkgs {
		_, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(pkg), "package.json"))
		testenv.Require(t, "testdata/node_modules/"+pkg, "run `npm ci` in testdata/", err == nil)
	}
}

// Send writes one command, any value that encodes to a JSON object, to the
// script's stdin.
func (s *Script) Send(cmd any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("nodeclient: encode command: %w", err)
	}
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("nodeclient: command %s is not a JSON object", b)
	}
	var name struct {
		Cmd any `json:"cmd"`
	}
	_ = json.Unmarshal(b, &name)
	return s.c.sendLine(b, fmt.Sprint(name.Cmd))
}

// Request sends cmd with a fresh numeric "id" (which it sets, replacing any)
// and returns the first message printed with that id. A message of type
// "error" is returned with an error wrapping ErrCommand.
func (s *Script) Request(ctx context.Context, cmd map[string]any) (Message, error) {
	id := int(s.nextID.Add(1))
	withID := make(map[string]any, len(cmd)+1)
	for k, v := range cmd {
		withID[k] = v
	}
	withID["id"] = id
	if err := s.Send(withID); err != nil {
		return Message{}, err
	}
	m, err := s.c.WaitFor(ctx, func(m Message) bool { return m.AckID == id })
	if err != nil {
		return Message{}, err
	}
	if m.Type == "error" {
		return m, fmt.Errorf("%w: %v: %s", ErrCommand, cmd["cmd"], m.Message)
	}
	return m, nil
}

// Next returns the oldest message not yet consumed; see Client.Next.
func (s *Script) Next(ctx context.Context) (Message, error) { return s.c.Next(ctx) }

// WaitFor returns the oldest not yet consumed message that matches; see
// Client.WaitFor.
func (s *Script) WaitFor(ctx context.Context, match func(Message) bool) (Message, error) {
	return s.c.WaitFor(ctx, match)
}

// WaitType is WaitFor of the next message of type typ.
func (s *Script) WaitType(ctx context.Context, typ string) (Message, error) {
	// Not Client.WaitType: a script's lines may carry any "nsp".
	return s.c.WaitFor(ctx, func(m Message) bool { return m.Type == typ })
}

// History returns a copy of every message printed so far, in order.
func (s *Script) History() []Message { return s.c.History() }

// Stderr returns what node has written to stderr so far.
func (s *Script) Stderr() string { return s.c.Stderr() }

// Done is closed once the process has exited and its output is queued.
func (s *Script) Done() <-chan struct{} { return s.c.Done() }

// Wait waits for the process to exit and returns its exit error (nil for
// exit status 0); see Client.Wait.
func (s *Script) Wait(ctx context.Context) error { return s.c.Wait(ctx) }

// Signal sends sig (for example syscall.SIGTERM) to the process. It returns
// an error once the process has been reaped.
func (s *Script) Signal(sig os.Signal) error {
	select {
	case <-s.c.done:
		return ErrExited
	default:
	}
	return s.c.cmd.Process.Signal(sig)
}

// Close closes the script's stdin, waits up to 5s for the process to exit
// and then kills it; see Client.Close. It runs at t's cleanup.
func (s *Script) Close() { s.c.Close() }

// Decode unmarshals the line as printed into v, for the fields of a script
// that Message has not.
func (m Message) Decode(v any) error {
	if len(m.Raw) == 0 {
		return errors.New("nodeclient: message has no raw line")
	}
	return json.Unmarshal(m.Raw, v)
}

// NodeServerOptions are the options of testdata/node-server.js, a Node
// socket.io 4.8 server with @socket.io/redis-adapter (or, in streams mode,
// @socket.io/redis-streams-adapter) on 127.0.0.1.
type NodeServerOptions struct {
	// RedisURL is the Redis the adapter uses ("redis://127.0.0.1:PORT").
	RedisURL string `json:"redisUrl"`
	// Port to listen on; zero picks a free one.
	Port int `json:"port"`
	// Mode is "classic" (createAdapter, PUBLISH/PSUBSCRIBE; the default),
	// "sharded" (createShardedAdapter, SPUBLISH/SSUBSCRIBE) or "streams"
	// (@socket.io/redis-streams-adapter's createAdapter: XADD/XREAD on one
	// stream, sessions under "sio:session:<pid>"). In streams mode the
	// server reports listening once the adapter's reader is blocked in
	// XREAD: from then on every entry added to the stream reaches it.
	Mode string `json:"mode,omitempty"`
	// Key is the channel prefix; empty means "socket.io". In streams mode
	// it is the adapter's channelPrefix, which 0.3.x uses for its ephemeral
	// messages (acks, fetchSockets, serverSideEmit) over pub/sub.
	Key string `json:"key,omitempty"`
	// SubscriptionMode is the sharded adapter's: "static", "dynamic" (the
	// default) or "dynamic-private".
	SubscriptionMode string `json:"subscriptionMode,omitempty"`
	// StreamName is the streams adapter's stream; empty means "socket.io"
	// (herald's adapter.DefaultStream).
	StreamName string `json:"streamName,omitempty"`
	// MaxDisconnectionDuration, in milliseconds, enables connection-state
	// recovery ({maxDisconnectionDuration, skipMiddlewares: false}: a
	// recovered socket passes the middleware too); zero leaves it off. Only
	// the streams mode keeps sessions in Redis, where other nodes find
	// them; then events reach clients with the stream offset as their last
	// argument, as herald's do with Config.Recovery.
	MaxDisconnectionDuration int64 `json:"maxDisconnectionDuration,omitempty"`
}

// NodeServer is a running node-server.js.
type NodeServer struct {
	*Script
	// Port is the port it listens on, URL its base URL
	// ("http://127.0.0.1:PORT"), the URL for clients of namespace "/".
	Port int
	URL  string

	http *http.Client
}

// StartNodeServer starts node-server.js and waits, within ctx, until it
// listens. It fails t on error, so call it from the test's goroutine.
func StartNodeServer(ctx context.Context, t testing.TB, opts NodeServerOptions) *NodeServer {
	t.Helper()
	if opts.Mode == "streams" {
		requirePackages(t, testenv.TestdataDir(t), "@socket.io/redis-streams-adapter")
	}
	s := StartScript(t, "node-server.js", opts)
	m, err := s.WaitFor(ctx, func(m Message) bool { return m.Type == "listening" || m.Type == "error" })
	if err != nil {
		t.Fatalf("nodeclient: node-server.js did not start: %v", err)
	}
	var l struct {
		Port int `json:"port"`
	}
	if m.Type != "listening" || m.Decode(&l) != nil || l.Port == 0 {
		t.Fatalf("nodeclient: node-server.js did not start: %s%s", m, s.c.stderrSuffix())
	}
	// No keep-alive: no idle connection (and its goroutines) outlives a call.
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &NodeServer{
		Script: s,
		Port:   l.Port,
		URL:    "http://127.0.0.1:" + strconv.Itoa(l.Port),
		http:   &http.Client{Transport: tr},
	}
}

// EmitRequest is the body of node-server.js's POST /emit: the event goes to
// the union of "user:"+User, Room and Rooms, less Except; with no target to
// every client of the namespace Nsp ("/" when empty). In Args, binary
// values are written {"$binary":"<base64>"} and dates {"$date":ms}.
type EmitRequest struct {
	User   string   `json:"user,omitempty"`
	Room   string   `json:"room,omitempty"`
	Rooms  []string `json:"rooms,omitempty"`
	Except []string `json:"except,omitempty"`
	Nsp    string   `json:"nsp,omitempty"`
	Event  string   `json:"event"`
	Args   []any    `json:"args"`
}

// Emit posts req to /emit. It returns once the server has handed the
// publication to Redis (and emitted to its own matching sockets).
func (s *NodeServer) Emit(ctx context.Context, req EmitRequest) error {
	req.Args = nonNil(req.Args)
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("nodeclient: encode emit: %w", err)
	}
	var resp struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := s.call(ctx, http.MethodPost, "/emit", body, &resp); err != nil {
		return err
	}
	if !resp.OK {
		return fmt.Errorf("%w: POST /emit: %s", ErrCommand, resp.Error)
	}
	return nil
}

// Stats returns the number of sockets connected to the server's "/".
func (s *NodeServer) Stats(ctx context.Context) (sockets int, err error) {
	var resp struct {
		Sockets *int `json:"sockets"`
	}
	if err := s.call(ctx, http.MethodGet, "/stats", nil, &resp); err != nil {
		return 0, err
	}
	if resp.Sockets == nil {
		return 0, fmt.Errorf("%w: GET /stats: no sockets field", ErrCommand)
	}
	return *resp.Sockets, nil
}

// WaitConnection waits for the server to print the connection of a socket of
// user (to "/" when nsp is empty). The line comes once the socket has joined
// "user:"+user and, in the sharded dynamic modes, once Redis has confirmed
// the subscription to that room's channel: from then on a publication to
// the room reaches the socket. Its Recovered tells whether the socket's
// connection state was recovered (socket.recovered).
func (s *NodeServer) WaitConnection(ctx context.Context, user, nsp string) (Message, error) {
	if nsp == "" {
		nsp = "/"
	}
	return s.WaitFor(ctx, func(m Message) bool {
		if m.Type != "connection" {
			return false
		}
		var c struct {
			User string `json:"user"`
			Nsp  string `json:"nsp"`
		}
		return m.Decode(&c) == nil && c.User == user && c.Nsp == nsp
	})
}

func (s *NodeServer) call(ctx context.Context, method, path string, body []byte, into any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		return fmt.Errorf("nodeclient: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("nodeclient: %s %s: %w%s", method, path, err, s.c.stderrSuffix())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("nodeclient: %s %s: %w", method, path, err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("nodeclient: %s %s: status %d, body %q: %w", method, path, resp.StatusCode, b, err)
	}
	return nil
}

// EmitterOptions are the options of testdata/redis-emitter.js, an
// @socket.io/redis-emitter Emitter over a node-redis client. The emitter
// has no sharded mode: it PUBLISHes on the classic adapter's channels.
type EmitterOptions struct {
	RedisURL string `json:"redisUrl"`
	// Key is the channel prefix; empty means "socket.io".
	Key string `json:"key,omitempty"`
}

// Emitter is a running redis-emitter.js.
type Emitter struct {
	*Script
}

// StartEmitter starts redis-emitter.js and waits, within ctx, until its
// Redis client is connected. It fails t on error, so call it from the
// test's goroutine.
func StartEmitter(ctx context.Context, t testing.TB, opts EmitterOptions) *Emitter {
	t.Helper()
	s := StartScript(t, "redis-emitter.js", opts)
	m, err := s.WaitFor(ctx, func(m Message) bool { return m.Type == "ready" || m.Type == "error" })
	if err != nil {
		t.Fatalf("nodeclient: redis-emitter.js did not start: %v", err)
	}
	if m.Type != "ready" {
		t.Fatalf("nodeclient: redis-emitter.js did not start: %s%s", m, s.c.stderrSuffix())
	}
	return &Emitter{Script: s}
}

// Emission is one emitter.of(Nsp).to(To).except(Except).emit(Event,
// ...Args). No To broadcasts to every client of the namespace. In Args,
// binary values are written {"$binary":"<base64>"} and dates {"$date":ms}.
type Emission struct {
	To       []string
	Except   []string
	Nsp      string // "/" when empty
	Event    string
	Args     []any
	Volatile bool
	Compress *bool
}

// Published is one PUBLISH the emitter made: the channel, the payload bytes
// as sent (msgpack for an emit) and the number of Redis clients that
// received it (the PUBLISH reply).
type Published struct {
	Channel   string `json:"channel"`
	Payload   []byte `json:"payload"`
	Receivers int    `json:"receivers"`
}

// Emit runs e and returns what it published, once Redis has answered every
// PUBLISH. An emit publishes exactly once.
func (e *Emitter) Emit(ctx context.Context, em Emission) ([]Published, error) {
	cmd := map[string]any{"cmd": "emit", "event": em.Event, "args": nonNil(em.Args)}
	if em.To != nil {
		cmd["to"] = em.To
	}
	if em.Except != nil {
		cmd["except"] = em.Except
	}
	if em.Nsp != "" {
		cmd["nsp"] = em.Nsp
	}
	if em.Volatile {
		cmd["volatile"] = true
	}
	if em.Compress != nil {
		cmd["compress"] = *em.Compress
	}
	return e.Do(ctx, cmd)
}

// Do runs any command of redis-emitter.js ("emit", "socketsJoin",
// "socketsLeave", "disconnectSockets", "serverSideEmit"; see the script) as
// a Request and returns what it published.
func (e *Emitter) Do(ctx context.Context, cmd map[string]any) ([]Published, error) {
	m, err := e.Request(ctx, cmd)
	if err != nil {
		return nil, err
	}
	var r struct {
		Published []Published `json:"published"`
	}
	if err := m.Decode(&r); err != nil {
		return nil, fmt.Errorf("nodeclient: %s: %w", m, err)
	}
	return r.Published, nil
}
