package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/events"
)

var now = time.Date(2026, 11, 22, 10, 30, 0, 123000000, time.FixedZone("CET", 3600))

func TestBuiltinNames(t *testing.T) {
	cases := map[events.Event]string{
		events.JobProgress:       "job_progress",
		events.JobCompleted:      "job_completed",
		events.JobFailed:         "job_failed",
		events.AnalysisStarted:   "analysis:started",
		events.AnalysisCompleted: "analysis:completed",
		events.AnalysisFailed:    "analysis:failed",
		events.UserOnline:        "user_online",
		events.UserOffline:       "user_offline",
		events.Authenticated:     "authenticated",
		events.AuthExpired:       "auth_expired",
		events.Reauthenticate:    "reauthenticate",
		events.ServerDisconnect:  "server_disconnect",
	}
	for ev, want := range cases {
		if ev.Name() != want {
			t.Errorf("Name() = %q, want %q", ev.Name(), want)
		}
	}
}

func TestNewRejectsBadNames(t *testing.T) {
	for _, name := range []string{"", "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener", strings.Repeat("x", 129), "\xff"} {
		if _, err := events.New[events.PresencePayload](name); !errors.Is(err, events.ErrInvalidName) {
			t.Errorf("New(%q) = %v, want ErrInvalidName", name, err)
		}
	}
	if _, err := events.New[string]("plain"); !errors.Is(err, events.ErrPayloadType) {
		t.Errorf("New[string] = %v, want ErrPayloadType", err)
	}
	if _, err := events.New[[]int]("list"); !errors.Is(err, events.ErrPayloadType) {
		t.Errorf("New[[]int] = %v, want ErrPayloadType", err)
	}
	for _, ok := range []func() error{
		func() error { _, err := events.New[map[string]any]("m"); return err },
		func() error { _, err := events.New[*events.JobFailedPayload]("p"); return err },
	} {
		if err := ok(); err != nil {
			t.Error(err)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Define with a reserved name did not panic")
		}
	}()
	events.Define[events.PresencePayload]("connect")
}

func TestEncodeWireFormat(t *testing.T) {
	cases := []struct {
		name string
		ev   events.Event
		p    any
		want string
	}{
		{"progress", events.JobProgress, events.JobProgressPayload{JobID: "j1", Progress: 40, Message: "half"},
			`{"jobId":"j1","progress":40,"message":"half","timestamp":"2026-11-22T09:30:00.123Z"}`},
		{"progress without message", events.JobProgress, events.JobProgressPayload{JobID: "j1", Progress: 0},
			`{"jobId":"j1","progress":0,"timestamp":"2026-11-22T09:30:00.123Z"}`},
		{"completed with result", events.JobCompleted, events.JobCompletedPayload{JobID: "j1", Result: map[string]int{"n": 1}},
			`{"jobId":"j1","result":{"n":1},"timestamp":"2026-11-22T09:30:00.123Z"}`},
		{"failed", events.JobFailed, events.JobFailedPayload{JobID: "j1", Error: "nope"},
			`{"jobId":"j1","error":"nope","timestamp":"2026-11-22T09:30:00.123Z"}`},
		{"analysis", events.AnalysisFailed, events.AnalysisPayload{InterviewID: "i", Message: "m", Status: "failed"},
			`{"interviewId":"i","message":"m","status":"failed","timestamp":"2026-11-22T09:30:00.123Z"}`},
		{"presence keeps its own timestamp", events.UserOnline, events.PresencePayload{UserID: "u", Meta: events.Meta{Timestamp: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}},
			`{"userId":"u","timestamp":"2020-01-01T00:00:00Z"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.ev.EncodeAny(tc.p, now)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

type custom struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

type customWithTS struct {
	Text      string `json:"text"`
	Timestamp string `json:"timestamp"`
}

func TestEncodeCustomPayloads(t *testing.T) {
	chat := events.Define[custom]("chat")
	got, err := chat.Encode(custom{Room: "r", Text: "hi"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"timestamp":"2026-11-22T09:30:00.123Z","room":"r","text":"hi"}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	empty := events.Define[struct{}]("empty")
	got, err = empty.Encode(struct{}{}, now)
	if err != nil || string(got) != `{"timestamp":"2026-11-22T09:30:00.123Z"}` {
		t.Fatalf("empty: %s, %v", got, err)
	}
	own := events.Define[customWithTS]("own")
	got, err = own.Encode(customWithTS{Text: "x", Timestamp: "mine"}, now)
	if err != nil || string(got) != `{"text":"x","timestamp":"mine"}` {
		t.Fatalf("own timestamp: %s, %v", got, err)
	}
	ptr := events.Define[*events.JobFailedPayload]("ptr")
	if _, err := ptr.Encode(nil, now); !errors.Is(err, events.ErrInvalidPayload) {
		t.Fatalf("nil pointer: %v", err)
	}
	got, err = ptr.Encode(&events.JobFailedPayload{JobID: "j", Error: "e"}, now)
	if err != nil || !strings.Contains(string(got), `"timestamp":"2026-11-22T09:30:00.123Z"`) {
		t.Fatalf("pointer payload: %s, %v", got, err)
	}
	m := events.Define[map[string]any]("map")
	if _, err := m.Encode(nil, now); !errors.Is(err, events.ErrInvalidPayload) {
		t.Fatalf("nil map: %v", err)
	}
	if _, err := events.JobProgress.EncodeAny("string", now); !errors.Is(err, events.ErrPayloadType) {
		t.Fatalf("EncodeAny wrong type: %v", err)
	}
}

func TestValidation(t *testing.T) {
	long := strings.Repeat("x", events.MaxMessageLength+1)
	cases := []struct {
		name string
		ev   events.Event
		p    any
	}{
		{"progress -1", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: -1}},
		{"progress 101", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 101}},
		{"no job id", events.JobProgress, events.JobProgressPayload{Progress: 1}},
		{"long job id", events.JobFailed, events.JobFailedPayload{JobID: strings.Repeat("j", 257)}},
		{"long message", events.JobProgress, events.JobProgressPayload{JobID: "j", Message: long}},
		{"no interview id", events.AnalysisStarted, events.AnalysisPayload{Message: "m"}},
		{"no user id", events.UserOnline, events.PresencePayload{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.ev.EncodeAny(tc.p, now); !errors.Is(err, events.ErrInvalidPayload) {
				t.Fatalf("err = %v, want ErrInvalidPayload", err)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"valid", `{"jobId":"j","progress":10}`, false},
		{"unknown fields ignored", `{"jobId":"j","progress":10,"extra":[1,2]}`, false},
		{"with timestamp", `{"jobId":"j","progress":10,"timestamp":"2026-01-01T00:00:00Z"}`, false},
		{"empty", ``, true},
		{"null", `null`, true},
		{"array", `[1]`, true},
		{"string", `"x"`, true},
		{"wrong type", `{"jobId":1}`, true},
		{"out of range", `{"jobId":"j","progress":1000}`, true},
		{"truncated", `{"jobId":"j"`, true},
		{"bad timestamp", `{"jobId":"j","timestamp":"yesterday"}`, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := events.JobProgress.Decode([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, events.ErrInvalidPayload) {
					t.Fatalf("err = %v, want ErrInvalidPayload", err)
				}
				return
			}
			if err != nil || p.JobID != "j" || p.Progress != 10 {
				t.Fatalf("Decode = %+v, %v", p, err)
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes to a typed decoder: it must never panic,
// must fail only with ErrInvalidPayload, and what it accepts must encode
// again.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"jobId":"j","progress":10}`, `{}`, `null`, `{"jobId":"\u0000","progress":-0}`, `{"progress":1e400}`, `[`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := events.JobProgress.Decode(data)
		if err != nil {
			if !errors.Is(err, events.ErrInvalidPayload) {
				t.Fatalf("error %v does not wrap ErrInvalidPayload", err)
			}
			return
		}
		out, err := events.JobProgress.Encode(p, now)
		if err != nil {
			t.Fatalf("decoded payload %+v does not encode: %v", p, err)
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %s", out)
		}
	})
}

func TestDecodeErrorSpeaksJSON(t *testing.T) {
	type inner struct {
		N int `json:"n"`
	}
	type payload struct {
		Name  string `json:"name"`
		Inner inner  `json:"inner"`
	}
	def := events.Define[payload]("shape")
	for _, tt := range []struct {
		in, field, message string
	}{
		{`{"name":1}`, "name", "name: want a string, got a number"},
		{`{"inner":{"n":"x"}}`, "inner.n", "inner.n: want an integer, got a string"},
		{`{"inner":{"n":-5.5}}`, "inner.n", "inner.n: want an integer, got the number -5.5"},
		{`{"name":"x",}`, "", "malformed JSON at byte 13"},
		{`[1]`, "", "not a JSON object"},
	} {
		_, err := def.Decode([]byte(tt.in))
		var pe *events.PayloadError
		if !errors.As(err, &pe) || !errors.Is(err, events.ErrInvalidPayload) {
			t.Fatalf("Decode(%s) = %v, want a *PayloadError wrapping ErrInvalidPayload", tt.in, err)
		}
		if pe.Event != "shape" || pe.Field != tt.field || pe.Message() != tt.message {
			t.Errorf("Decode(%s): event %q field %q message %q, want shape %q %q", tt.in, pe.Event, pe.Field, pe.Message(), tt.field, tt.message)
		}
		if !strings.HasPrefix(err.Error(), "events: invalid payload: shape: ") {
			t.Errorf("Decode(%s).Error() = %q", tt.in, err)
		}
		for _, goism := range []string{"payload", "inner.N", "Go ", "struct", "int"} {
			if strings.Contains(pe.Message(), goism) && !strings.Contains(tt.message, goism) {
				t.Errorf("Decode(%s).Message() = %q names %q", tt.in, pe.Message(), goism)
			}
		}
	}
	// The decoder's own error stays reachable, for logs.
	_, err := def.Decode([]byte(`{"name":1}`))
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		t.Errorf("errors.As(%v, *json.UnmarshalTypeError) = false", err)
	}
}
