package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

func decodeArg[T any](t *testing.T, m nodeclient.Message) T {
	t.Helper()
	var v T
	if len(m.Args) == 0 {
		t.Fatalf("event %s has no args", m.Event)
	}
	if err := json.Unmarshal(m.Args[0], &v); err != nil {
		t.Fatalf("event %s: %v", m.Event, err)
	}
	return v
}

func TestTransports(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	cases := []struct {
		name       string
		transports []string
		upgrade    bool
		want       string
	}{
		{"websocket only", []string{"websocket"}, false, "websocket"},
		{"polling only", []string{"polling"}, false, "polling"},
		{"polling then upgrade", []string{"polling", "websocket"}, true, "websocket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			user := "u-" + strings.ReplaceAll(tc.name, " ", "-")
			c := ts.connect(t, user, tc.transports...)
			if tc.upgrade {
				if _, err := c.WaitType(ctx, "upgrade"); err != nil {
					t.Fatalf("no upgrade: %v", err)
				}
			}
			p := events.JobProgressPayload{JobID: "j1", Progress: 40, Message: "m"}
			if err := ts.EmitToUser(ctx, user, events.JobProgress, p); err != nil {
				t.Fatal(err)
			}
			m, err := c.WaitEvent(ctx, "job_progress")
			if err != nil {
				t.Fatal(err)
			}
			got := decodeArg[map[string]any](t, m)
			if got["jobId"] != "j1" || got["progress"] != float64(40) || got["message"] != "m" {
				t.Fatalf("payload = %v", got)
			}
			ts, ok := got["timestamp"].(string)
			if !ok {
				t.Fatalf("no timestamp in %v", got)
			}
			if _, err := time.Parse(time.RFC3339, ts); err != nil || !strings.HasSuffix(ts, "Z") {
				t.Fatalf("timestamp %q is not RFC 3339 UTC: %v", ts, err)
			}
			if c.History()[0].Transport == "" {
				t.Fatal("connect message without transport")
			}
			if tc.want == "polling" {
				for _, h := range c.History() {
					if h.Type == "upgrade" {
						t.Fatal("polling-only client upgraded")
					}
				}
			}
		})
	}
}

func TestAuthFailures(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	expired, err := auth.Sign("HS256", "", ts.secret, map[string]any{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, _ := auth.NewHMACToken([]byte("another-secret-of-32-bytes-long!!"), "alice", time.Hour)
	cases := []struct {
		name     string
		auth     map[string]any
		headers  map[string]string
		wantCode string
	}{
		{"no token", nil, nil, auth.CodeTokenMissing},
		{"empty token", map[string]any{"token": ""}, nil, auth.CodeTokenMissing},
		{"garbage", map[string]any{"token": "not-a-jwt"}, nil, auth.CodeTokenInvalid},
		{"non-string token", map[string]any{"token": 42}, nil, auth.CodeTokenInvalid},
		{"wrong key", map[string]any{"token": otherSecret}, nil, auth.CodeTokenInvalid},
		{"expired", map[string]any{"token": expired}, nil, auth.CodeTokenExpired},
		{"expired in header", nil, map[string]string{"Authorization": "Bearer " + expired}, auth.CodeTokenExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 15*time.Second)
			c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"}, Auth: tc.auth, ExtraHeaders: tc.headers})
			m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != "connect_error" || m.Message != "unauthorized" {
				t.Fatalf("got %v, want connect_error unauthorized", m)
			}
			var data map[string]any
			if err := json.Unmarshal(m.Data, &data); err != nil {
				t.Fatal(err)
			}
			if len(data) != 1 || data["code"] != tc.wantCode {
				t.Fatalf("err.data = %s, want exactly {code: %q}", m.Data, tc.wantCode)
			}
		})
	}
	t.Run("bearer header accepted", func(t *testing.T) {
		ctx := testCtx(t, 15*time.Second)
		c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"},
			ExtraHeaders: map[string]string{"Authorization": "Bearer " + ts.token(t, "hdr")}})
		if _, err := c.WaitEvent(ctx, "authenticated"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("query token only when enabled", func(t *testing.T) {
		ctx := testCtx(t, 15*time.Second)
		c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"},
			Query: map[string]string{"token": ts.token(t, "q")}})
		m, err := c.WaitType(ctx, "connect_error")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(m.Data), auth.CodeTokenMissing) {
			t.Fatalf("query token used without TokenQueryParam: %v", m)
		}
		ts2 := startServer(t, socketio.Config{TokenQueryParam: "token"})
		c2 := nodeclient.Start(t, nodeclient.Options{URL: ts2.URL, Transports: []string{"websocket"},
			Query: map[string]string{"token": ts2.token(t, "q")}})
		if _, err := c2.WaitEvent(ctx, "authenticated"); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEmitReachesExactlyTheUser connects two tabs of alice and one of bob:
// an emit to alice reaches both her tabs and never bob.
func TestEmitReachesExactlyTheUser(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	ctx := testCtx(t, 20*time.Second)
	alice1 := ts.connect(t, "alice", "websocket")
	alice2 := ts.connect(t, "alice", "polling")
	bob := ts.connect(t, "bob", "websocket")

	if err := ts.EmitToUser(ctx, "alice", events.JobCompleted, events.JobCompletedPayload{JobID: "for-alice"}); err != nil {
		t.Fatal(err)
	}
	if err := ts.EmitToUser(ctx, "bob", events.JobFailed, events.JobFailedPayload{JobID: "for-bob", Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*nodeclient.Client{alice1, alice2} {
		m, err := c.WaitEvent(ctx, "job_completed")
		if err != nil {
			t.Fatal(err)
		}
		if p := decodeArg[events.JobCompletedPayload](t, m); p.JobID != "for-alice" {
			t.Fatalf("alice got %+v", p)
		}
	}
	m, err := bob.WaitEvent(ctx, "job_failed")
	if err != nil {
		t.Fatal(err)
	}
	if p := decodeArg[events.JobFailedPayload](t, m); p.JobID != "for-bob" || p.Error != "boom" || p.Timestamp.IsZero() {
		t.Fatalf("bob got %+v", p)
	}
	// A marker emitted last to everyone: once it arrived, nothing else can
	// still be on its way.
	for _, u := range []string{"alice", "bob"} {
		if err := ts.EmitToRoom(ctx, socketio.UserRoom(u), events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 100}); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]*nodeclient.Client{"alice1": alice1, "alice2": alice2, "bob": bob} {
		if _, err := c.WaitEvent(ctx, "job_progress"); err != nil {
			t.Fatal(err)
		}
		for _, e := range c.Events() {
			switch {
			case strings.HasPrefix(name, "alice") && e.Event == "job_failed":
				t.Errorf("%s got bob's event", name)
			case name == "bob" && e.Event == "job_completed":
				t.Errorf("bob got alice's event")
			}
		}
	}
	// analysis events carry the interview id.
	if err := ts.EmitToUser(ctx, "bob", events.AnalysisStarted, events.AnalysisPayload{InterviewID: "iv1", Message: "go", Status: events.StatusStarted}); err != nil {
		t.Fatal(err)
	}
	m, err = bob.WaitEvent(ctx, "analysis:started")
	if err != nil {
		t.Fatal(err)
	}
	if p := decodeArg[events.AnalysisPayload](t, m); p.InterviewID != "iv1" || p.Status != "started" {
		t.Fatalf("analysis payload %+v", p)
	}
}

type echoPayload struct {
	Text string `json:"text"`
}

func (p echoPayload) Validate() error {
	if p.Text == "" {
		return errors.New("text is empty")
	}
	return nil
}

var (
	echoEvent  = events.Define[echoPayload]("echo")
	failEvent  = events.Define[echoPayload]("fail")
	panicEvent = events.Define[echoPayload]("panic")
	askEvent   = events.Define[echoPayload]("ask")
	fireEvent  = events.Define[echoPayload]("fire")
)

func TestAcksBothWays(t *testing.T) {
	ts := startServer(t, socketio.Config{AckTimeout: 2 * time.Second})
	ctx := testCtx(t, 30*time.Second)
	sockets := make(chan *socketio.Socket, 4)
	fired := make(chan string, 4)
	must(t, socketio.OnAck(ts.Server, echoEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (echoPayload, error) {
		sockets <- s
		return echoPayload{Text: strings.ToUpper(p.Text)}, nil
	}))
	must(t, socketio.On(ts.Server, failEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) error {
		if p.Text == "typed" {
			return &socketio.Error{Code: "quota_exceeded", Message: "too many jobs"}
		}
		return errors.New("secret internal detail")
	}))
	must(t, socketio.On(ts.Server, panicEvent, func(context.Context, *socketio.Socket, echoPayload) error { panic("boom") }))
	must(t, socketio.On(ts.Server, fireEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) error {
		fired <- s.UserID() + ":" + p.Text
		return nil
	}))
	if err := socketio.On(ts.Server, fireEvent, func(context.Context, *socketio.Socket, echoPayload) error { return nil }); err == nil {
		t.Fatal("second handler for one event was accepted")
	}

	c := ts.connect(t, "alice", "websocket")

	// client -> server with ack
	args, err := c.EmitWithAck(ctx, "echo", 5*time.Second, map[string]any{"text": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if len(args) != 1 || !strings.Contains(string(args[0]), `"text":"HI"`) {
		t.Fatalf("echo ack = %s", args)
	}
	sock := <-sockets
	if sock.UserID() != "alice" || !sock.Connected() {
		t.Fatalf("socket user %q connected %v", sock.UserID(), sock.Connected())
	}

	// without ack
	if err := c.Emit("fire", map[string]any{"text": "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-fired:
		if got != "alice:x" {
			t.Fatalf("fired %q", got)
		}
	case <-ctx.Done():
		t.Fatal("fire handler not called")
	}

	ackErr := func(event string, payload any) map[string]any {
		t.Helper()
		args, err := c.EmitWithAck(ctx, event, 5*time.Second, payload)
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Error map[string]any `json:"error"`
		}
		if len(args) != 1 || json.Unmarshal(args[0], &v) != nil || v.Error == nil {
			t.Fatalf("%s ack = %s, want {error}", event, args)
		}
		return v.Error
	}
	if e := ackErr("echo", map[string]any{"text": ""}); e["code"] != socketio.CodeInvalidPayload {
		t.Fatalf("invalid payload ack = %v", e)
	}
	if e := ackErr("echo", "not an object"); e["code"] != socketio.CodeInvalidPayload {
		t.Fatalf("non-object payload ack = %v", e)
	}
	if e := ackErr("fail", map[string]any{"text": "typed"}); e["code"] != "quota_exceeded" || e["message"] != "too many jobs" {
		t.Fatalf("typed error ack = %v", e)
	}
	if e := ackErr("fail", map[string]any{"text": "other"}); e["code"] != socketio.CodeInternal || strings.Contains(fmt.Sprint(e), "secret") {
		t.Fatalf("internal error ack = %v", e)
	}
	if e := ackErr("panic", map[string]any{"text": "x"}); e["code"] != socketio.CodeInternal {
		t.Fatalf("panic ack = %v", e)
	}
	if e := ackErr("nobody-handles-this", map[string]any{}); e["code"] != socketio.CodeUnknownEvent {
		t.Fatalf("unknown event ack = %v", e)
	}

	// server -> client with ack
	if err := c.Send(map[string]any{"cmd": "autoAck", "event": "ask", "args": []any{map[string]any{"text": "answer"}}}); err != nil {
		t.Fatal(err)
	}
	syncClient(t, ctx, c) // the autoAck command is in effect before the event arrives
	got, err := socketio.EmitWithAck[echoPayload, echoPayload](ctx, sock, askEvent, echoPayload{Text: "question"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "answer" {
		t.Fatalf("client ack = %+v", got)
	}
	// a client that never answers: ErrAckTimeout.
	shortCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := socketio.EmitWithAck[echoPayload, echoPayload](shortCtx, sock, echoEvent, echoPayload{Text: "q"}); !errors.Is(err, socketio.ErrAckTimeout) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered ack: %v", err)
	}
	// invalid payloads are refused before sending.
	if err := socketio.Emit(ctx, sock, echoEvent, echoPayload{}); !errors.Is(err, events.ErrInvalidPayload) {
		t.Fatalf("Emit invalid payload: %v", err)
	}
	c.Close()
	eventually(t, "socket context to end", func() bool { return sock.Context().Err() != nil })
	if err := socketio.Emit(ctx, sock, echoEvent, echoPayload{Text: "late"}); !errors.Is(err, socketio.ErrDisconnected) {
		t.Fatalf("Emit after disconnect: %v", err)
	}
}

// syncClient waits until the client has processed every command sent so
// far: it answers commands in order, and "report" always answers.
func syncClient(t *testing.T, ctx context.Context, c *nodeclient.Client) {
	t.Helper()
	must(t, c.Send(map[string]any{"cmd": "report", "event": "__sync__"}))
	if _, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "count" && m.Event == "__sync__" }); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type presenceLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *presenceLog) add(_ context.Context, ev socketio.PresenceEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	state := "offline"
	if ev.Online {
		state = "online"
	}
	l.evs = append(l.evs, ev.UserID+":"+state)
}

func (l *presenceLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

func TestPresence(t *testing.T) {
	var log presenceLog
	ts := startServer(t, socketio.Config{
		OnPresence:        log.add,
		BroadcastPresence: true,
		// carol may see nobody; everyone else sees everyone.
		PresenceVisible: func(viewer, subject string) bool { return viewer != "carol" },
	})
	ctx := testCtx(t, 30*time.Second)
	online := func(u string) bool {
		ok, err := ts.IsOnline(ctx, u)
		must(t, err)
		return ok
	}

	bob := ts.connect(t, "bob", "websocket")
	carol := ts.connect(t, "carol", "websocket")
	tab1 := ts.connect(t, "alice", "websocket")
	tab2 := ts.connect(t, "alice", "polling")
	eventually(t, "alice online", func() bool { return slices.Contains(log.get(), "alice:online") })
	if !online("alice") || online("nobody") {
		t.Fatal("IsOnline wrong")
	}
	users, err := ts.OnlineUsers(ctx)
	must(t, err)
	if !slices.Equal(users, []string{"alice", "bob", "carol"}) {
		t.Fatalf("OnlineUsers = %v", users)
	}
	n, err := ts.OnlineCount(ctx)
	must(t, err)
	st, err := ts.Stats(ctx)
	must(t, err)
	if n != 3 || st.Users != 3 || st.Connected != 4 {
		t.Fatalf("OnlineCount %d, Stats %+v; want 3 users, 4 sockets", n, st)
	}

	// bob sees alice come online (once, though she has two tabs).
	m, err := bob.WaitEvent(ctx, "user_online")
	must(t, err)
	for m.Event == "user_online" && decodeArg[events.PresencePayload](t, m).UserID != "alice" {
		m, err = bob.WaitEvent(ctx, "user_online")
		must(t, err)
	}

	tab1.Close()
	// one tab left: still online, no transition.
	eventually(t, "tab1 gone", func() bool { st, _ := ts.Stats(ctx); return st.Connected == 3 })
	if !online("alice") {
		t.Fatal("alice offline with a tab left")
	}
	tab2.Close()
	eventually(t, "alice offline", func() bool { return !online("alice") })
	m, err = bob.WaitEvent(ctx, "user_offline")
	must(t, err)
	if p := decodeArg[events.PresencePayload](t, m); p.UserID != "alice" || p.Timestamp.IsZero() {
		t.Fatalf("user_offline payload %+v", p)
	}
	eventually(t, "offline callback", func() bool { return slices.Contains(log.get(), "alice:offline") })

	// exactly one transition each way for alice, in order.
	var aliceEvs []string
	for _, e := range log.get() {
		if strings.HasPrefix(e, "alice:") {
			aliceEvs = append(aliceEvs, e)
		}
	}
	if !slices.Equal(aliceEvs, []string{"alice:online", "alice:offline"}) {
		t.Fatalf("alice transitions = %v", aliceEvs)
	}
	// bob saw exactly one user_online and one user_offline for alice.
	count := func(c *nodeclient.Client, event, user string) int {
		k := 0
		for _, e := range c.Events() {
			if e.Event == event && decodeArg[events.PresencePayload](t, e).UserID == user {
				k++
			}
		}
		return k
	}
	if on, off := count(bob, "user_online", "alice"), count(bob, "user_offline", "alice"); on != 1 || off != 1 {
		t.Fatalf("bob saw alice online %d, offline %d times", on, off)
	}
	// carol's filter hides everyone from her.
	for _, e := range carol.Events() {
		if e.Event == "user_online" || e.Event == "user_offline" {
			t.Fatalf("carol saw presence %v", e)
		}
	}
}

func TestPresenceNotBroadcastByDefault(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	ctx := testCtx(t, 20*time.Second)
	bob := ts.connect(t, "bob", "websocket")
	alice := ts.connect(t, "alice", "websocket")
	alice.Close()
	eventually(t, "alice offline", func() bool { ok, _ := ts.IsOnline(ctx, "alice"); return !ok })
	must(t, ts.EmitToUser(ctx, "bob", events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 1}))
	if _, err := bob.WaitEvent(ctx, "job_progress"); err != nil {
		t.Fatal(err)
	}
	for _, e := range bob.Events() {
		if e.Event == "user_online" || e.Event == "user_offline" {
			t.Fatalf("presence leaked to bob without BroadcastPresence: %v", e)
		}
	}
}

func TestStatsEndpoint(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	ts.connect(t, "alice", "websocket")
	ts.connect(t, "alice", "websocket")
	ts.connect(t, "bob", "polling")
	resp, err := http.Get(ts.URL + "/api/v1/websocket/stats")
	must(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got struct {
		Success bool `json:"success"`
		Data    struct {
			Connected *int    `json:"connected"`
			Users     *int    `json:"users"`
			Timestamp *string `json:"timestamp"`
		} `json:"data"`
	}
	must(t, json.Unmarshal(body, &got))
	if !got.Success || got.Data.Connected == nil || *got.Data.Connected != 3 || *got.Data.Users != 2 || got.Data.Timestamp == nil {
		t.Fatalf("stats body %s", body)
	}
	if _, err := time.Parse(time.RFC3339, *got.Data.Timestamp); err != nil {
		t.Fatalf("timestamp: %v", err)
	}
	resp2, err := http.Post(ts.URL+"/api/v1/websocket/stats", "application/json", nil)
	must(t, err)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST stats: %d", resp2.StatusCode)
	}
}

type seqPayload struct {
	Seq int `json:"seq"`
}

var seqEvent = events.Define[seqPayload]("seq")

// TestBurstInOrder emits 5,000 events to one user as fast as possible; all
// arrive, in order, on every transport.
func TestBurstInOrder(t *testing.T) {
	const n = 5000
	ts := startServer(t, socketio.Config{})
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			ctx := testCtx(t, 60*time.Second)
			user := "burst-" + transport
			c := ts.connect(t, user, transport)
			must(t, c.Send(map[string]any{"cmd": "countOnly", "event": "seq"}))
			syncClient(t, ctx, c) // countOnly is in effect before the burst
			for i := 1; i <= n; i++ {
				if err := ts.EmitToUser(ctx, user, seqEvent, seqPayload{Seq: i}); err != nil {
					t.Fatal(err)
				}
			}
			var last nodeclient.Message
			for {
				must(t, c.Send(map[string]any{"cmd": "report", "event": "seq"}))
				m, err := c.WaitType(ctx, "count")
				if err != nil {
					t.Fatalf("after %v: %v", last, err)
				}
				last = m
				if m.N >= n || !m.InOrder {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if last.N != n || !last.InOrder || last.LastSeq != n {
				t.Fatalf("client counted %d (in order %v, last seq %d), want %d in order", last.N, last.InOrder, last.LastSeq, n)
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	var log presenceLog
	ts := startServer(t, socketio.Config{OnPresence: log.add})
	ctx := testCtx(t, 20*time.Second)
	connect := func(user, transport string) *nodeclient.Client {
		c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{transport}, Reconnection: true,
			Auth: map[string]any{"token": ts.token(t, user)}, Extra: map[string]any{"reconnectionDelay": 100, "reconnectionDelayMax": 200}})
		if _, err := c.WaitEvent(ctx, "authenticated"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ws := connect("alice", "websocket")
	poll := connect("bob", "polling")

	must(t, ts.Shutdown(ctx))
	for _, c := range []*nodeclient.Client{ws, poll} {
		m, err := c.WaitType(ctx, "disconnect")
		must(t, err)
		// "transport close" makes socket.io-client reconnect by itself (to
		// another node behind the load balancer); "io server disconnect"
		// would stop it for good.
		if m.Reason != "transport close" {
			t.Fatalf("disconnect reason %q, want \"transport close\"", m.Reason)
		}
		if _, err := c.WaitType(ctx, "reconnect_attempt"); err != nil {
			t.Fatalf("client does not try to reconnect: %v", err)
		}
	}
	if users, _ := ts.OnlineUsers(ctx); len(users) != 0 {
		t.Fatalf("users still online after Shutdown: %v", users)
	}
	got := log.get()
	slices.Sort(got)
	if !slices.Equal(got, []string{"alice:offline", "alice:online", "bob:offline", "bob:online"}) {
		t.Fatalf("presence = %v", got)
	}
	if err := ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 1}); !errors.Is(err, socketio.ErrServerClosed) {
		t.Fatalf("EmitToUser after Shutdown: %v", err)
	}
	// New handshakes are refused.
	resp, err := http.Get(ts.URL + "/socket.io/?EIO=4&transport=polling")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake after Shutdown: %d", resp.StatusCode)
	}
	c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Auth: map[string]any{"token": ts.token(t, "late")}})
	if _, err := c.WaitType(ctx, "connect_error"); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	must(t, ts.Shutdown(ctx))
}

var joinEvent = events.Define[echoPayload]("join")

// TestRooms: the server may put a socket in rooms of its own; EmitToRoom
// reaches exactly the members; user rooms cannot be joined by hand.
func TestRooms(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	ctx := testCtx(t, 20*time.Second)
	joined := make(chan *socketio.Socket, 2)
	must(t, socketio.On(ts.Server, joinEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) error {
		for _, bad := range []string{"", "user:bob", socketio.UserRoom(s.UserID()), "a\x00b", strings.Repeat("r", socketio.MaxRoomLength+1)} {
			if err := s.Join(bad); !errors.Is(err, socketio.ErrInvalidRoom) {
				return fmt.Errorf("Join(%q) = %v, want ErrInvalidRoom", bad, err)
			}
		}
		if err := s.Join(p.Text); err != nil {
			return err
		}
		joined <- s
		return nil
	}))
	alice := ts.connect(t, "alice", "websocket")
	bob := ts.connect(t, "bob", "polling")
	args, err := alice.EmitWithAck(ctx, "join", 5*time.Second, map[string]any{"text": "team:1"})
	must(t, err)
	if len(args) != 0 {
		t.Fatalf("join ack = %s", args)
	}
	sock := <-joined

	must(t, ts.EmitToRoom(ctx, "team:1", events.JobProgress, events.JobProgressPayload{JobID: "team", Progress: 1}))
	must(t, ts.EmitToUser(ctx, "bob", events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 1}))
	m, err := alice.WaitEvent(ctx, "job_progress")
	must(t, err)
	if p := decodeArg[events.JobProgressPayload](t, m); p.JobID != "team" {
		t.Fatalf("alice got %+v", p)
	}
	m, err = bob.WaitEvent(ctx, "job_progress")
	must(t, err)
	if p := decodeArg[events.JobProgressPayload](t, m); p.JobID != "marker" {
		t.Fatalf("bob, not in team:1, got %+v", p)
	}

	must(t, sock.Leave("team:1"))
	must(t, ts.EmitToRoom(ctx, "team:1", events.JobProgress, events.JobProgressPayload{JobID: "after-leave", Progress: 2}))
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 3}))
	m, err = alice.WaitEvent(ctx, "job_progress")
	must(t, err)
	if p := decodeArg[events.JobProgressPayload](t, m); p.JobID != "marker" {
		t.Fatalf("alice got %+v after leaving the room", p)
	}
}
