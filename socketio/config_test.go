package socketio_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio"
)

type fakeVerifier struct{}

func (fakeVerifier) Verify(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, auth.ErrTokenInvalid
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name  string
		cfg   socketio.Config
		wants []string
	}{
		{"no verifier", socketio.Config{}, []string{"Verifier is required"}},
		{"bad path", socketio.Config{Verifier: fakeVerifier{}, Path: "socket.io"}, []string{"Path"}},
		{"path with query", socketio.Config{Verifier: fakeVerifier{}, Path: "/x?y"}, []string{"Path"}},
		{"unknown transport", socketio.Config{Verifier: fakeVerifier{}, Transports: []string{"webtransport"}}, []string{"unknown transport"}},
		{"negative durations", socketio.Config{Verifier: fakeVerifier{}, PingInterval: -1, PingTimeout: -1, AckTimeout: -1, ExpiryWarning: -1}, []string{"PingInterval", "PingTimeout", "AckTimeout", "ExpiryWarning"}},
		{"negative buffer", socketio.Config{Verifier: fakeVerifier{}, MaxHTTPBufferSize: -5}, []string{"MaxHTTPBufferSize"}},
		{"bad origins", socketio.Config{Verifier: fakeVerifier{}, AllowedOrigins: []string{"example.com", "ftp://x", "https://ok.example"}}, []string{`"example.com"`, `"ftp://x"`}},
		{"bad namespaces", socketio.Config{Verifier: fakeVerifier{}, Namespaces: []string{"/", "admin", "/a,b", "/a#", "/x*", "/t\n", "/" + strings.Repeat("n", socketio.MaxNamespaceLength), "/ok", "/ok", "/bad\xff"}},
			[]string{`"/" is the main`, `"admin" does not start`, `"/a,b" has`, `"/a#" has`, `"/x*" has`, `"/t\n" has`, "longer than 128", `"/ok" is listed twice`, "UTF-8"}},
		{"unknown parser", socketio.Config{Verifier: fakeVerifier{}, Parser: "json"}, []string{"unknown parser", `"json"`}},
		{"parser names are case-sensitive", socketio.Config{Verifier: fakeVerifier{}, Parser: "MsgPack"}, []string{`"MsgPack"`}},
		{"everything at once", socketio.Config{Path: "x", Transports: []string{"carrier-pigeon"}, ConnectTimeout: -1, Parser: " msgpack"}, []string{"Verifier", "Path", "carrier-pigeon", "ConnectTimeout", `" msgpack"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := socketio.New(tc.cfg)
			if err == nil || srv != nil {
				t.Fatalf("New = %v, %v; want an error", srv, err)
			}
			if !errors.Is(err, socketio.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(tc.name, "origins") && strings.Contains(err.Error(), "ok.example") {
				t.Errorf("valid origin reported: %v", err)
			}
		})
	}
}

func TestNewAcceptsParsers(t *testing.T) {
	for _, p := range []string{"", socketio.ParserDefault, socketio.ParserMsgpack} {
		srv, err := socketio.New(socketio.Config{Verifier: fakeVerifier{}, Parser: p})
		if err != nil {
			t.Fatalf("Parser %q: %v", p, err)
		}
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func newServer(t *testing.T) *socketio.Server {
	t.Helper()
	srv, err := socketio.New(socketio.Config{Verifier: fakeVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

func TestEmitRejectsBadInput(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	ok := events.JobProgressPayload{JobID: "j", Progress: 5}
	cases := []struct {
		name string
		emit func() error
		want error
	}{
		{"empty user", func() error { return srv.EmitToUser(ctx, "", events.JobProgress, ok) }, socketio.ErrInvalidUserID},
		{"control chars in user", func() error { return srv.EmitToUser(ctx, "a\nb", events.JobProgress, ok) }, socketio.ErrInvalidUserID},
		{"huge user", func() error { return srv.EmitToUser(ctx, strings.Repeat("u", 300), events.JobProgress, ok) }, socketio.ErrInvalidUserID},
		{"bad utf8 user", func() error { return srv.EmitToUser(ctx, "\xff", events.JobProgress, ok) }, socketio.ErrInvalidUserID},
		{"nil event", func() error { return srv.EmitToUser(ctx, "u", nil, ok) }, events.ErrInvalidName},
		{"wrong payload type", func() error { return srv.EmitToUser(ctx, "u", events.JobFailed, ok) }, events.ErrPayloadType},
		{"nil payload", func() error { return srv.EmitToUser(ctx, "u", events.JobFailed, nil) }, events.ErrPayloadType},
		{"progress out of range", func() error {
			return srv.EmitToUser(ctx, "u", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 101})
		}, events.ErrInvalidPayload},
		{"missing job id", func() error {
			return srv.EmitToUser(ctx, "u", events.JobCompleted, events.JobCompletedPayload{})
		}, events.ErrInvalidPayload},
		{"unencodable result", func() error {
			return srv.EmitToUser(ctx, "u", events.JobCompleted, events.JobCompletedPayload{JobID: "j", Result: func() {}})
		}, events.ErrInvalidPayload},
		{"empty room", func() error { return srv.EmitToRoom(ctx, "", events.JobProgress, ok) }, socketio.ErrInvalidRoom},
		{"room with control chars", func() error { return srv.EmitToRoom(ctx, "a\x00", events.JobProgress, ok) }, socketio.ErrInvalidRoom},
		{"cancelled context", func() error {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return srv.EmitToUser(c, "u", events.JobProgress, ok)
		}, context.Canceled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.emit(); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// A user who is not connected is not an error.
	if err := srv.EmitToUser(ctx, "nobody", events.JobProgress, ok); err != nil {
		t.Fatalf("emit to offline user: %v", err)
	}
	if _, err := srv.IsOnline(ctx, ""); !errors.Is(err, socketio.ErrInvalidUserID) {
		t.Fatalf("IsOnline(\"\"): %v", err)
	}
}

func TestShutdownIdempotentAndConcurrent(t *testing.T) {
	srv := newServer(t)
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- srv.Shutdown(context.Background()) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := socketio.On(srv, events.JobProgress, func(context.Context, *socketio.Socket, events.JobProgressPayload) error { return nil }); !errors.Is(err, socketio.ErrServerClosed) {
		t.Fatalf("On after Shutdown: %v", err)
	}
}

func FuzzValidateRoom(f *testing.F) {
	for _, s := range []string{"user:1", "", "a\x00b", "\xff\xfe", strings.Repeat("r", 600), "room with spaces", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, room string) {
		err := socketio.ValidateRoom(room)
		if err != nil && !errors.Is(err, socketio.ErrInvalidRoom) {
			t.Fatalf("error %v does not wrap ErrInvalidRoom", err)
		}
		if err == nil && (room == "" || len(room) > socketio.MaxRoomLength || strings.ContainsAny(room, "\x00\n\r\t")) {
			t.Fatalf("accepted %q", room)
		}
	})
}
