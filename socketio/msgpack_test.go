package socketio_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

// msgpackClients are the socket.io-client releases TestMsgpackParser runs
// with socket.io-msgpack-parser (testdata/package.json pins 3.0.2): the
// oldest and the newest of the matrix.
var msgpackClients = []matrixClient{matrixClients[0], matrixClients[len(matrixClients)-1]}

// TestMsgpackParser runs a server with Config.Parser = ParserMsgpack
// against socket.io-client with socket.io-msgpack-parser over each
// transport: handshake auth and the greeting, an EmitToUser arriving with
// its JSON unchanged (member order included), acks both ways, binary data
// both ways (Buffers nested in a payload, events.Bytes in an ack, an Emit
// and an EmitToUser), and a rejected token's connect_error.
func TestMsgpackParser(t *testing.T) {
	ts := startServer(t, socketio.Config{Parser: socketio.ParserMsgpack, Now: func() time.Time { return matrixNow }})
	var sockets socketCatcher
	registerMatrixHandlers(t, ts, &sockets, make(chan struct{}))

	for _, cv := range msgpackClients {
		t.Run(cv.version, func(t *testing.T) {
			t.Parallel()
			for _, tr := range matrixTransports {
				t.Run(tr.name, func(t *testing.T) {
					t.Parallel()
					user := "mp-" + cv.version + "-" + tr.name
					t.Run("basics", func(t *testing.T) {
						t.Parallel()
						msgpackBasics(t, ts, &sockets, cv, tr, user)
					})
					t.Run("binary", func(t *testing.T) {
						t.Parallel()
						msgpackBinary(t, ts, cv, tr, user+"-b")
					})
					t.Run("bad-token", func(t *testing.T) {
						t.Parallel()
						ctx := testCtx(t, 30*time.Second)
						opts := msgpackOptions(ts, cv, tr)
						opts.Auth = map[string]any{"token": "not-a-jwt"}
						c := nodeclient.Start(t, opts)
						m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
						must(t, err)
						var data map[string]any
						if m.Type != "connect_error" || m.Message != "unauthorized" || json.Unmarshal(m.Data, &data) != nil ||
							len(data) != 1 || data["code"] != auth.CodeTokenInvalid {
							t.Fatalf("got %v, want connect_error unauthorized with data {code: %q}", m, auth.CodeTokenInvalid)
						}
					})
				})
			}
		})
	}
}

func msgpackOptions(ts *testServer, cv matrixClient, tr matrixTransport) nodeclient.Options {
	opts := matrixOptions(ts, cv, tr)
	opts.Parser = socketio.ParserMsgpack
	return opts
}

// msgpackBasics: connect with auth, the greeting, EmitToUser byte for
// byte, a client->server ack and a server->client ack.
func msgpackBasics(t *testing.T, ts *testServer, catcher *socketCatcher, cv matrixClient, tr matrixTransport, user string) {
	ctx := testCtx(t, 30*time.Second)
	opts := msgpackOptions(ts, cv, tr)
	opts.Auth = map[string]any{"token": ts.token(t, user)}
	c := nodeclient.Start(t, opts)
	waitConnected(t, ctx, c, cv, tr, user)

	// The client prints JSON.stringify of what notepack.io decoded: the
	// same bytes as the event's JSON when numbers, strings and member
	// order survived MessagePack.
	must(t, ts.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "j-" + user, Progress: 40, Message: "héllo \"q\""}))
	m, err := c.WaitEvent(ctx, "job_progress")
	must(t, err)
	want := fmt.Sprintf(`{"jobId":"j-%s","progress":40,"message":"héllo \"q\"","timestamp":"2025-01-02T03:04:05Z"}`, user)
	if len(m.Args) != 1 || string(m.Args[0]) != want || m.HasAck {
		t.Fatalf("job_progress = %s (hasAck %v), want [%s]", m.Args, m.HasAck, want)
	}

	// client -> server with ack (echoEvent); this also finds the socket.
	sock := catcher.socket(t, ctx, c, user)

	// server -> client with ack.
	must(t, c.Send(map[string]any{"cmd": "autoAck", "event": "ask", "args": []any{map[string]any{"text": "answer " + cv.version}}}))
	syncClient(t, ctx, c)
	got, err := socketio.EmitWithAck[echoPayload, echoPayload](ctx, sock, askEvent, echoPayload{Text: "question"})
	must(t, err)
	if got.Text != "answer "+cv.version {
		t.Fatalf("client ack = %+v", got)
	}
}

// msgpackBinary: Buffers nested in a client's payload reach the "file"
// handler as events.Bytes, which reach the client as Buffers in the ack,
// the handler's Emit and an EmitToUser.
func msgpackBinary(t *testing.T, ts *testServer, cv matrixClient, tr matrixTransport, user string) {
	ctx := testCtx(t, 30*time.Second)
	opts := msgpackOptions(ts, cv, tr)
	opts.Auth = map[string]any{"token": ts.token(t, user)}
	c := nodeclient.Start(t, opts)
	waitConnected(t, ctx, c, cv, tr, user)

	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	reversed := slices.Clone(big)
	slices.Reverse(reversed)
	args, err := c.EmitWithAck(ctx, "file", 0, map[string]any{
		"name":  "f",
		"data":  bin([]byte{1, 2, 3}),
		"parts": []any{bin(nil), bin(big)},
		"meta":  map[string]any{"thumb": bin([]byte{0xff, 0})},
	})
	must(t, err)
	want := fmt.Sprintf(`{"name":"f back","data":%s,"parts":[%s,%s],"meta":{"thumb":%s}}`,
		binJSON([]byte{3, 2, 1}), binJSON(nil), binJSON(reversed), binJSON([]byte{0, 0xff}))
	if len(args) != 1 || !sameJSON(args[0], want) {
		t.Fatalf("file ack = %.300s\nwant %.300s", args, want)
	}
	m, err := c.WaitEvent(ctx, "file")
	must(t, err)
	wantEv := strings.TrimSuffix(want, "}") + `,"timestamp":"2025-01-02T03:04:05Z"}`
	if len(m.Args) != 1 || !sameJSON(m.Args[0], wantEv) {
		t.Fatalf("file event = %.300s\nwant %.300s", m.Args, wantEv)
	}

	p := filePayload{Name: "pushed", Data: events.Bytes(big[:10])}
	p.Meta.Thumb = events.Bytes{}
	must(t, ts.EmitToUser(ctx, user, fileEvent, p))
	m, err = c.WaitEvent(ctx, "file")
	must(t, err)
	wantPush := fmt.Sprintf(`{"name":"pushed","data":%s,"meta":{"thumb":%s},"timestamp":"2025-01-02T03:04:05Z"}`, binJSON(big[:10]), binJSON(nil))
	if len(m.Args) != 1 || !sameJSON(m.Args[0], wantPush) {
		t.Fatalf("pushed file = %.300s\nwant %.300s", m.Args, wantPush)
	}
}

// TestMsgpackRecovery: connection-state recovery with the msgpack parser
// (the session id in CONNECT, the offset as the last argument of every
// event, the replayed events).
func TestMsgpackRecovery(t *testing.T) {
	ts := startServer(t, socketio.Config{Parser: socketio.ParserMsgpack, Recovery: time.Minute})
	var sockets socketCatcher
	registerMatrixHandlers(t, ts, &sockets, make(chan struct{}))
	cv := msgpackClients[len(msgpackClients)-1]
	for _, tr := range matrixTransports[:2] { // websocket, polling
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 30*time.Second)
			user := "mp-rec-" + tr.name
			opts := msgpackOptions(ts, cv, tr)
			opts.Auth = map[string]any{"token": ts.token(t, user)}
			opts.Reconnection = true
			opts.Extra = reconnectOptions
			c := nodeclient.Start(t, opts)
			first := waitConnected(t, ctx, c, cv, tr, user)
			sock := sockets.socket(t, ctx, c, user)
			// The client recovers from the offset of the last event it got.
			must(t, ts.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: "seen"}))
			if _, err := c.WaitEvent(ctx, "job_progress"); err != nil {
				t.Fatal(err)
			}
			must(t, c.Send(map[string]any{"cmd": "drop"}))
			if _, err := c.WaitType(ctx, "disconnect"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "server to see the disconnect", func() bool { return sock.Context().Err() != nil })
			for i := range 3 {
				must(t, ts.EmitToUser(ctx, user, events.JobProgress, events.JobProgressPayload{JobID: fmt.Sprint("missed", i), Progress: i}))
			}
			m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
			must(t, err)
			if m.Type != "connect" || !m.Recovered || m.ID != first.ID {
				t.Fatalf("reconnected as %s, want socket %s recovered", m.Raw, first.ID)
			}
			for i := range 3 {
				ev, err := c.WaitEvent(ctx, "job_progress")
				must(t, err)
				if p := decodeArg[events.JobProgressPayload](t, ev); p.JobID != fmt.Sprint("missed", i) {
					t.Fatalf("replayed event %d = %+v", i, p)
				}
			}
		})
	}
}

// TestMsgpackParserMismatch: every client of a server must use its parser.
// A default-parser client sends its CONNECT packet as text, which the
// msgpack server refuses by closing the connection: the client never
// connects and gets no connect_error, only "disconnect" with reason
// "transport close" (and, with reconnection on, it would retry forever).
// A msgpack client fares the same against a default server, whose parser
// refuses a binary message outside a binary packet.
func TestMsgpackParserMismatch(t *testing.T) {
	msgpackSrv := startServer(t, socketio.Config{Parser: socketio.ParserMsgpack})
	defaultSrv := startServer(t, socketio.Config{})
	cases := []struct {
		name   string
		ts     *testServer
		parser string
	}{
		{"default client, msgpack server", msgpackSrv, socketio.ParserDefault},
		{"msgpack client, default server", defaultSrv, socketio.ParserMsgpack},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 30*time.Second)
			c := nodeclient.Start(t, nodeclient.Options{URL: tc.ts.URL, Transports: []string{"websocket"}, Parser: tc.parser,
				Auth: map[string]any{"token": tc.ts.token(t, "mismatch")}})
			m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool {
				return m.Type == "connect" || m.Type == "connect_error" || m.Type == "disconnect"
			})
			must(t, err)
			if m.Type != "disconnect" || m.Reason != "transport close" {
				t.Fatalf("got %v, want disconnect with reason transport close", m)
			}
			if n := tc.ts.SocketCount(); n != 0 {
				t.Fatalf("the server counts %d sockets", n)
			}
		})
	}
}
