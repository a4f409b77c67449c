package benchapi

import (
	"math"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEmitRequestCheck(t *testing.T) {
	tests := []struct {
		req  EmitRequest
		want string // "" = valid; else a prefix of the message
	}{
		{EmitRequest{Prefix: "u", To: 1000, Count: 20}, ""},
		{EmitRequest{From: 5, To: 5, Count: MaxEmits}, ""},
		{EmitRequest{To: 1, Count: 1, Pad: MaxPad}, ""},
		{EmitRequest{From: 2, To: 1, Count: 1}, "to:"},
		{EmitRequest{To: 1}, "count:"},
		{EmitRequest{To: 1, Count: -3}, "count:"},
		{EmitRequest{From: math.MinInt, To: math.MaxInt, Count: 1}, "count*(to-from)"},
		{EmitRequest{To: MaxEmits + 1, Count: 1}, "count*(to-from)"},
		{EmitRequest{To: 1000, Count: MaxEmits/1000 + 1}, "count*(to-from)"},
		{EmitRequest{From: 7, To: 7, Count: MaxEmits + 1}, "count*(to-from)"},
		{EmitRequest{To: 1, Count: 1, Pad: -1}, "pad:"},
		{EmitRequest{To: 1, Count: 1, Pad: MaxPad + 1}, "pad:"},
		{EmitRequest{To: 1, Count: 1, Seq: MaxSeq}, ""},
		{EmitRequest{To: 1, Count: 1, Seq: -1}, "seq:"},
		{EmitRequest{To: 1, Count: 1, Seq: MaxSeq + 1}, "seq:"},
	}
	for _, tt := range tests {
		got := tt.req.Check()
		if (got == "") != (tt.want == "") || len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
			t.Errorf("%+v.Check() = %q, want %q...", tt.req, got, tt.want)
		}
	}
}
