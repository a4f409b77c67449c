package socketio_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

type roomRequest struct {
	Room string `json:"room"`
}

var subscribeEvent = events.Define[roomRequest]("subscribe")

// TestClientCannotReachOthers: a client tries to get at another user's
// events and presence, with the default configuration and a service handler
// that joins rooms on request, and gets nowhere.
func TestClientCannotReachOthers(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	// A typical service handler: "subscribe" joins the room the client names.
	must(t, socketio.OnAck(ts.Server, subscribeEvent, func(ctx context.Context, s *socketio.Socket, p roomRequest) (roomRequest, error) {
		return p, s.Join(p.Room)
	}))
	ctx := testCtx(t, 30*time.Second)

	// Claims in the auth map beside the token change nothing.
	mallory := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"},
		Auth: map[string]any{"token": ts.token(t, "mallory"), "userId": "alice", "sub": "alice", "user": "alice"}})
	if _, err := mallory.WaitType(ctx, "connect"); err != nil {
		t.Fatal(err)
	}
	waitAuthenticated(t, ctx, mallory, "mallory")

	// Joining alice's room through the service's handler is refused.
	args, err := mallory.EmitWithAck(ctx, "subscribe", 0, map[string]any{"room": "user:alice"})
	must(t, err)
	if len(args) != 1 || !strings.Contains(string(args[0]), `"error"`) {
		t.Fatalf("subscribe to user:alice = %s, want an error", args)
	}
	// Events without a handler (a client "join", a "broadcast") do nothing.
	for _, ev := range []string{"join", "broadcast", "user:alice"} {
		args, err := mallory.EmitWithAck(ctx, ev, 0, map[string]any{"room": "user:alice", "event": "job_progress"})
		must(t, err)
		if len(args) != 1 || !strings.Contains(string(args[0]), `"code":"unknown_event"`) {
			t.Fatalf("%s = %s, want unknown_event", ev, args)
		}
	}

	// alice comes online and gets events; mallory learns of neither.
	alice := ts.connect(t, "alice", "websocket")
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "secret", Progress: 1}))
	if _, err := alice.WaitEvent(ctx, "job_progress"); err != nil {
		t.Fatal(err)
	}
	// A marker to mallory: once she has it, anything sent before it would
	// have arrived.
	must(t, ts.EmitToUser(ctx, "mallory", events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 1}))
	m, err := mallory.WaitEvent(ctx, "job_progress")
	must(t, err)
	if p := decodeArg[events.JobProgressPayload](t, m); p.JobID != "marker" {
		t.Fatalf("mallory got %+v before her own marker", p)
	}
	for _, e := range mallory.Events() {
		if e.Event == "user_online" || e.Event == "user_offline" || strings.Contains(string(e.Raw), "secret") {
			t.Fatalf("mallory learned %v", e)
		}
	}

	// A token in the query string is ignored unless the service opts in.
	c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL + "/?token=" + ts.token(t, "alice"), Transports: []string{"websocket"}})
	m, err = c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
	must(t, err)
	var data struct{ Code string }
	if m.Type != "connect_error" || json.Unmarshal(m.Data, &data) != nil || data.Code != "token_missing" {
		t.Fatalf("query-string token: %v, want connect_error token_missing", m)
	}
}
