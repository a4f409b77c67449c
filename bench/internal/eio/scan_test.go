package eio_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-rt/herald/bench/internal/eio"
)

// heraldEvent is a bench event as herald sends it (the Data of "42...").
const heraldEvent = `["bench",{"seq":7,"sentAt":1733212800123456,"pad":"xxxxxxxx","timestamp":"2024-12-03T08:00:00.123456Z"}]`

func TestSplitEvent(t *testing.T) {
	tests := []struct {
		in, name, args string
	}{
		{heraldEvent, "bench", heraldEvent[9:]},
		{`["ev"]`, "ev", ""},
		{` [ "ev" , 1 , 2 ] `, "ev", "1 , 2 ] "},
		{`["e\"v",{}]`, `e"v`, "{}]"},
		{`["\u0062ench",{}]`, "bench", "{}]"},
		{`["",null]`, "", "null]"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			name, args, err := eio.SplitEvent([]byte(tt.in))
			if err != nil {
				t.Fatalf("SplitEvent: %v", err)
			}
			if string(name) != tt.name || string(args) != tt.args {
				t.Errorf("SplitEvent = %q, %q; want %q, %q", name, args, tt.name, tt.args)
			}
		})
	}
}

func TestSplitEventBad(t *testing.T) {
	for _, in := range []string{
		``, `[`, `{}`, `[]`, `[1,2]`, `["ev`, `["ev\"]`, `["ev" 1]`, `["ev",`, `["ev",  `, `["\x"]`, `"ev"`,
	} {
		t.Run(in, func(t *testing.T) {
			if _, _, err := eio.SplitEvent([]byte(in)); !errors.Is(err, eio.ErrMalformed) {
				t.Errorf("SplitEvent(%q) = %v, want ErrMalformed", in, err)
			}
		})
	}
}

func TestBenchFields(t *testing.T) {
	tests := []struct {
		in          string
		seq, sentAt int64
	}{
		{heraldEvent[9:], 7, 1733212800123456},
		{`{"sentAt":5,"seq":0}`, 0, 5},
		{` { "pad" : "x\"}{][" , "seq" : 1 , "sentAt" : 2 } `, 1, 2},
		{`{"seq":1,"sentAt":2,"nested":{"seq":9,"a":[{"sentAt":9}]}}`, 1, 2},
		{`{"seq":1,"seq":3,"sentAt":2}`, 3, 2}, // the last one wins, as in encoding/json
		{`{"s\u0065q":4,"sentAt":2}`, 4, 2},    // escaped member name
		{`{"seq":-0,"sentAt":-9223372036854775808}`, 0, -9223372036854775808},
		{`{"seq":9223372036854775807,"sentAt":1,"t":true,"f":false,"n":null,"x":1.5e3}`, 9223372036854775807, 1},
		{`{"seq":1,"sentAt":2}],"more"]`, 1, 2}, // what follows the object is not read
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			seq, sentAt, err := eio.BenchFields([]byte(tt.in))
			if err != nil {
				t.Fatalf("BenchFields: %v", err)
			}
			if seq != tt.seq || sentAt != tt.sentAt {
				t.Errorf("BenchFields = %d, %d; want %d, %d", seq, sentAt, tt.seq, tt.sentAt)
			}
		})
	}
}

func TestBenchFieldsBad(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{``, eio.ErrMalformed},
		{`[]`, eio.ErrMalformed},
		{`{`, eio.ErrMalformed},
		{`{"seq"`, eio.ErrMalformed},
		{`{"seq":`, eio.ErrMalformed},
		{`{"seq":1`, eio.ErrMalformed},
		{`{"seq":1,`, eio.ErrMalformed},
		{`{"seq" 1}`, eio.ErrMalformed},
		{`{seq:1}`, eio.ErrMalformed},
		{`{"seq":1 "sentAt":2}`, eio.ErrMalformed},
		{`{"seq":,"sentAt":2}`, eio.ErrMalformed},
		{`{"pad":"unterminated,"seq":1}`, eio.ErrMalformed},
		{`{"o":{"a":1,"seq":1,"sentAt":2}`, eio.ErrMalformed},
		{`{"s\q":1}`, eio.ErrMalformed},
		{`{}`, eio.ErrMissingField},
		{`{"seq":1}`, eio.ErrMissingField},
		{`{"sentAt":1}`, eio.ErrMissingField},
		{`{"Seq":1,"SentAt":2}`, eio.ErrMissingField}, // exact names, unlike encoding/json into a struct
		{`{"seq":"1","sentAt":2}`, eio.ErrNotInteger},
		{`{"seq":1.0,"sentAt":2}`, eio.ErrNotInteger},
		{`{"seq":1,"sentAt":1e6}`, eio.ErrNotInteger},
		{`{"seq":1,"sentAt":9223372036854775808}`, eio.ErrNotInteger},
		{`{"seq":-9223372036854775809,"sentAt":1}`, eio.ErrNotInteger},
		{`{"seq":99999999999999999999999,"sentAt":1}`, eio.ErrNotInteger},
		{`{"seq":-,"sentAt":1}`, eio.ErrNotInteger},
		{`{"seq":null,"sentAt":1}`, eio.ErrNotInteger},
		{`{"seq":{},"sentAt":1}`, eio.ErrNotInteger},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if _, _, err := eio.BenchFields([]byte(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("BenchFields(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestScanDoesNotAllocate(t *testing.T) {
	in := []byte(`["bench",{"seq":7,"sentAt":1733212800123456,"pad":"` + strings.Repeat("x", 4096) + `","timestamp":"2024-12-03T08:00:00Z"}]`)
	n := testing.AllocsPerRun(100, func() {
		_, args, _ := eio.SplitEvent(in)
		_, _, _ = eio.BenchFields(args)
	})
	if n != 0 {
		t.Errorf("SplitEvent + BenchFields allocate %v times", n)
	}
}

// scanEvent is what the load generator does with an event's data.
func scanEvent(data []byte) (bench bool, seq, sentAt int64, err error) {
	n, args, err := eio.SplitEvent(data)
	if err != nil || string(n) != "bench" {
		return false, 0, 0, err
	}
	seq, sentAt, err = eio.BenchFields(args)
	return true, seq, sentAt, err
}

func BenchmarkScanEvent(b *testing.B) {
	for _, pad := range []int{0, 1024} {
		in := []byte(`["bench",{"seq":7,"sentAt":1733212800123456,"pad":"` + strings.Repeat("x", pad) + `","timestamp":"2024-12-03T08:00:00.123456Z"}]`)
		b.Run("scan/pad="+strconv.Itoa(pad), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, _, _, err := scanEvent(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("encoding-json/pad="+strconv.Itoa(pad), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				var args []json.RawMessage
				var name string
				var p struct {
					Seq    int64 `json:"seq"`
					SentAt int64 `json:"sentAt"`
				}
				if json.Unmarshal(in, &args) != nil || json.Unmarshal(args[0], &name) != nil || json.Unmarshal(args[1], &p) != nil {
					b.Fatal("decode")
				}
			}
		})
	}
}
