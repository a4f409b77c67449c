package socketio

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

// TestEncodeEvent: herald's encoding of an EVENT packet is byte for byte
// what upstream's encoder writes for the same packet.
func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		nsp, event string
		args       []string
	}{
		{"/", "job_progress", []string{`{"jobId":"j1","progress":50,"timestamp":"2026-01-01T00:00:00Z"}`}},
		{"/", "no_args", nil},
		{"/admin", "two", []string{`{"a":1}`, `[1,"x",null]`}},
		{"/", `quote"and\backslash`, []string{`"é \u2028"`}},
		{"/", "scalars", []string{`1`, `true`, `null`, `-0.5e3`}},
	}
	for _, tt := range tests {
		var raw []json.RawMessage
		data := []any{tt.event}
		for _, a := range tt.args {
			raw = append(raw, json.RawMessage(a))
			data = append(data, json.RawMessage(a))
		}
		got, err := encodeEvent(tt.nsp, tt.event, raw)
		if err != nil {
			t.Fatalf("%s: %v", tt.event, err)
		}
		want := parser.NewEncoder().Encode(&parser.Packet{Type: parser.EVENT, Nsp: tt.nsp, Data: data})
		if len(want) != 1 || got.String() != want[0].String() {
			t.Errorf("encodeEvent(%q, %q) = %s, upstream %v", tt.nsp, tt.event, got, want)
		}
	}
}

func TestEncodeEventBadArg(t *testing.T) {
	for _, a := range []string{``, `{`, `{"a":1}x`, `nul`} {
		if _, err := encodeEvent("/", "e", []json.RawMessage{json.RawMessage(a)}); !errors.Is(err, errInvalidArg) {
			t.Errorf("arg %q: err = %v, want errInvalidArg", a, err)
		}
	}
}
