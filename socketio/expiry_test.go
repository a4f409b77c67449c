package socketio_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

// shortToken is a token of userID that expires in ttl (whole seconds:
// "exp" has no fraction), and when.
func (ts *testServer) shortToken(t *testing.T, userID string, ttl time.Duration) (string, time.Time) {
	t.Helper()
	exp := time.Now().Add(ttl).Truncate(time.Second)
	tok, err := auth.Sign("HS256", "", ts.secret, map[string]any{"sub": userID, "exp": exp.Unix()})
	must(t, err)
	return tok, exp
}

// TestTokenExpiry: a socket whose token expires gets auth_expired with the
// deadline ExpiryWarning before it, and its connection is closed at the
// deadline; socket.io-client reconnects by itself, with the fresh token its
// auth callback now returns, or fails with token_expired if it has none.
func TestTokenExpiry(t *testing.T) {
	ts := startServer(t, socketio.Config{ExpiryWarning: 1500 * time.Millisecond})
	for _, tc := range []struct {
		name  string
		fresh bool // the auth callback has a fresh token when the client reconnects
	}{{"fresh token", true}, {"no fresh token", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 30*time.Second)
			user := "exp-" + strings.ReplaceAll(tc.name, " ", "-")
			tok, exp := ts.shortToken(t, user, 4*time.Second)
			c := nodeclient.Start(t, nodeclient.Options{
				URL: ts.URL, Transports: []string{"websocket"}, Auth: map[string]any{"token": tok},
				AuthCallback: true, Reconnection: true, Extra: reconnectOptions,
			})
			first, err := c.WaitType(ctx, "connect")
			must(t, err)
			waitAuthenticated(t, ctx, c, user)

			m, err := c.WaitEvent(ctx, "auth_expired")
			must(t, err)
			warned := time.Now()
			p := decodeArg[events.AuthExpiredPayload](t, m)
			if !p.ExpiresAt.Equal(exp) {
				t.Fatalf("auth_expired says %v, want the token's exp %v", p.ExpiresAt, exp)
			}
			if warned.After(exp) {
				t.Fatalf("auth_expired came at %v, after the deadline %v", warned, exp)
			}
			if tc.fresh {
				fresh, _ := ts.shortToken(t, user, time.Hour)
				must(t, c.Send(map[string]any{"cmd": "setAuth", "auth": map[string]any{"token": fresh}}))
			}
			d, err := c.WaitType(ctx, "disconnect")
			must(t, err)
			if d.Reason != "transport close" {
				t.Fatalf("disconnect: %v, want transport close", d)
			}
			if now := time.Now(); now.Before(exp.Add(-100 * time.Millisecond)) {
				t.Fatalf("disconnected at %v, before the deadline %v", now, exp)
			}
			m, err = c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
			must(t, err)
			if !tc.fresh {
				var data struct{ Code string }
				if m.Type != "connect_error" || json.Unmarshal(m.Data, &data) != nil || data.Code != auth.CodeTokenExpired {
					t.Fatalf("reconnect with the expired token: %v, want connect_error %s", m, auth.CodeTokenExpired)
				}
				return
			}
			if m.Type != "connect" || m.ID == first.ID {
				t.Fatalf("reconnect: %v", m)
			}
			waitAuthenticated(t, ctx, c, user)
		})
	}
}

// TestReauthenticate: a client that sends reauthenticate with a fresh token
// of its user before the deadline stays connected past the old deadline;
// other tokens are refused with a code and change nothing.
func TestReauthenticate(t *testing.T) {
	ts := startServer(t, socketio.Config{ExpiryWarning: time.Second})
	registerWhere(t, ts)
	ctx := testCtx(t, 30*time.Second)
	const user = "reauth"
	tok, exp := ts.shortToken(t, user, 3*time.Second)
	c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: []string{"websocket"}, Auth: map[string]any{"token": tok}})
	if _, err := c.WaitType(ctx, "connect"); err != nil {
		t.Fatal(err)
	}
	waitAuthenticated(t, ctx, c, user)

	expired, _ := ts.shortToken(t, user, -time.Hour)
	other, _ := ts.shortToken(t, "someone-else", time.Hour)
	for _, bad := range []struct{ token, code string }{
		{"not.a.jwt", auth.CodeTokenInvalid},
		{expired, auth.CodeTokenExpired},
		{other, socketio.CodeUserMismatch},
		{"", socketio.CodeInvalidPayload},
	} {
		args, err := c.EmitWithAck(ctx, "reauthenticate", 0, map[string]any{"token": bad.token})
		must(t, err)
		if len(args) != 1 || !strings.Contains(string(args[0]), `"code":"`+bad.code+`"`) {
			t.Fatalf("reauthenticate with %.20q = %s, want code %s", bad.token, args, bad.code)
		}
	}
	fresh, freshExp := ts.shortToken(t, user, time.Hour)
	args, err := c.EmitWithAck(ctx, "reauthenticate", 0, map[string]any{"token": fresh})
	must(t, err)
	var ack events.ReauthenticatedPayload
	if len(args) != 1 || json.Unmarshal(args[0], &ack) != nil || !ack.ExpiresAt.Equal(freshExp) {
		t.Fatalf("reauthenticate = %s, want expiresAt %v", args, freshExp)
	}
	// Past the old deadline: still connected, and never warned again.
	time.Sleep(time.Until(exp.Add(1500 * time.Millisecond)))
	args, err = c.EmitWithAck(ctx, "where", 0, map[string]any{"text": "still here"})
	if err != nil || len(args) != 1 {
		t.Fatalf("where after the old deadline: %s %v", args, err)
	}
	for _, m := range c.History() {
		if m.Type == "disconnect" || m.Event == "auth_expired" {
			t.Fatalf("after reauthenticate: %v", m)
		}
	}
}
