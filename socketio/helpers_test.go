package socketio_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

// testServer is a herald Server on a real loopback HTTP server.
type testServer struct {
	*socketio.Server
	URL    string
	secret []byte
}

// startServer starts a Server with cfg (Verifier is filled in when nil) and
// shuts it down when the test ends.
func startServer(t testing.TB, cfg socketio.Config) *testServer {
	t.Helper()
	return startServerWith(t, cfg, nil)
}

// startServerWith is startServer with wrap, when not nil, around the
// Server's Socket.IO handler.
func startServerWith(t testing.TB, cfg socketio.Config, wrap func(http.Handler) http.Handler) *testServer {
	t.Helper()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	if cfg.Verifier == nil {
		v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}}})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Verifier = v
	}
	if cfg.ShutdownDrain == 0 {
		cfg.ShutdownDrain = -1 // TestShutdownDrain tests the drain
	}
	if cfg.HandshakeRate == 0 {
		// The tests connect hundreds of clients from one address;
		// TestHandshakeRate tests the limit itself.
		cfg.HandshakeRate = -1
	}
	if cfg.MaxPendingConnections == 0 {
		cfg.MaxPendingConnections = -1 // likewise
	}
	srv, err := socketio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(srv)
	}
	mux.Handle(srv.Path(), h)
	mux.Handle("/api/v1/websocket/stats", srv.StatsHandler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("http Shutdown: %v", err)
		}
	})
	return &testServer{Server: srv, URL: "http://" + ln.Addr().String(), secret: secret}
}

func (ts *testServer) token(t testing.TB, userID string) string {
	t.Helper()
	tok, err := auth.NewHMACToken(ts.secret, userID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect starts a Node socket.io-client for userID and waits for connect.
func (ts *testServer) connect(t *testing.T, userID string, transports ...string) *nodeclient.Client {
	t.Helper()
	c := nodeclient.Start(t, nodeclient.Options{URL: ts.URL, Transports: transports, Auth: map[string]any{"token": ts.token(t, userID)}})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" || m.Type == "connect_error" })
	if err != nil {
		t.Fatalf("connect %s: %v", userID, err)
	}
	if m.Type != "connect" {
		t.Fatalf("connect %s: %v", userID, m)
	}
	// The server greets every accepted socket; waiting for it means the
	// server has finished its connection bookkeeping (rooms, presence).
	if _, err := c.WaitEvent(ctx, "authenticated"); err != nil {
		t.Fatalf("authenticated %s: %v", userID, err)
	}
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or 10 s pass. It is for waiting on
// another process, not for measuring time.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
