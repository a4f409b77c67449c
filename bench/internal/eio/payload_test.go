package eio_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/herald-rt/herald/bench/internal/eio"
)

func TestCutPayload(t *testing.T) {
	type cut struct {
		kind eio.Kind
		data string
		bad  bool
	}
	tests := []struct {
		name    string
		payload string
		want    []cut
	}{
		{"one packet", `0{"sid":"a"}`, []cut{{kind: eio.Open, data: `{"sid":"a"}`}}},
		{"herald's connect answer", "40{\"sid\":\"x\"}\x1e42[\"authenticated\",{\"userId\":\"u1\"}]",
			[]cut{{kind: eio.Connect, data: `{"sid":"x"}`}, {kind: eio.Event, data: `["authenticated",{"userId":"u1"}]`}}},
		{"ping between events", "42[\"bench\",{\"seq\":0}]\x1e2\x1e42[\"bench\",{\"seq\":1}]",
			[]cut{{kind: eio.Event, data: `["bench",{"seq":0}]`}, {kind: eio.Ping}, {kind: eio.Event, data: `["bench",{"seq":1}]`}}},
		// A raw 0x1e splits even inside a JSON string: the servers'
		// JSON escapes it (\u001e), so the splitter need not know JSON.
		{"separator inside a string", "42[\"a\x1eb\"]", []cut{{kind: eio.Event, data: `["a`}, {bad: true}}},
		{"noop and close", "6\x1e1", []cut{{kind: eio.Noop}, {kind: eio.Close}}},
		{"malformed in the middle, the rest is good", "2\x1ex\x1e3", []cut{{kind: eio.Ping}, {bad: true}, {kind: eio.Pong}}},
		{"binary packet", "bAQID\x1e2", []cut{{bad: true}, {kind: eio.Ping}}},
		{"empty", "", []cut{{bad: true}}},
		{"trailing separator: an empty packet", "2\x1e", []cut{{kind: eio.Ping}, {bad: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rest, more := []byte(tt.payload), true
			var got []cut
			for more {
				var p eio.Packet
				var err error
				p, rest, more, err = eio.CutPayload(rest)
				if err != nil && !errors.Is(err, eio.ErrMalformed) {
					t.Fatalf("error %v does not wrap ErrMalformed", err)
				}
				if err != nil {
					got = append(got, cut{bad: true})
					continue
				}
				got = append(got, cut{kind: p.Kind, data: string(p.Data)})
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d packets %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("packet %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCutPayloadDoesNotAllocate(t *testing.T) {
	payload := []byte(strings.Repeat("42[\"bench\",{\"seq\":1,\"sentAt\":2}]\x1e", 20) + "2")
	allocs := testing.AllocsPerRun(100, func() {
		rest, more := payload, true
		for more {
			_, rest, more, _ = eio.CutPayload(rest)
		}
	})
	if allocs != 0 {
		t.Errorf("CutPayload allocates %v times per payload", allocs)
	}
}
