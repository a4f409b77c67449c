package msgpack_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math"
	"strings"
	"testing"

	vm "github.com/vmihailenco/msgpack/v5"

	"github.com/herald-rt/herald/internal/msgpack"
)

// unhex decodes hex with spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkOneValue fails unless an independent decoder reads msg as exactly
// one value.
func checkOneValue(t *testing.T, msg []byte) {
	t.Helper()
	r := bytes.NewReader(msg)
	if err := vm.NewDecoder(r).Skip(); err != nil {
		t.Fatalf("vmihailenco/msgpack cannot read %.40x: %v", msg, err)
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes after the value", r.Len())
	}
}

func TestAppend(t *testing.T) {
	long := func(n int) string { return strings.Repeat("s", n) }
	tests := []struct {
		name   string
		got    []byte
		prefix string // hex of the start (all of it unless n is set)
		n      int    // the length, if longer than prefix
		part   bool   // not one whole value
	}{
		{"nil", msgpack.AppendNil(nil), "c0", 0, false},
		{"true", msgpack.AppendBool(nil, true), "c3", 0, false},
		{"false", msgpack.AppendBool(nil, false), "c2", 0, false},
		{"int 0", msgpack.AppendInt(nil, 0), "00", 0, false},
		{"int 127", msgpack.AppendInt(nil, 127), "7f", 0, false},
		{"int 128", msgpack.AppendInt(nil, 128), "cc 80", 0, false},
		{"int -1", msgpack.AppendInt(nil, -1), "ff", 0, false},
		{"int -32", msgpack.AppendInt(nil, -32), "e0", 0, false},
		{"int -33", msgpack.AppendInt(nil, -33), "d0 df", 0, false},
		{"int -128", msgpack.AppendInt(nil, -128), "d0 80", 0, false},
		{"int -129", msgpack.AppendInt(nil, -129), "d1 ff7f", 0, false},
		{"int -32768", msgpack.AppendInt(nil, -32768), "d1 8000", 0, false},
		{"int -32769", msgpack.AppendInt(nil, -32769), "d2 ffff7fff", 0, false},
		{"int min32", msgpack.AppendInt(nil, math.MinInt32), "d2 80000000", 0, false},
		{"int min32-1", msgpack.AppendInt(nil, math.MinInt32-1), "d3 ffffffff7fffffff", 0, false},
		{"int min64", msgpack.AppendInt(nil, math.MinInt64), "d3 8000000000000000", 0, false},
		{"int max64", msgpack.AppendInt(nil, math.MaxInt64), "cf 7fffffffffffffff", 0, false},
		{"uint 255", msgpack.AppendUint(nil, 255), "cc ff", 0, false},
		{"uint 256", msgpack.AppendUint(nil, 256), "cd 0100", 0, false},
		{"uint 65535", msgpack.AppendUint(nil, 65535), "cd ffff", 0, false},
		{"uint 65536", msgpack.AppendUint(nil, 65536), "ce 00010000", 0, false},
		{"uint max32", msgpack.AppendUint(nil, math.MaxUint32), "ce ffffffff", 0, false},
		{"uint max32+1", msgpack.AppendUint(nil, math.MaxUint32+1), "cf 0000000100000000", 0, false},
		{"uint max64", msgpack.AppendUint(nil, math.MaxUint64), "cf ffffffffffffffff", 0, false},
		{"float 1", msgpack.AppendFloat(nil, 1), "cb 3ff0000000000000", 0, false},
		{"float -0", msgpack.AppendFloat(nil, math.Copysign(0, -1)), "cb 8000000000000000", 0, false},
		{"string empty", msgpack.AppendString(nil, ""), "a0", 0, false},
		{"string 31", msgpack.AppendString(nil, long(31)), "bf 73", 32, false},
		{"string 32", msgpack.AppendString(nil, long(32)), "d9 20 73", 34, false},
		{"string 255", msgpack.AppendString(nil, long(255)), "d9 ff 73", 257, false},
		{"string 256", msgpack.AppendString(nil, long(256)), "da 0100 73", 259, false},
		{"string 65536", msgpack.AppendString(nil, long(65536)), "db 00010000 73", 65541, false},
		{"string header", msgpack.AppendStringHeader(nil, 70000), "db 00011170", 0, true},
		{"strings", msgpack.AppendStrings(nil, []string{"a", ""}), "92 a161 a0", 0, false},
		{"strings nil", msgpack.AppendStrings(nil, nil), "90", 0, false},
		{"bin nil", msgpack.AppendBin(nil, nil), "c4 00", 0, false},
		{"bin 255", msgpack.AppendBin(nil, make([]byte, 255)), "c4 ff 00", 257, false},
		{"bin 256", msgpack.AppendBin(nil, make([]byte, 256)), "c5 0100 00", 259, false},
		{"bin 65536", msgpack.AppendBin(nil, make([]byte, 65536)), "c6 00010000 00", 65541, false},
		{"array 15", msgpack.AppendArrayHeader(nil, 15), "9f", 0, true},
		{"array 16", msgpack.AppendArrayHeader(nil, 16), "dc 0010", 0, true},
		{"array 65536", msgpack.AppendArrayHeader(nil, 65536), "dd 00010000", 0, true},
		{"map 15", msgpack.AppendMapHeader(nil, 15), "8f", 0, true},
		{"map 16", msgpack.AppendMapHeader(nil, 16), "de 0010", 0, true},
		{"map 65536", msgpack.AppendMapHeader(nil, 65536), "df 00010000", 0, true},
		{"appends", msgpack.AppendInt([]byte{0xaa}, -1), "aa ff", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := unhex(t, tc.prefix)
			n := tc.n
			if n == 0 {
				n = len(want)
			}
			if !bytes.HasPrefix(tc.got, want) || len(tc.got) != n {
				t.Fatalf("% .20x (%d bytes), want % x (%d bytes)", tc.got, len(tc.got), want, n)
			}
			if !tc.part {
				checkOneValue(t, tc.got)
			}
		})
	}
}

// TestAppendNumber: the bytes are notepack.io 3.0.1's for the same
// JavaScript numbers, except beyond 64 bits, where notepack.io writes a
// wrong uint 64 and herald a float 64.
func TestAppendNumber(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "00"},
		{math.Copysign(0, -1), "00"},
		{2, "02"},
		{-1, "ff"},
		{-33, "d0 df"},
		{65536, "ce 00010000"},
		{1.5, "cb 3ff8000000000000"},
		{0.1, "cb 3fb999999999999a"},
		{1 << 60, "cf 1000000000000000"},
		{1 << 63, "cf 8000000000000000"},
		{-(1 << 63), "d3 8000000000000000"},
		{1 << 64, "cb 43f0000000000000"},
		{-(1 << 64), "cb c3f0000000000000"},
		{1e300, "cb 7e37e43c8800759c"},
		{math.Inf(1), "cb 7ff0000000000000"},
		{math.Inf(-1), "cb fff0000000000000"},
	}
	for _, tc := range tests {
		if got, want := msgpack.AppendNumber(nil, tc.v), unhex(t, tc.want); !bytes.Equal(got, want) {
			t.Errorf("AppendNumber(%v) = % x, want % x", tc.v, got, want)
		}
	}
	if got := msgpack.AppendNumber(nil, math.NaN()); len(got) != 9 || got[0] != 0xcb || !math.IsNaN(math.Float64frombits(binary.BigEndian.Uint64(got[1:]))) {
		t.Errorf("AppendNumber(NaN) = % x", got)
	}
}
