// Package nodeclient drives the real npm socket.io-client from Go tests.
//
// Start spawns `node testdata/client.js` for one client connection. Commands
// go to the script's stdin as JSON lines (Send, Emit, EmitWithAck) and every
// line the script prints comes back as a Message (Next, WaitFor, WaitType).
// testdata/client.js documents the protocol.
//
// StartScript runs the other JSON-lines programs of testdata/ the same way;
// StartNodeServer (node-server.js: a Node socket.io server with
// @socket.io/redis-adapter or @socket.io/redis-streams-adapter) and
// StartEmitter (redis-emitter.js: @socket.io/redis-emitter) wrap the two
// interop scripts. See script.go.
//
// Concurrency: one goroutine per Client reads the script's output; it ends
// when the process has exited, and Close (registered with t.Cleanup) waits
// for it, so goleak sees no leftover goroutine. Messages are queued without
// bound, so a test that reads nothing never blocks the script. All methods
// are safe for concurrent use.
package nodeclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/testenv"
)

// Errors returned by Client methods; test them with errors.Is.
var (
	// ErrExited: the script has exited and every message it printed has
	// been consumed (or none matches).
	ErrExited = errors.New("nodeclient: client process exited")
	// ErrClosed: Close was called, the script no longer takes commands.
	ErrClosed = errors.New("nodeclient: client closed")
	// ErrAck: an EmitWithAck got an ack_error (timeout or disconnect).
	ErrAck = errors.New("nodeclient: ack failed")
)

// closeTimeout is how long Close waits for the script to exit after its
// stdin is closed before killing it.
const closeTimeout = 5 * time.Second

// Options are the io() options of the client. The zero value of a field
// leaves socket.io-client's default, except Reconnection (false unless set;
// socket.io-client's default is true). forceNew is always true.
type Options struct {
	// URL is the server URL, with the namespace as its path
	// ("http://127.0.0.1:PORT/admin"). Required.
	URL string
	// Path is the Socket.IO endpoint path; empty means "/socket.io/".
	Path string
	// Transports lists the transports in order of preference; nil means
	// ["polling", "websocket"].
	Transports []string
	// Upgrade says whether to upgrade from polling to websocket; nil means
	// true.
	Upgrade *bool
	// Auth is the handshake auth payload (socket.handshake.auth).
	Auth map[string]any
	// ExtraHeaders are sent with every HTTP request (Node only).
	ExtraHeaders map[string]string
	// Query is added to the handshake URL.
	Query map[string]string
	// Reconnection enables the manager's automatic reconnection.
	Reconnection bool
	// Timeout is the connection timeout; zero means 20s.
	Timeout time.Duration
	// Package is the npm package client.js requires: "" means
	// "socket.io-client" (the current release); testdata/package.json pins
	// older releases under aliases such as "socket.io-client-4.0",
	// "socket.io-client-4.4" and "socket.io-client-4.7". Commands needing an
	// API that version lacks fail with ErrCommand.
	Package string
	// AuthCallback gives io() the auth option as a function returning Auth,
	// or the latest auth set with the "setAuth" command, so that every
	// reconnection presents the latest token (socket.io-client calls it on
	// each connection attempt).
	AuthCallback bool
	// Parser is the Socket.IO parser: "" or "default" for socket.io-parser,
	// "msgpack" for socket.io-msgpack-parser (io()'s parser option).
	Parser string
	// Extra holds further io() options passed verbatim, for example
	// "reconnectionDelay", "reconnectionAttempts", "ackTimeout", "retries".
	Extra map[string]any
	// Failover lists node URLs that reconnection attempts go through in
	// turn, after URL's place in the list (see client.js).
	Failover []string
}

// Upgrade is a helper for Options.Upgrade.
func Upgrade(b bool) *bool { return &b }

// Message is one line printed by the script. Type tells which fields are set:
//
//	connect          ID, Transport, Recovered, URL, At
//	upgrade          Transport
//	connect_error    Message, Data
//	disconnect       Reason, Description, At
//	event            Event, Args, HasAck, Seq, AutoAcked
//	ack              AckID, Args
//	ack_error        AckID, Message
//	count            Event, N, InOrder, LastSeq (0 when no event was counted)
//	reconnect_attempt, reconnect   Attempt
//	reconnect_error  Message
//	reconnect_failed
//	info             Package, Version, Features (answer to the "info" command)
//	error            Message, AckID (a bad command or one the client version
//	                 does not support, with its id if it had one; or a line
//	                 that was not JSON)
//
// Binary values inside Args and Data read {"$binary":"<base64>"}.
type Message struct {
	Type        string
	ID          string // socket id (connect)
	Transport   string
	Recovered   bool
	Message     string
	Reason      string
	Description string
	Event       string
	Data        json.RawMessage
	Args        []json.RawMessage
	HasAck      bool
	AutoAcked   bool
	Seq         int
	N           int
	InOrder     bool
	LastSeq     int
	AckID       int    // id of the EmitWithAck command (ack, ack_error, error)
	Nsp         string // connect, connect_error, disconnect, event of a namespace opened with OpenNamespace
	Attempt     int
	Package     string          // info: the npm package required
	Version     string          // info: its version
	Features    map[string]bool // info: "timeout", "emitWithAck", "recovered"
	URL         string          // connect: the URL of the node connected to
	At          time.Time       // connect, disconnect: when, by the client's clock (ms)
	// Raw is the line as printed, for logs.
	Raw json.RawMessage
}

// UnmarshalJSON reads a line of the script. "id" is a string in connect
// messages (ID) and a number in ack messages (AckID).
func (m *Message) UnmarshalJSON(b []byte) error {
	var w struct {
		Type        string            `json:"type"`
		ID          json.RawMessage   `json:"id"`
		Transport   string            `json:"transport"`
		Recovered   bool              `json:"recovered"`
		Message     string            `json:"message"`
		Reason      string            `json:"reason"`
		Description string            `json:"description"`
		Event       string            `json:"event"`
		Data        json.RawMessage   `json:"data"`
		Args        []json.RawMessage `json:"args"`
		HasAck      bool              `json:"hasAck"`
		AutoAcked   bool              `json:"autoAcked"`
		Seq         int               `json:"seq"`
		N           int               `json:"n"`
		InOrder     bool              `json:"inOrder"`
		LastSeq     *int              `json:"lastSeq"`
		Attempt     int               `json:"attempt"`
		Package     string            `json:"package"`
		Version     string            `json:"version"`
		Features    map[string]bool   `json:"features"`
		Nsp         string            `json:"nsp"`
		URL         string            `json:"url"`
		At          int64             `json:"at"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*m = Message{
		Type: w.Type, Transport: w.Transport, Recovered: w.Recovered,
		Message: w.Message, Reason: w.Reason, Description: w.Description,
		Event: w.Event, Data: w.Data, Args: w.Args, HasAck: w.HasAck,
		AutoAcked: w.AutoAcked, Seq: w.Seq, N: w.N, InOrder: w.InOrder,
		Attempt: w.Attempt, Package: w.Package, Version: w.Version, Features: w.Features, Nsp: w.Nsp,
		URL: w.URL, Raw: append(json.RawMessage(nil), b...),
	}
	if w.LastSeq != nil {
		m.LastSeq = *w.LastSeq
	}
	if w.At > 0 {
		m.At = time.UnixMilli(w.At)
	}
	if len(w.ID) > 0 && string(w.ID) != "null" {
		if w.ID[0] == '"' {
			if err := json.Unmarshal(w.ID, &m.ID); err != nil {
				return err
			}
		} else if err := json.Unmarshal(w.ID, &m.AckID); err != nil {
			return fmt.Errorf("nodeclient: id %s: %w", w.ID, err)
		}
	}
	return nil
}

// String returns the line as printed.
func (m Message) String() string {
	if len(m.Raw) > 0 {
		return string(m.Raw)
	}
	return fmt.Sprintf("%+v", struct {
		Type, Event, Message string
	}{m.Type, m.Event, m.Message})
}

// Client is one socket.io-client connection in its own node process.
type Client struct {
	t       testing.TB
	script  string // file name in testdata/, for logs
	cmd     *exec.Cmd
	stderr  *syncBuffer
	done    chan struct{} // closed once output is read and the process reaped
	waitErr error         // exit status; read only after done

	writeMu sync.Mutex // serialises lines on stdin
	stdin   io.WriteCloser
	closed  atomic.Bool

	mu      sync.Mutex
	queue   []queued      // printed, not yet consumed
	history []Message     // everything printed
	changed chan struct{} // closed and replaced on every new message and at exit
	eof     bool

	nextAckID atomic.Int64
	closeOnce sync.Once
}

// Start spawns node testdata/client.js with opts and returns at once; the
// client connects in the background (wait with WaitType(ctx, "connect")).
// It skips or fails t through testenv.RequireNode when node or the npm
// packages are missing, and registers Close with t.Cleanup. When t has
// failed, the cleanup logs node's stderr and the messages received.
func Start(t testing.TB, opts Options) *Client {
	t.Helper()
	node := testenv.RequireNode(t)
	dir := testenv.TestdataDir(t)
	if opts.URL == "" {
		t.Fatal("nodeclient: Options.URL is empty")
	}
	optJSON, err := json.Marshal(opts.ioOptions())
	if err != nil {
		t.Fatalf("nodeclient: options: %v", err)
	}
	return start(t, node, dir, "client.js", string(optJSON))
}

// start spawns node dir/script args... and reads its output; see Start.
func start(t testing.TB, node, dir, script string, args ...string) *Client {
	t.Helper()
	cmd := exec.Command(node, append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	// Wait must not hang on a pipe that something else holds open.
	cmd.WaitDelay = closeTimeout
	c := &Client{
		t:       t,
		script:  script,
		cmd:     cmd,
		stderr:  &syncBuffer{},
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	cmd.Stderr = c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatalf("nodeclient: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("nodeclient: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodeclient: start node: %v", err)
	}
	go c.read(stdout)
	t.Cleanup(func() {
		t.Helper()
		c.Close()
		if t.Failed() {
			c.logState()
		}
	})
	return c
}

func (o Options) ioOptions() map[string]any {
	m := make(map[string]any, len(o.Extra)+9)
	for k, v := range o.Extra {
		m[k] = v
	}
	m["url"] = o.URL
	m["reconnection"] = o.Reconnection
	m["forceNew"] = true
	if o.Package != "" {
		m["clientPackage"] = o.Package
	}
	if o.AuthCallback {
		m["authCallback"] = true
	}
	if o.Parser != "" {
		m["parser"] = o.Parser
	}
	if o.Path != "" {
		m["path"] = o.Path
	}
	if o.Transports != nil {
		m["transports"] = o.Transports
	}
	if o.Upgrade != nil {
		m["upgrade"] = *o.Upgrade
	}
	if o.Auth != nil {
		m["auth"] = o.Auth
	}
	if o.ExtraHeaders != nil {
		m["extraHeaders"] = o.ExtraHeaders
	}
	if o.Query != nil {
		m["query"] = o.Query
	}
	if o.Timeout > 0 {
		m["timeout"] = o.Timeout.Milliseconds()
	}
	if o.Failover != nil {
		m["failover"] = o.Failover
	}
	return m
}

// read queues every line of stdout until EOF, then reaps the process.
func (c *Client) read(stdout io.Reader) {
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			var m Message
			if jerr := json.Unmarshal(line, &m); jerr != nil || m.Type == "" {
				m = Message{Type: "error", Message: "nodeclient: unreadable line: " + string(line)}
			}
			c.push(m)
		}
		if err != nil {
			break
		}
	}
	c.waitErr = c.cmd.Wait()
	c.mu.Lock()
	c.eof = true
	close(c.changed)
	c.mu.Unlock()
	close(c.done)
}

// queued is a message with its position in History, so that a waiter can
// resume its scan where it stopped even if other waiters consumed messages.
type queued struct {
	pos int
	m   Message
}

func (c *Client) push(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue = append(c.queue, queued{pos: len(c.history), m: m})
	c.history = append(c.history, m)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Send writes one command to the script, for example
// map[string]any{"cmd": "autoAck", "event": "ping", "args": []any{"pong"}}.
func (c *Client) Send(cmd map[string]any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("nodeclient: encode command: %w", err)
	}
	return c.sendLine(b, fmt.Sprint(cmd["cmd"]))
}

// sendLine writes the JSON command b and a newline to the script's stdin;
// name names the command in errors.
func (c *Client) sendLine(b []byte, name string) error {
	b = append(b, '\n')
	if c.closed.Load() {
		return ErrClosed
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if _, err := c.stdin.Write(b); err != nil {
		if c.closed.Load() {
			return ErrClosed
		}
		return fmt.Errorf("nodeclient: send %s: %w%s", name, err, c.stderrSuffix())
	}
	return nil
}

// Next returns the oldest message not yet consumed, waiting for one if
// needed. It returns ctx's error on cancellation and ErrExited once the
// script has exited and no message is left; both errors carry node's stderr.
func (c *Client) Next(ctx context.Context) (Message, error) {
	return c.WaitFor(ctx, func(Message) bool { return true })
}

// WaitFor returns the oldest not yet consumed message for which match is
// true, waiting for one if needed, and consumes only it: messages it passes
// over stay queued, in order, for later Next and WaitFor calls (so a wait
// for an ack never eats an event), and all are in History. match must not
// call c's methods.
func (c *Client) WaitFor(ctx context.Context, match func(Message) bool) (Message, error) {
	scanned := 0 // messages at History positions below scanned did not match
	for {
		c.mu.Lock()
		for i, q := range c.queue {
			if q.pos < scanned {
				continue
			}
			if match(q.m) {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				c.mu.Unlock()
				return q.m, nil
			}
		}
		scanned = len(c.history)
		eof, changed := c.eof, c.changed
		c.mu.Unlock()
		if eof {
			return Message{}, fmt.Errorf("%w (%s)%s", ErrExited, c.exitStatus(), c.stderrSuffix())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("nodeclient: waiting for a message: %w%s", ctx.Err(), c.stderrSuffix())
		}
	}
}

// WaitType is WaitFor of the next message of type typ ("connect",
// "connect_error", "disconnect", "event", ...).
func (c *Client) WaitType(ctx context.Context, typ string) (Message, error) {
	return c.WaitFor(ctx, func(m Message) bool { return m.Type == typ && m.Nsp == "" })
}

// WaitEvent is WaitFor of the next incoming event named event.
func (c *Client) WaitEvent(ctx context.Context, event string) (Message, error) {
	return c.WaitFor(ctx, func(m Message) bool { return m.Type == "event" && m.Event == event && m.Nsp == "" })
}

// OpenNamespace opens a socket to namespace nsp on the client's connection
// (manager.socket(nsp, {auth})), as io(url + nsp) does for a client that
// is already connected. Its messages carry Nsp: wait for them with WaitIn.
func (c *Client) OpenNamespace(nsp string, auth map[string]any) error {
	return c.Send(map[string]any{"cmd": "openNamespace", "nsp": nsp, "auth": auth})
}

// WaitIn is WaitFor of the next message of type typ (and, for "event",
// named event) of namespace nsp opened with OpenNamespace.
func (c *Client) WaitIn(ctx context.Context, nsp, typ, event string) (Message, error) {
	return c.WaitFor(ctx, func(m Message) bool {
		return m.Nsp == nsp && m.Type == typ && (typ != "event" || m.Event == event)
	})
}

// EmitVolatileWithAck is EmitWithAck (callback API, no timeout) through
// socket.volatile, which the client drops instead of buffering when it is
// not connected.
func (c *Client) EmitVolatileWithAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	id := int(c.nextAckID.Add(1))
	if err := c.Send(map[string]any{"cmd": "emitWithAck", "volatile": true, "id": id, "event": event, "args": nonNil(args)}); err != nil {
		return nil, err
	}
	return c.waitAck(ctx, id, event)
}

// EmitWithAckIn is EmitWithAck (callback API, no timeout) on the socket of
// namespace nsp opened with OpenNamespace.
func (c *Client) EmitWithAckIn(ctx context.Context, nsp, event string, args ...any) ([]json.RawMessage, error) {
	id := int(c.nextAckID.Add(1))
	if err := c.Send(map[string]any{"cmd": "emitWithAck", "nsp": nsp, "id": id, "event": event, "args": nonNil(args)}); err != nil {
		return nil, err
	}
	return c.waitAck(ctx, id, event)
}

// waitAck waits for the answer to the emitWithAck command numbered id.
func (c *Client) waitAck(ctx context.Context, id int, event string) ([]json.RawMessage, error) {
	m, err := c.WaitFor(ctx, func(m Message) bool {
		return (m.Type == "ack" || m.Type == "error") && m.AckID == id
	})
	if err != nil {
		return nil, err
	}
	if m.Type == "error" {
		return nil, fmt.Errorf("%w: emitWithAck %s: %s", ErrCommand, event, m.Message)
	}
	return nonNilRaw(m.Args), nil
}

// Emit sends socket.emit(event, ...args) without an ack.
func (c *Client) Emit(event string, args ...any) error {
	return c.Send(map[string]any{"cmd": "emit", "event": event, "args": nonNil(args)})
}

// EmitWithAck emits event with an ack callback and returns the arguments the
// server acknowledged with. timeout is the client's ack timeout (zero: none,
// or the "ackTimeout" of Options.Extra); on timeout the error wraps ErrAck.
// ctx bounds the whole wait. It uses the callback API (with socket.timeout()
// when timeout > 0, socket.io-client 4.4+); a client version without the API
// makes it fail with ErrCommand.
func (c *Client) EmitWithAck(ctx context.Context, event string, timeout time.Duration, args ...any) ([]json.RawMessage, error) {
	return c.emitWithAck(ctx, "emitWithAck", event, timeout, args)
}

// EmitWithAckPromise is EmitWithAck through socket.emitWithAck() (with
// socket.timeout() when timeout > 0), the promise API of socket.io-client
// 4.6+; older clients make it fail with ErrCommand. The promise resolves with
// the ack's first argument only, so the result has one element.
func (c *Client) EmitWithAckPromise(ctx context.Context, event string, timeout time.Duration, args ...any) ([]json.RawMessage, error) {
	return c.emitWithAck(ctx, "emitWithAckPromise", event, timeout, args)
}

func (c *Client) emitWithAck(ctx context.Context, name, event string, timeout time.Duration, args []any) ([]json.RawMessage, error) {
	id := int(c.nextAckID.Add(1))
	cmd := map[string]any{"cmd": name, "id": id, "event": event, "args": nonNil(args)}
	if timeout > 0 {
		cmd["timeoutMs"] = max(timeout.Milliseconds(), 1)
	}
	if err := c.Send(cmd); err != nil {
		return nil, err
	}
	m, err := c.WaitFor(ctx, func(m Message) bool {
		return (m.Type == "ack" || m.Type == "ack_error" || m.Type == "error") && m.AckID == id
	})
	if err != nil {
		return nil, err
	}
	switch m.Type {
	case "ack_error":
		return nil, fmt.Errorf("%w: %s: %s", ErrAck, event, m.Message)
	case "error":
		return nil, fmt.Errorf("%w: %s %s: %s", ErrCommand, name, event, m.Message)
	}
	return nonNilRaw(m.Args), nil
}

// Info asks the script which client it runs: the reply (Type "info") has
// Package, Version and Features.
func (c *Client) Info(ctx context.Context) (Message, error) {
	if err := c.Send(map[string]any{"cmd": "info"}); err != nil {
		return Message{}, err
	}
	return c.WaitType(ctx, "info")
}

// Ack answers the ack callback of the incoming event numbered seq
// (Message.Seq) with args.
func (c *Client) Ack(seq int, args ...any) error {
	return c.Send(map[string]any{"cmd": "ack", "seq": seq, "args": nonNil(args)})
}

// History returns a copy of every message printed so far, consumed or not,
// in order.
func (c *Client) History() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.history...)
}

// Events returns the incoming events (Type "event") printed so far,
// consumed or not, in order.
func (c *Client) Events() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ev []Message
	for _, m := range c.history {
		if m.Type == "event" {
			ev = append(ev, m)
		}
	}
	return ev
}

// Stderr returns what node has written to stderr so far.
func (c *Client) Stderr() string { return c.stderr.String() }

// Done is closed once the process has exited and its output is queued.
func (c *Client) Done() <-chan struct{} { return c.done }

// Wait waits for the process to exit and returns its exit error (nil for
// exit status 0). It does not ask the process to stop: see Close.
func (c *Client) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the script's stdin, which disconnects the socket and ends
// the process, waits up to 5s for it and then kills it. Queued messages stay
// readable. Close is idempotent and runs at t's cleanup.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		// Not under writeMu: closing the pipe also ends a Send stuck on a
		// full pipe.
		c.closed.Store(true)
		_ = c.stdin.Close()
		timer := time.NewTimer(closeTimeout)
		defer timer.Stop()
		select {
		case <-c.done:
		case <-timer.C:
			c.t.Logf("nodeclient: node %s did not exit %v after stdin closed; killing it", c.script, closeTimeout)
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
}

func (c *Client) logState() {
	c.t.Helper()
	if s := c.Stderr(); s != "" {
		c.t.Logf("nodeclient: %s stderr:\n%s", c.script, s)
	}
	h := c.History()
	const keep = 50
	if len(h) > keep {
		c.t.Logf("nodeclient: %s printed %d messages, the last %d:", c.script, len(h), keep)
		h = h[len(h)-keep:]
	} else {
		c.t.Logf("nodeclient: %s printed %d messages:", c.script, len(h))
	}
	for _, m := range h {
		c.t.Logf("  %s", m)
	}
}

func (c *Client) exitStatus() string {
	if c.waitErr == nil {
		return "exit status 0"
	}
	return c.waitErr.Error()
}

func (c *Client) stderrSuffix() string {
	s := strings.TrimSpace(c.Stderr())
	if s == "" {
		return ""
	}
	const limit = 4096
	if len(s) > limit {
		s = "..." + s[len(s)-limit:]
	}
	return "; node stderr:\n" + s
}

func nonNil(args []any) []any {
	if args == nil {
		return []any{}
	}
	return args
}

func nonNilRaw(args []json.RawMessage) []json.RawMessage {
	if args == nil {
		return []json.RawMessage{}
	}
	return args
}

// syncBuffer is a bytes.Buffer safe for the exec copier and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
