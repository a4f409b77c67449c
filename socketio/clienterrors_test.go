package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

type errInner struct {
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

type errPayload struct {
	Room  string    `json:"room"`
	Ratio float64   `json:"ratio"`
	OK    bool      `json:"ok"`
	At    time.Time `json:"at"`
	Blob  []byte    `json:"blob"`
	Inner errInner  `json:"inner"`
	Attrs map[string]int
}

func (p errPayload) Validate() error {
	if p.Room == "forbidden" {
		return errors.New("room: not allowed")
	}
	return nil
}

// goisms are what a Go error says and a client must never read: Go's
// type, struct and field names, package prefixes, the decoder's wording.
var goisms = []string{
	"Go ", "struct", "nmarshal", "json:", "int64", "float64", "[]uint8", "[]string",
	"interface", "reflect", "events.", "socketio", "engineio", "auth:", "adapter:",
	"errPayload", "errInner", "Ratio", "Inner", "Payload", "of type", "2006-01-02",
	"panic", "goroutine", "runtime",
}

func checkNoGo(t *testing.T, where, text string) {
	t.Helper()
	for _, g := range goisms {
		if strings.Contains(text, g) {
			t.Errorf("%s: the client reads %q, which contains %q", where, text, g)
		}
	}
}

// TestClientErrorsSpeakJSON sends malformed input to every entry point a
// client has (CONNECT's auth object, reauthenticate, typed handlers with
// and without acks, unknown events, the Engine.IO endpoints) and checks
// that each answer is one of herald's codes with a message in JSON terms:
// no Go type, field or package name reaches the client.
func TestClientErrorsSpeakJSON(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	ev := events.Define[errPayload]("shape")
	if err := socketio.OnAck(ts.Server, ev, func(_ context.Context, _ *socketio.Socket, p errPayload) (string, error) {
		return "ok", nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 60*time.Second)
	c := ts.connect(t, "alice")

	type ackErr struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	ack := func(event string, arg any) ackErr {
		t.Helper()
		args, err := c.EmitWithAck(ctx, event, 0, arg)
		if err != nil {
			t.Fatalf("%s %v: %v", event, arg, err)
		}
		var a ackErr
		if len(args) != 1 || json.Unmarshal(args[0], &a) != nil || a.Error.Code == "" {
			t.Fatalf("%s %v: ack %s, want {error: {code, message}}", event, arg, args)
		}
		checkNoGo(t, event+" "+string(mustJSON(t, arg)), a.Error.Message)
		return a
	}

	for _, tt := range []struct {
		arg  any
		want string // the message, exactly
	}{
		{map[string]any{"room": 1}, "room: want a string, got a number"},
		{map[string]any{"ratio": "x"}, "ratio: want a number, got a string"},
		{map[string]any{"ok": "yes"}, "ok: want a boolean, got a string"},
		{map[string]any{"at": "yesterday"}, "a member is not an RFC 3339 time"},
		{map[string]any{"at": 5}, "a member has an invalid value"},
		{map[string]any{"blob": 5}, "blob: want a base64 string, got a number"},
		{map[string]any{"blob": "%%%"}, "a member has an invalid value"},
		{map[string]any{"inner": map[string]any{"count": "x"}}, "inner.count: want an integer, got a string"},
		{map[string]any{"inner": map[string]any{"count": 1.5}}, "inner.count: want an integer, got the number 1.5"},
		{map[string]any{"inner": map[string]any{"tags": "x"}}, "inner.tags: want an array, got a string"},
		{map[string]any{"inner": []any{}}, "inner: want an object, got an array"},
		{map[string]any{"Attrs": map[string]any{"a": "b"}}, "Attrs: want an integer, got a string"},
		{map[string]any{"room": "forbidden"}, "room: not allowed"},
		{"a string", "not a JSON object"},
		{42, "not a JSON object"},
		{[]any{1, 2}, "not a JSON object"},
		{nil, "not a JSON object"},
	} {
		a := ack("shape", tt.arg)
		if a.Error.Code != socketio.CodeInvalidPayload || a.Error.Message != tt.want {
			t.Errorf("shape %s: %s %q, want %s %q", mustJSON(t, tt.arg), a.Error.Code, a.Error.Message, socketio.CodeInvalidPayload, tt.want)
		}
	}

	// reauthenticate, the built-in handler (the example).
	for _, tt := range []struct {
		arg        any
		code, want string
	}{
		{map[string]any{"token": 123}, socketio.CodeInvalidPayload, "token: want a string, got a number"},
		{map[string]any{"token": map[string]any{}}, socketio.CodeInvalidPayload, "token: want a string, got an object"},
		{map[string]any{"token": ""}, socketio.CodeInvalidPayload, "token: empty"},
		{map[string]any{"token": "not.a.jwt"}, "token_invalid", "token rejected"},
		{"x", socketio.CodeInvalidPayload, "not a JSON object"},
	} {
		a := ack("reauthenticate", tt.arg)
		if a.Error.Code != tt.code || a.Error.Message != tt.want {
			t.Errorf("reauthenticate %s: %s %q, want %s %q", mustJSON(t, tt.arg), a.Error.Code, a.Error.Message, tt.code, tt.want)
		}
	}
	if a := ack("no-such-event", map[string]any{}); a.Error.Code != socketio.CodeUnknownEvent {
		t.Errorf("unknown event: code %s, want %s", a.Error.Code, socketio.CodeUnknownEvent)
	}

	// CONNECT with auth objects of every shape.
	for _, authObj := range []map[string]any{
		{"token": 123}, {"token": map[string]any{"a": 1}}, {"token": []any{"x"}}, {"token": "x.y.z"},
		{"token": strings.Repeat("a", 20000)}, {}, {"token": nil},
	} {
		bad := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Auth: authObj})
		m, err := bad.WaitType(ctx, "connect_error")
		if err != nil {
			t.Fatalf("CONNECT with %s: %v", mustJSON(t, authObj), err)
		}
		checkNoGo(t, "connect_error for "+string(mustJSON(t, authObj)), m.Message+" "+string(m.Data))
		var data struct {
			Code string `json:"code"`
		}
		if json.Unmarshal(m.Data, &data) != nil || (data.Code != "token_missing" && data.Code != "token_invalid") {
			t.Errorf("CONNECT with %s: connect_error %q %s, want code token_missing or token_invalid", mustJSON(t, authObj), m.Message, m.Data)
		}
		bad.Close()
	}

	// The Engine.IO endpoints answer HTTP errors in Node's JSON.
	for _, req := range []struct{ method, query, body string }{
		{"GET", "EIO=4&transport=polling&sid=nope", ""},
		{"GET", "EIO=3&transport=polling", ""},
		{"GET", "EIO=4&transport=carrier-pigeon", ""},
		{"GET", "EIO=x", ""},
		{"POST", "EIO=4&transport=polling&sid=nope", "4{}"},
		{"PUT", "EIO=4&transport=polling", ""},
	} {
		r, err := http.NewRequestWithContext(ctx, req.method, ts.URL+"/socket.io/?"+req.query, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s ?%s = %s, want an HTTP error", req.method, req.query, resp.Status)
		}
		checkNoGo(t, req.method+" ?"+req.query, string(body))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
