package socketio_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/testenv"
	"github.com/herald-rt/herald/socketio"
)

// bxResult is what pageExpiry (testdata/browser-matrix.js) reports for one
// case: the tokens it fetched, which one each call of its auth callback
// handed out, and every event it saw, in order.
type bxResult struct {
	Error  *string `json:"error"`
	Tokens []struct {
		Label string    `json:"label"`
		Exp   time.Time `json:"exp"`
	} `json:"tokens"`
	AuthCalls []string  `json:"authCalls"`
	Log       []bxEntry `json:"log"`
	Who       *bxWho    `json:"who"`
	SocketID  string    `json:"socketId"`
}

type bxEntry struct {
	Type    string          `json:"type"`
	At      int64           `json:"at"`                // the page's Date.now()
	ID      string          `json:"id,omitempty"`      // connect
	Reason  string          `json:"reason,omitempty"`  // disconnect
	Message string          `json:"message,omitempty"` // connect_error
	Data    json.RawMessage `json:"data,omitempty"`    // connect_error
	Active  *bool           `json:"active,omitempty"`  // connect_error: socket.active
	Payload json.RawMessage `json:"payload,omitempty"` // server events
	Ack     json.RawMessage `json:"ack,omitempty"`     // reauthenticated
	index   int
}

func (e bxEntry) time() time.Time { return time.UnixMilli(e.At) }

// String is e as the page logged it, for failure messages.
func (e bxEntry) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// bxWho is the server's view of a socket (bm_who on this test's server).
type bxWho struct {
	SocketID  string    `json:"socketId"`
	UserID    string    `json:"userId"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// entries returns r's log entries of type typ, each with its index.
func (r bxResult) entries(typ string) []bxEntry {
	var out []bxEntry
	for i, e := range r.Log {
		if e.Type == typ {
			e.index = i
			out = append(out, e)
		}
	}
	return out
}

// exp returns the expiry of the page's token labelled label.
func (r bxResult) exp(t *testing.T, label string) time.Time {
	t.Helper()
	for _, tok := range r.Tokens {
		if tok.Label == label {
			return tok.Exp
		}
	}
	t.Fatalf("the page fetched no %s token: %+v", label, r.Tokens)
	return time.Time{}
}

// TestBrowserTokenExpiry is TestTokenExpiry and TestReauthenticate for the
// browser bundle of the default socket.io-client, in headless Chromium:
// tokens that live about 3.5 s (ExpiryWarning 2 s, a Verifier without
// leeway), the auth option a callback, and three pages at once (pageExpiry
// in testdata/browser-matrix.js), each reacting to auth_expired its own way:
//
//   - callback: fetches a fresh token for the callback and waits; the
//     server closes the connection at the deadline, the client reconnects
//     by itself with the fresh token and receives an emit to its user.
//   - reauthenticate: sends the fresh token in reauthenticate; the socket
//     stays connected, with the same id, past the old deadline and
//     receives an emit to its user sent after it.
//   - expired token: does nothing; the reconnection is refused with
//     connect_error token_expired and the client stops.
func TestBrowserTokenExpiry(t *testing.T) {
	node := testenv.RequireNode(t)
	chromium := testenv.RequireChromium(t)
	cv := matrixClients[slices.IndexFunc(matrixClients, func(c matrixClient) bool { return c.pkg == "socket.io-client" })]
	bundle := browserBundle(t, testenv.TestdataDir(t), cv)

	ts := startBrowserMatrixServer(t, socketio.Config{ExpiryWarning: 2 * time.Second}, map[string][]byte{cv.version: bundle})
	must(t, socketio.OnAck(ts.Server, bmWhoEvent, func(ctx context.Context, s *socketio.Socket, p echoPayload) (bxWho, error) {
		return bxWho{SocketID: s.ID(), UserID: s.UserID(), ExpiresAt: s.ExpiresAt().UTC()}, nil
	}))

	type bxCase struct {
		Name  string `json:"name"`
		URL   string `json:"url"`
		Page  string `json:"page"`
		check func(t *testing.T, r bxResult, user string, deadline time.Time)
	}
	cases := []bxCase{
		{Name: "callback", check: checkExpiryCallback},
		{Name: "reauthenticate", check: checkExpiryReauthenticate},
		{Name: "expired token", check: checkExpiryRefused},
	}
	onExpired := map[string]string{"callback": "refresh", "reauthenticate": "reauth", "expired token": "none"}
	for i, c := range cases {
		q := url.Values{"v": {cv.version}, "user": {bxUser(c.Name)}, "ttl": {"4s"}, "onExpired": {onExpired[c.Name]}}
		cases[i].URL = ts.URL + "/page?" + q.Encode()
		cases[i].Page = "expiry"
	}

	lines := runBrowserMatrix(t, node, chromium, 40*time.Second, cases, true)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r := pageResult[bxResult](t, lines, c.Name)
			user := bxUser(c.Name)
			deadline := checkExpiryWarned(t, r, user)
			c.check(t, r, user, deadline)
		})
	}
}

func bxUser(name string) string { return "bx-" + strings.ReplaceAll(name, " ", "-") }

// checkExpiryWarned checks what every case sees first: a connection of
// user, then one auth_expired, before the deadline it names, which is the
// initial token's exp (or up to a second later, when the handshake itself
// came within a second of exp). It returns the deadline.
func checkExpiryWarned(t *testing.T, r bxResult, user string) time.Time {
	t.Helper()
	exp := r.exp(t, "initial")
	if len(r.Log) == 0 || r.Log[0].Type != "connect" {
		t.Fatalf("the page's first event is not connect: %v", r.Log)
	}
	a := r.entries("authenticated")
	var greeting events.AuthenticatedPayload
	if len(a) == 0 || json.Unmarshal(a[0].Payload, &greeting) != nil || greeting.UserID != user {
		t.Fatalf("authenticated = %v, want user %q", a, user)
	}
	w := r.entries("auth_expired")
	if len(w) != 1 {
		t.Fatalf("auth_expired %d times, want once: %v", len(w), w)
	}
	var p events.AuthExpiredPayload
	if err := json.Unmarshal(w[0].Payload, &p); err != nil {
		t.Fatalf("auth_expired payload %s: %v", w[0].Payload, err)
	}
	if p.ExpiresAt.Before(exp) || p.ExpiresAt.After(exp.Add(time.Second)) {
		t.Fatalf("auth_expired says expiresAt %v, want the token's exp %v", p.ExpiresAt, exp)
	}
	if !w[0].time().Before(p.ExpiresAt) {
		t.Fatalf("auth_expired came at %v, not before expiresAt %v", w[0].time(), p.ExpiresAt)
	}
	return p.ExpiresAt
}

// checkExpiryDisconnect checks that the page lost its connection once,
// because the server closed it, and not before the deadline.
func checkExpiryDisconnect(t *testing.T, r bxResult, deadline time.Time) bxEntry {
	t.Helper()
	d := r.entries("disconnect")
	if len(d) != 1 || d[0].Reason != "transport close" {
		t.Fatalf("disconnects = %v, want one transport close", d)
	}
	if d[0].time().Before(deadline.Add(-100 * time.Millisecond)) {
		t.Fatalf("disconnected at %v, before the deadline %v", d[0].time(), deadline)
	}
	return d[0]
}

// checkJobProgress checks that the page received the server's emit to user
// after it asked for it.
func checkJobProgress(t *testing.T, r bxResult, user string) bxEntry {
	t.Helper()
	asked := r.entries("emit")
	if len(asked) != 1 {
		t.Fatalf("asked for job_progress %d times", len(asked))
	}
	for _, e := range r.entries("job_progress") {
		var p events.JobProgressPayload
		if e.index > asked[0].index && json.Unmarshal(e.Payload, &p) == nil && p.JobID == "b-"+user {
			return asked[0]
		}
	}
	t.Fatalf("no job_progress for %q after asking for it: %v", user, r.Log)
	return bxEntry{}
}

func checkExpiryCallback(t *testing.T, r bxResult, user string, deadline time.Time) {
	fresh := r.exp(t, "fresh")
	if want := []string{"initial", "fresh"}; !slices.Equal(r.AuthCalls, want) {
		t.Errorf("the auth callback handed out %v, want %v", r.AuthCalls, want)
	}
	gone := checkExpiryDisconnect(t, r, deadline)
	if e := r.entries("connect_error"); len(e) != 0 {
		t.Fatalf("connect_error: %v", e)
	}
	c := r.entries("connect")
	if len(c) != 2 || c[1].index < gone.index || c[1].ID == c[0].ID {
		t.Fatalf("connects = %v, want a second one, with a new id, after the disconnect", c)
	}
	a := r.entries("authenticated")
	if len(a) != 2 || a[1].index < c[1].index {
		t.Fatalf("authenticated = %v, want a second greeting after the reconnection", a)
	}
	if w := r.Who; w == nil || w.SocketID != c[1].ID || w.UserID != user || !w.ExpiresAt.Equal(fresh) {
		t.Fatalf("server sees %+v, want socket %q of %q with the fresh token (exp %v)", w, c[1].ID, user, fresh)
	}
	if asked := checkJobProgress(t, r, user); asked.index < a[1].index {
		t.Fatalf("job_progress asked for before the reconnection: %v", r.Log)
	}
}

func checkExpiryReauthenticate(t *testing.T, r bxResult, user string, deadline time.Time) {
	fresh := r.exp(t, "fresh")
	if want := []string{"initial"}; !slices.Equal(r.AuthCalls, want) {
		t.Errorf("the auth callback handed out %v, want %v", r.AuthCalls, want)
	}
	re := r.entries("reauthenticated")
	if len(re) != 1 {
		t.Fatalf("reauthenticate acks: %v, want one", re)
	}
	var ack struct {
		ExpiresAt time.Time       `json:"expiresAt"`
		Error     *socketio.Error `json:"error"`
	}
	if err := json.Unmarshal(re[0].Ack, &ack); err != nil || ack.Error != nil || !ack.ExpiresAt.Equal(fresh) {
		t.Fatalf("reauthenticate ack = %s (%v), want expiresAt %v", re[0].Ack, err, fresh)
	}
	if !re[0].time().Before(deadline) {
		t.Fatalf("reauthenticated at %v, not before the deadline %v", re[0].time(), deadline)
	}
	if d := r.entries("disconnect"); len(d) != 0 {
		t.Fatalf("disconnected after reauthenticate: %v", d)
	}
	c := r.entries("connect")
	if len(c) != 1 || r.SocketID != c[0].ID {
		t.Fatalf("connects = %v, socket id at the end %q: want one connection throughout", c, r.SocketID)
	}
	if w := r.Who; w == nil || w.SocketID != c[0].ID || w.UserID != user || !w.ExpiresAt.Equal(fresh) {
		t.Fatalf("server sees %+v, want socket %q of %q with the fresh token (exp %v)", w, c[0].ID, user, fresh)
	}
	if asked := checkJobProgress(t, r, user); !asked.time().After(deadline) {
		t.Fatalf("job_progress asked for at %v, not after the old deadline %v", asked.time(), deadline)
	}
}

func checkExpiryRefused(t *testing.T, r bxResult, user string, deadline time.Time) {
	if want := []string{"initial", "initial"}; !slices.Equal(r.AuthCalls, want) {
		t.Errorf("the auth callback handed out %v, want %v", r.AuthCalls, want)
	}
	gone := checkExpiryDisconnect(t, r, deadline)
	if c := r.entries("connect"); len(c) != 1 {
		t.Fatalf("connects = %v, want none after the disconnect", c)
	}
	ce := r.entries("connect_error")
	var data struct{ Code string }
	if len(ce) != 1 || ce[0].index < gone.index || ce[0].Message != "unauthorized" ||
		json.Unmarshal(ce[0].Data, &data) != nil || data.Code != auth.CodeTokenExpired {
		t.Fatalf("connect_error = %v, want one, unauthorized with data.code %s", ce, auth.CodeTokenExpired)
	}
	// The client gives up: it is no longer active, and tries no more.
	if a := ce[0].Active; a == nil || *a {
		t.Errorf("socket.active at connect_error: %v, want false", ce[0])
	}
	for _, e := range r.entries("reconnect_attempt") {
		if e.index > ce[0].index {
			t.Errorf("reconnect attempt after connect_error: %v", e)
		}
	}
}
