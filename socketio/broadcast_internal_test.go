package socketio

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// TestEncodeEvent: the broadcast encoding of an EVENT packet (written
// straight into the WebSocket frame's buffer) is byte for byte the
// parser's, and what socket.io-parser writes for the same packet.
func TestEncodeEvent(t *testing.T) {
	srv, err := New(Config{Verifier: nopVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	tests := []struct {
		nsp, event string
		args       []string
		offset     string
		want       string
	}{
		{"/", "job_progress", []string{`{"jobId":"j1","progress":50,"timestamp":"2026-01-01T00:00:00Z"}`}, "",
			`42["job_progress",{"jobId":"j1","progress":50,"timestamp":"2026-01-01T00:00:00Z"}]`},
		{"/", "no_args", nil, "", `42["no_args"]`},
		{"/admin", "two", []string{`{"a":1}`, `[1,"x",null]`}, "", `42/admin,["two",{"a":1},[1,"x",null]]`},
		{"/", `quote"and\backslash`, []string{`"é \u2028"`}, "", `42["quote\"and\\backslash","é \u2028"]`},
		{"/", "scalars", []string{`1`, `true`, `null`, `-0.5e3`}, "", `42["scalars",1,true,null,-0.5e3]`},
		{"/", "logged", []string{`{}`}, "1700000000000-0", `42["logged",{},"1700000000000-0"]`},
	}
	for _, tt := range tests {
		var raw []json.RawMessage
		for _, a := range tt.args {
			raw = append(raw, json.RawMessage(a))
		}
		msgs, err := srv.encodeEvent(tt.nsp, tt.event, raw, tt.offset)
		if err != nil {
			t.Fatalf("%s: %v", tt.event, err)
		}
		if len(msgs) != 1 || msgs[0].Binary() || "4"+string(msgs[0].Data()) != tt.want {
			t.Errorf("encodeEvent(%q, %q) = %q, want %q", tt.nsp, tt.event, msgs[0].Data(), tt.want)
		}
		// The general path gives the same bytes.
		if tt.offset != "" {
			continue
		}
		data, err := appendArray(nil, tt.event, raw)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := parser.Default().Encode(&parser.Packet{Type: parser.Event, Nsp: tt.nsp, Data: data})
		if err != nil || len(pm) != 1 || "4"+string(pm[0].Data) != tt.want {
			t.Errorf("parser: %v %v, want %q", pm, err, tt.want)
		}
	}
}

func TestEncodeEventBadArg(t *testing.T) {
	srv, err := New(Config{Verifier: nopVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(t.Context()) })
	for _, a := range []string{``, `{`, `{"a":1}x`, `nul`} {
		if _, err := srv.encodeEvent("/", "e", []json.RawMessage{json.RawMessage(a)}, ""); err == nil {
			t.Errorf("arg %q: no error", a)
		}
	}
}

type nopVerifier struct{}

func (nopVerifier) Verify(context.Context, string) (auth.Principal, error) {
	return auth.Principal{}, auth.ErrTokenInvalid
}
