package eio_test

import (
	"errors"
	"testing"

	"github.com/herald-rt/herald/bench/internal/eio"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in          string
		kind        eio.Kind
		nsp         string
		id          int64
		attachments int
		data        string
	}{
		{`0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`, eio.Open, "", -1, 0,
			`{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
		{"1", eio.Close, "", -1, 0, ""},
		{"2", eio.Ping, "", -1, 0, ""},
		{"2probe", eio.Ping, "", -1, 0, "probe"},
		{"3", eio.Pong, "", -1, 0, ""},
		{"5", eio.Upgrade, "", -1, 0, ""},
		{"6", eio.Noop, "", -1, 0, ""},
		{`40{"sid":"x1"}`, eio.Connect, "", -1, 0, `{"sid":"x1"}`},
		{`40`, eio.Connect, "", -1, 0, ``},
		{`40/chat,{"sid":"x1"}`, eio.Connect, "/chat", -1, 0, `{"sid":"x1"}`},
		{`40/,{"sid":"x1"}`, eio.Connect, "", -1, 0, `{"sid":"x1"}`},
		{`41`, eio.Disconnect, "", -1, 0, ``},
		{`41/chat,`, eio.Disconnect, "/chat", -1, 0, ``},
		{`41/chat`, eio.Disconnect, "/chat", -1, 0, ``},
		{`42["bench",{"seq":1}]`, eio.Event, "", -1, 0, `["bench",{"seq":1}]`},
		{`4212["ev"]`, eio.Event, "", 12, 0, `["ev"]`},
		{`42/chat,7["ev",1]`, eio.Event, "/chat", 7, 0, `["ev",1]`},
		{`433[null]`, eio.Ack, "", 3, 0, `[null]`},
		{`44{"message":"unauthorized","data":{"code":"token_invalid"}}`, eio.ConnectError, "", -1, 0,
			`{"message":"unauthorized","data":{"code":"token_invalid"}}`},
		{`451-["up",{"_placeholder":true,"num":0}]`, eio.BinaryEvent, "", -1, 1, `["up",{"_placeholder":true,"num":0}]`},
		{`462-/chat,5[{"_placeholder":true,"num":0}]`, eio.BinaryAck, "/chat", 5, 2, `[{"_placeholder":true,"num":0}]`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := eio.Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Kind != tt.kind || string(p.Namespace) != tt.nsp || p.ID != tt.id || p.Attachments != tt.attachments || string(p.Data) != tt.data {
				t.Errorf("Parse = {%v %q %d %d %q}, want {%v %q %d %d %q}",
					p.Kind, p.Namespace, p.ID, p.Attachments, p.Data, tt.kind, tt.nsp, tt.id, tt.attachments, tt.data)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	for _, in := range []string{
		"",
		"7",
		"x",
		"0",                            // open without its object
		"0[]",                          // open with an array
		"4",                            // message without a Socket.IO packet
		"47",                           // Socket.IO type out of range
		"4x",                           // not a type
		"42",                           // event without data
		`42{"a":1}`,                    // event data is an object
		`43`,                           // ack without data
		`44`,                           // connect_error without data
		`44"no"`,                       // connect_error data is a string
		`40["x"]`,                      // connect data is an array
		`41{}`,                         // disconnect with data
		`45["x"]`,                      // binary event without attachment count
		`451["x"]`,                     // binary event without '-'
		"421234567890123456789[\"x\"]", // ack id longer than an int64
	} {
		t.Run(in, func(t *testing.T) {
			p, err := eio.Parse([]byte(in))
			if !errors.Is(err, eio.ErrMalformed) {
				t.Errorf("Parse = %+v, %v; want ErrMalformed", p, err)
			}
			if p.Kind != eio.Invalid {
				t.Errorf("Kind = %v on error, want invalid", p.Kind)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	if s := eio.ConnectError.String(); s != "connect_error" {
		t.Errorf("String = %q", s)
	}
	if s := eio.Kind(99).String(); s != "Kind(99)" {
		t.Errorf("String = %q", s)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	in := []byte(`42["bench",{"seq":3,"sentAt":1700000000000000,"pad":"","timestamp":"2024-01-01T00:00:00Z"}]`)
	if n := testing.AllocsPerRun(100, func() { _, _ = eio.Parse(in) }); n != 0 {
		t.Errorf("Parse allocates %v times", n)
	}
}
