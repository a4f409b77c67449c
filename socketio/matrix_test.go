package socketio_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

// matrixClient is one socket.io-client release that TestClientMatrix runs,
// by its npm alias in testdata/package.json, with the APIs it has.
type matrixClient struct {
	pkg, version string
	timeout      bool // socket.timeout(), 4.4+
	emitWithAck  bool // socket.emitWithAck(), 4.6+
	recovery     bool // connection-state recovery (socket.recovered), 4.6+
}

var matrixClients = []matrixClient{
	{pkg: "socket.io-client-4.0", version: "4.0.2"},
	{pkg: "socket.io-client-4.4", version: "4.4.1", timeout: true},
	{pkg: "socket.io-client-4.7", version: "4.7.5", timeout: true, emitWithAck: true, recovery: true},
	{pkg: "socket.io-client", version: "4.8.4", timeout: true, emitWithAck: true, recovery: true},
}

type matrixTransport struct {
	name       string
	transports []string
	upgrade    bool
}

var matrixTransports = []matrixTransport{
	{"websocket", []string{"websocket"}, false},
	{"polling", []string{"polling"}, false},
	{"upgrade", []string{"polling", "websocket"}, true},
}

var (
	slowEvent = events.Define[echoPayload]("slow") // acks only when released
	ask2Event = events.Define[echoPayload]("ask2") // acked by hand
	fileEvent = events.Define[filePayload]("file") // binary data both ways
)

// filePayload carries binary data, at the top level and nested.
type filePayload struct {
	Name  string         `json:"name"`
	Data  events.Bytes   `json:"data"`
	Parts []events.Bytes `json:"parts,omitempty"`
	Meta  struct {
		Thumb events.Bytes `json:"thumb"`
	} `json:"meta"`
}

// matrixPath is the custom Config.Path of the matrix's path server.
const matrixPath = "/rt/herald/"

// matrixNow is the payload clock of the matrix's servers, so that a
// delivered payload can be compared byte for byte.
var matrixNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// socketCatcher hands the *socketio.Socket of an "echo" handler call to the
// test waiting for that user's socket.
type socketCatcher struct {
	mu sync.Mutex
	ch map[string]chan *socketio.Socket
}

func (c *socketCatcher) chanFor(userID string) chan *socketio.Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(map[string]chan *socketio.Socket)
	}
	ch, ok := c.ch[userID]
	if !ok {
		ch = make(chan *socketio.Socket, 16)
		c.ch[userID] = ch
	}
	return ch
}

func (c *socketCatcher) put(s *socketio.Socket) {
	select {
	case c.chanFor(s.UserID()) <- s:
	default:
	}
}

// socket emits echo and returns the server's Socket of the client (which
// must be userID's only client on that server).
func (c *socketCatcher) socket(t *testing.T, ctx context.Context, cl *nodeclient.Client, userID string) *socketio.Socket {
	t.Helper()
	args, err := cl.EmitWithAck(ctx, "echo", 0, map[string]any{"text": "who"})
	must(t, err)
	if len(args) != 1 || string(args[0]) != `{"text":"WHO"}` {
		t.Fatalf("echo ack = %s", args)
	}
	select {
	case s := <-c.chanFor(userID):
		return s
	case <-ctx.Done():
		t.Fatalf("no socket for %s", userID)
		return nil
	}
}

// registerFileHandler registers "file", which acks what it received, each
// binary value reversed, and emits that back to the socket as a "file"
// event.
func registerFileHandler(t *testing.T, ts *testServer) {
	t.Helper()
	must(t, socketio.OnAck(ts.Server, fileEvent, func(ctx context.Context, s *socketio.Socket, p filePayload) (filePayload, error) {
		slices.Reverse(p.Data)
		for _, part := range p.Parts {
			slices.Reverse(part)
		}
		slices.Reverse(p.Meta.Thumb)
		p.Name += " back"
		return p, socketio.Emit(ctx, s, fileEvent, p)
	}))
}

// registerMatrixHandlers registers "echo" (acks the text upper-cased and
// records the socket) and "slow" (acks only once release is closed).
func registerMatrixHandlers(t *testing.T, ts *testServer, catcher *socketCatcher, release <-chan struct{}) {
	t.Helper()
	must(t, socketio.OnAck(ts.Server, echoEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		catcher.put(s)
		return echoPayload{Text: strings.ToUpper(p.Text)}, nil
	}))
	registerFileHandler(t, ts)
	must(t, socketio.OnAck(ts.Server, slowEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return p, nil
	}))
}

// TestClientMatrix runs herald's client-facing behaviour against every
// socket.io-client release pinned in testdata/package.json, over each
// transport: handshake auth, server emits, acks both ways (callback,
// timeout() and emitWithAck() APIs where the release has them),
// reconnection with a fresh token from an auth callback, a custom path, and
// connection-state recovery (4.6+; older releases must still reconnect to a
// recovery-enabled server, as a new session).
func TestClientMatrix(t *testing.T) {
	mainSrv := startServer(t, socketio.Config{Now: func() time.Time { return matrixNow }})
	pathSrv := startServer(t, socketio.Config{Path: matrixPath, Now: func() time.Time { return matrixNow }})
	recov := startServer(t, socketio.Config{Recovery: time.Minute})
	release := make(chan struct{}) // never closed: "slow" acks when its socket goes
	var mainSockets, recovSockets socketCatcher
	registerMatrixHandlers(t, mainSrv, &mainSockets, release)
	registerMatrixHandlers(t, recov, &recovSockets, release)

	for _, cv := range matrixClients {
		t.Run(cv.version, func(t *testing.T) {
			t.Parallel()
			for _, tr := range matrixTransports {
				t.Run(tr.name, func(t *testing.T) {
					t.Parallel()
					user := "mx-" + cv.version + "-" + tr.name
					t.Run("basics", func(t *testing.T) {
						t.Parallel()
						matrixBasics(t, mainSrv, &mainSockets, cv, tr, user)
					})
					t.Run("binary", func(t *testing.T) {
						t.Parallel()
						matrixBinary(t, mainSrv, cv, tr, user+"-b")
					})
					t.Run("auth-callback-reconnect", func(t *testing.T) {
						t.Parallel()
						matrixReconnect(t, mainSrv, cv, tr, user+"-r")
					})
					t.Run("custom-path", func(t *testing.T) {
						t.Parallel()
						matrixPathCase(t, pathSrv, cv, tr, user+"-p")
					})
					t.Run("recovery", func(t *testing.T) {
						t.Parallel()
						matrixRecovery(t, recov, &recovSockets, cv, tr, user+"-rec")
					})
				})
			}
		})
	}
}

func matrixOptions(ts *testServer, cv matrixClient, tr matrixTransport) nodeclient.Options {
	return nodeclient.Options{
		URL:        ts.URL,
		Package:    cv.pkg,
		Transports: tr.transports,
		Upgrade:    nodeclient.Upgrade(tr.upgrade),
	}
}

// reconnectOptions: reconnection on, quickly and without jitter.
var reconnectOptions = map[string]any{"reconnectionDelay": 100, "reconnectionDelayMax": 100, "randomizationFactor": 0}

// waitConnected waits for connect (failing on connect_error), checks the
// client release, the upgrade when tr asks for one, and the server's
// authenticated greeting for userID.
func waitConnected(t *testing.T, ctx context.Context, c *nodeclient.Client, cv matrixClient, tr matrixTransport, userID string) nodeclient.Message {
	t.Helper()
	info, err := c.Info(ctx)
	must(t, err)
	if info.Version != cv.version {
		t.Fatalf("%s is socket.io-client %s, want %s (run npm ci in testdata)", cv.pkg, info.Version, cv.version)
	}
	m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
	must(t, err)
	if m.Type != "connect" {
		t.Fatalf("connect: %v", m)
	}
	// A client that upgrades may have done so before connect is reported
	// (4.8 probes at once); the upgrade message is checked below.
	if want := tr.transports[0]; m.Transport != want && !tr.upgrade {
		t.Fatalf("connected over %q, want %q", m.Transport, want)
	}
	waitAuthenticated(t, ctx, c, userID)
	if tr.upgrade {
		u, err := c.WaitType(ctx, "upgrade")
		must(t, err)
		if u.Transport != "websocket" {
			t.Fatalf("upgrade: %v", u)
		}
	}
	return m
}

func waitAuthenticated(t *testing.T, ctx context.Context, c *nodeclient.Client, userID string) {
	t.Helper()
	a, err := c.WaitEvent(ctx, "authenticated")
	must(t, err)
	if p := decodeArg[events.AuthenticatedPayload](t, a); p.UserID != userID {
		t.Fatalf("authenticated as %q, want %q", p.UserID, userID)
	}
}

// matrixBasics: auth object, EmitToUser (exact JSON), client->server acks
// with the callback, timeout() and emitWithAck() APIs, a timeout() that
// fires, and a server->client ack.
func matrixBasics(t *testing.T, ts *testServer, catcher *socketCatcher, cv matrixClient, tr matrixTransport, user string) {
	ctx := testCtx(t, 30*time.Second)
	opts := matrixOptions(ts, cv, tr)
	opts.Auth = map[string]any{"token": ts.token(t, user)}
	c := nodeclient.Start(t, opts)
	waitConnected(t, ctx, c, cv, tr, user)

	// server -> user, byte for byte.
	must(t, ts.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "j-" + user, Progress: 40, Message: "héllo \"q\""}))
	m, err := c.WaitEvent(ctx, "job_progress")
	must(t, err)
	want := fmt.Sprintf(`{"jobId":"j-%s","progress":40,"message":"héllo \"q\"","timestamp":"2025-01-02T03:04:05Z"}`, user)
	if len(m.Args) != 1 || string(m.Args[0]) != want || m.HasAck {
		t.Fatalf("job_progress = %s (hasAck %v), want [%s]", m.Args, m.HasAck, want)
	}

	// client -> server with ack, callback API; this also finds the socket.
	sock := catcher.socket(t, ctx, c, user)

	// socket.volatile: what the client sends is handled like any event.
	// The client drops a volatile packet while its transport is busy (a
	// long-poll POST in flight, an upgrade), so a few may be needed.
	var args []json.RawMessage
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		a, err := c.EmitVolatileWithAck(actx, "echo", map[string]any{"text": "volatile"})
		cancel()
		if err == nil {
			args = a
			break
		}
		if attempt == 20 {
			t.Fatalf("no volatile emit was acked in 20 attempts: %v", err)
		}
	}
	if len(args) != 1 || string(args[0]) != `{"text":"VOLATILE"}` {
		t.Fatalf("volatile.emit ack = %s", args)
	}

	// timeout() API.
	args, err = c.EmitWithAck(ctx, "echo", 5*time.Second, map[string]any{"text": "timeout"})
	if cv.timeout {
		must(t, err)
		if len(args) != 1 || string(args[0]) != `{"text":"TIMEOUT"}` {
			t.Fatalf("timeout().emit ack = %s", args)
		}
	} else if !errors.Is(err, nodeclient.ErrCommand) {
		t.Fatalf("timeout() on %s: err = %v, want ErrCommand", cv.version, err)
	}

	// emitWithAck() API, with and without timeout().
	for _, d := range []time.Duration{0, 5 * time.Second} {
		args, err := c.EmitWithAckPromise(ctx, "echo", d, map[string]any{"text": "promise"})
		if cv.emitWithAck {
			must(t, err)
			if len(args) != 1 || string(args[0]) != `{"text":"PROMISE"}` {
				t.Fatalf("emitWithAck (timeout %v) = %s", d, args)
			}
		} else if !errors.Is(err, nodeclient.ErrCommand) {
			t.Fatalf("emitWithAck on %s: err = %v, want ErrCommand", cv.version, err)
		}
	}

	// server -> client with ack.
	must(t, c.Send(map[string]any{"cmd": "autoAck", "event": "ask", "args": []any{map[string]any{"text": "answer " + cv.version}}}))
	syncClient(t, ctx, c)
	got, err := socketio.EmitWithAck[echoPayload, echoPayload](ctx, sock, askEvent, echoPayload{Text: "question"})
	must(t, err)
	if got.Text != "answer "+cv.version {
		t.Fatalf("client ack = %+v", got)
	}
	// an ack the client answers by hand, after the event was reported.
	type reply struct {
		p   echoPayload
		err error
	}
	replies := make(chan reply, 1)
	go func() {
		p, err := socketio.EmitWithAck[echoPayload, echoPayload](ctx, sock, ask2Event, echoPayload{Text: "q2"})
		replies <- reply{p, err}
	}()
	ev, err := c.WaitEvent(ctx, "ask2")
	must(t, err)
	if !ev.HasAck || len(ev.Args) != 1 || !strings.Contains(string(ev.Args[0]), `"text":"q2"`) {
		t.Fatalf("ask2 = %v", ev)
	}
	must(t, c.Ack(ev.Seq, map[string]any{"text": "a2"}))
	select {
	case r := <-replies:
		if r.err != nil || r.p.Text != "a2" {
			t.Fatalf("manual ack = %+v, %v", r.p, r.err)
		}
	case <-ctx.Done():
		t.Fatal("manual ack not received")
	}

	// a timeout() that fires: "slow" acks only when the socket goes. Last,
	// because it holds the socket's handler queue.
	if cv.timeout {
		_, err := c.EmitWithAck(ctx, "slow", 200*time.Millisecond, map[string]any{"text": "late"})
		if !errors.Is(err, nodeclient.ErrAck) || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("slow with timeout(): err = %v, want ack timeout", err)
		}
	}
}

// bin is how client.js writes a binary value (a Buffer) and reads one to
// send as a Buffer.
func bin(b []byte) map[string]any {
	return map[string]any{"$binary": base64.StdEncoding.EncodeToString(b)}
}

func binJSON(b []byte) string {
	j, _ := json.Marshal(bin(b))
	return string(j)
}

// matrixBinary: Buffers nested in a client's payload reach a typed handler
// as events.Bytes, and events.Bytes reach the client as Buffers, in an ack,
// an Emit to the socket and an EmitToUser, empty and large ones included.
func matrixBinary(t *testing.T, ts *testServer, cv matrixClient, tr matrixTransport, user string) {
	ctx := testCtx(t, 30*time.Second)
	opts := matrixOptions(ts, cv, tr)
	opts.Auth = map[string]any{"token": ts.token(t, user)}
	c := nodeclient.Start(t, opts)
	waitConnected(t, ctx, c, cv, tr, user)

	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	reversed := func(b []byte) []byte {
		r := slices.Clone(b)
		slices.Reverse(r)
		return r
	}
	args, err := c.EmitWithAck(ctx, "file", 0, map[string]any{
		"name":  "f",
		"data":  bin([]byte{1, 2, 3}),
		"parts": []any{bin(nil), bin(big)},
		"meta":  map[string]any{"thumb": bin([]byte{0xff, 0})},
	})
	must(t, err)
	want := fmt.Sprintf(`{"name":"f back","data":%s,"parts":[%s,%s],"meta":{"thumb":%s}}`,
		binJSON([]byte{3, 2, 1}), binJSON(nil), binJSON(reversed(big)), binJSON([]byte{0, 0xff}))
	if len(args) != 1 || !sameJSON(args[0], want) {
		t.Fatalf("file ack = %.300s\nwant %.300s", args, want)
	}
	m, err := c.WaitEvent(ctx, "file")
	must(t, err)
	wantEv := strings.TrimSuffix(want, "}") + `,"timestamp":"2025-01-02T03:04:05Z"}`
	if len(m.Args) != 1 || !sameJSON(m.Args[0], wantEv) {
		t.Fatalf("file event = %.300s\nwant %.300s", m.Args, wantEv)
	}

	// Through the Broker, to every socket of the user.
	p := filePayload{Name: "pushed", Data: events.Bytes(big[:10])}
	p.Meta.Thumb = events.Bytes{}
	must(t, ts.EmitToUser(ctx, user, fileEvent, p))
	m, err = c.WaitEvent(ctx, "file")
	must(t, err)
	wantPush := fmt.Sprintf(`{"name":"pushed","data":%s,"meta":{"thumb":%s},"timestamp":"2025-01-02T03:04:05Z"}`, binJSON(big[:10]), binJSON(nil))
	if len(m.Args) != 1 || !sameJSON(m.Args[0], wantPush) {
		t.Fatalf("pushed file = %.300s\nwant %.300s", m.Args, wantPush)
	}

	// A client that sends text where the handler wants binary data gets a
	// typed error.
	args, err = c.EmitWithAck(ctx, "file", 0, map[string]any{"name": "f", "data": 12})
	must(t, err)
	if len(args) != 1 || !strings.Contains(string(args[0]), `"code":"invalid_payload"`) {
		t.Fatalf("bad file ack = %s", args)
	}
}

// sameJSON compares two JSON texts as values (a payload with binary data
// is not delivered byte for byte: see wireArg).
func sameJSON(got []byte, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

// matrixReconnect: auth as a callback; after setAuth with another user's
// token and a dropped connection, the client reconnects as that user.
func matrixReconnect(t *testing.T, ts *testServer, cv matrixClient, tr matrixTransport, user string) {
	ctx := testCtx(t, 30*time.Second)
	opts := matrixOptions(ts, cv, tr)
	opts.Auth = map[string]any{"token": ts.token(t, user+"1")}
	opts.AuthCallback = true
	opts.Reconnection = true
	opts.Extra = reconnectOptions
	c := nodeclient.Start(t, opts)
	first := waitConnected(t, ctx, c, cv, tr, user+"1")

	must(t, c.Send(map[string]any{"cmd": "setAuth", "auth": map[string]any{"token": ts.token(t, user+"2")}}))
	must(t, c.Send(map[string]any{"cmd": "drop"}))
	// The client closed its engine itself: it reports "forced close" (the
	// server sees "transport close").
	if _, err := c.WaitType(ctx, "disconnect"); err != nil {
		t.Fatal(err)
	}
	m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
	must(t, err)
	if m.Type != "connect" || m.ID == first.ID || m.Recovered {
		t.Fatalf("reconnect: %v (first %v)", m, first)
	}
	waitAuthenticated(t, ctx, c, user+"2")
	must(t, ts.EmitToUser(ctx, user+"2", events.JobCompleted, events.JobCompletedPayload{JobID: "after-reconnect"}))
	ev, err := c.WaitEvent(ctx, "job_completed")
	must(t, err)
	if p := decodeArg[events.JobCompletedPayload](t, ev); p.JobID != "after-reconnect" {
		t.Fatalf("job_completed = %+v", p)
	}
}

// matrixPathCase: server Config.Path and client path.
func matrixPathCase(t *testing.T, ts *testServer, cv matrixClient, tr matrixTransport, user string) {
	ctx := testCtx(t, 30*time.Second)
	opts := matrixOptions(ts, cv, tr)
	opts.Path = matrixPath
	opts.Auth = map[string]any{"token": ts.token(t, user)}
	c := nodeclient.Start(t, opts)
	waitConnected(t, ctx, c, cv, tr, user)
	must(t, ts.EmitToUser(ctx, user, events.JobFailed, events.JobFailedPayload{JobID: "p", Error: "e"}))
	m, err := c.WaitEvent(ctx, "job_failed")
	must(t, err)
	want := `{"jobId":"p","error":"e","timestamp":"2025-01-02T03:04:05Z"}`
	if len(m.Args) != 1 || string(m.Args[0]) != want {
		t.Fatalf("job_failed = %s, want [%s]", m.Args, want)
	}
}

// matrixRecovery: a dropped client reconnects to a Recovery server; 4.6+
// gets its session back (socket.recovered, same id) and the events emitted
// meanwhile, in order; older releases get a new session.
func matrixRecovery(t *testing.T, ts *testServer, catcher *socketCatcher, cv matrixClient, tr matrixTransport, user string) {
	ctx := testCtx(t, 30*time.Second)
	opts := matrixOptions(ts, cv, tr)
	opts.Auth = map[string]any{"token": ts.token(t, user)}
	opts.Reconnection = true
	opts.Extra = reconnectOptions
	c := nodeclient.Start(t, opts)
	first := waitConnected(t, ctx, c, cv, tr, user)
	if first.Recovered {
		t.Fatalf("first connection recovered: %v", first)
	}
	sock := catcher.socket(t, ctx, c, user)
	must(t, ts.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "seen"}))
	if _, err := c.WaitEvent(ctx, "job_progress"); err != nil {
		t.Fatal(err)
	}
	must(t, c.Send(map[string]any{"cmd": "drop"}))
	if _, err := c.WaitType(ctx, "disconnect"); err != nil {
		t.Fatal(err)
	}
	// The client waits reconnectionDelay (100 ms) before it reconnects;
	// emit once the server has seen the disconnect. If the client was
	// faster, the events still come, live instead of replayed.
	eventually(t, "server to see the disconnect", func() bool { return sock.Context().Err() != nil })
	const missed = 3
	for i := range missed {
		must(t, ts.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: fmt.Sprint("missed", i), Progress: i}))
	}
	m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
	must(t, err)
	if m.Type != "connect" {
		t.Fatalf("reconnect: %v", m)
	}
	if cv.recovery {
		if !m.Recovered || m.ID != first.ID {
			t.Fatalf("reconnected as %s, want socket %s recovered", m.Raw, first.ID)
		}
		for i := range missed {
			ev, err := c.WaitEvent(ctx, "job_progress")
			must(t, err)
			if p := decodeArg[events.JobProgressPayload](t, ev); p.JobID != fmt.Sprint("missed", i) {
				t.Fatalf("replayed event %d = %+v", i, p)
			}
		}
		return
	}
	// No recovery in this release: a new session, greeted again, that
	// works; the events emitted while it was away are lost.
	if m.Recovered || m.ID == first.ID {
		t.Fatalf("%s reconnected as %s, want a new session (not %s)", cv.version, m.Raw, first.ID)
	}
	waitAuthenticated(t, ctx, c, user)
	must(t, ts.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "after"}))
	ev, err := c.WaitEvent(ctx, "job_progress")
	must(t, err)
	if p := decodeArg[events.JobProgressPayload](t, ev); p.JobID != "after" {
		t.Fatalf("after reconnect got %+v, want only the new event", p)
	}
}
