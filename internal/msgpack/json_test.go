package msgpack_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	vm "github.com/vmihailenco/msgpack/v5"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/msgpack"
)

func ExampleAppendJSON() {
	b, err := msgpack.AppendJSON(nil, []byte(`{"z":1,"a":[2.0,-0.5,{"_placeholder":true,"bin":"AQI="}]}`), msgpack.JSONOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", b)
	// Output: 82 a1 7a 01 a1 61 93 02 cb bf e0 00 00 00 00 00 00 c4 02 01 02
}

func TestAppendJSON(t *testing.T) {
	exact := msgpack.JSONOptions{Exact: true}
	tests := []struct {
		name string
		js   string
		opts msgpack.JSONOptions
		want string // hex
	}{
		// As notepack.io 3.0.1 encodes JSON.parse(js).
		{"member order", `{"z":1,"a":2}`, msgpack.JSONOptions{}, "82 a17a 01 a161 02"},
		{"white space", " [ 1 , { \"k\" : null } ]\n", msgpack.JSONOptions{}, "92 01 81a16b c0"},
		{"empty containers", `[[],{}]`, msgpack.JSONOptions{}, "92 90 80"},
		{"nested", `{"a":[1,{"b":[]}],"c":"x"}`, msgpack.JSONOptions{}, "82 a161 92 01 81 a162 90 a163 a178"},
		{"literals", `[true,false,null]`, msgpack.JSONOptions{}, "93 c3 c2 c0"},
		{"escapes", `"\u00e9\n\"\\\/\t"`, msgpack.JSONOptions{}, "a7 c3a9 0a 22 5c 2f 09"},
		{"surrogate pair and UTF-8", `"\ud83c\udf89 é"`, msgpack.JSONOptions{}, "a7 f09f8e89 20 c3a9"},
		{"string 31", `"` + strings.Repeat("a", 31) + `"`, msgpack.JSONOptions{}, "bf" + strings.Repeat("61", 31)},
		{"string 32", `"` + strings.Repeat("a", 32) + `"`, msgpack.JSONOptions{}, "d920" + strings.Repeat("61", 32)},
		{"array 15", `[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]`, msgpack.JSONOptions{}, "9f 0102030405060708090a0b0c0d0e0f"},
		{"array 16", `[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]`, msgpack.JSONOptions{}, "dc0010 0102030405060708090a0b0c0d0e0f10"},
		{"integers", `[0,-1,-33,-129,-32769,-2147483649,127,128,255,256,65535,65536,4294967295,4294967296]`, msgpack.JSONOptions{},
			"9e 00 ff d0df d1ff7f d2ffff7fff d3ffffffff7fffffff 7f cc80 ccff cd0100 cdffff ce00010000 ceffffffff cf0000000100000000"},
		{"integral numbers", `[-0,2.0,1e2,1e-400,-1e-400,1.152921504606847e18,9223372036854775808,-9223372036854775809]`, msgpack.JSONOptions{},
			"98 00 02 64 00 00 cf1000000000000000 cf8000000000000000 d38000000000000000"},
		{"floats", `[1.5,0.1,-2.5e-8,1e999,-1e999]`, msgpack.JSONOptions{},
			"95 cb3ff8000000000000 cb3fb999999999999a cbbe5ad7f29abcaf48 cb7ff0000000000000 cbfff0000000000000"},

		// Where herald differs from notepack.io 3.0.1.
		{"duplicate names are kept", `{"a":1,"a":2}`, msgpack.JSONOptions{}, "82 a161 01 a161 02"}, // JSON.parse keeps the last
		{"integers are exact to 64 bits", `[9007199254740993,18446744073709551615,-9223372036854775808]`, msgpack.JSONOptions{},
			"93 cf0020000000000001 cfffffffffffffffff d38000000000000000"}, // JavaScript rounds 2^53+1
		{"beyond 64 bits a float", `[18446744073709551616,1e300]`, msgpack.JSONOptions{}, "92 cb43f0000000000000 cb7e37e43c8800759c"}, // notepack.io: a wrong uint 64
		{"invalid UTF-8 replaced", "\"a\xffb\"", msgpack.JSONOptions{}, "a5 61 efbfbd 62"},
		{"lone surrogate replaced", `"\ud800"`, msgpack.JSONOptions{}, "a3 efbfbd"}, // notepack.io: f0908080

		// events.Bytes markers.
		{"bytes", `{"_placeholder":true,"bin":"AQID"}`, msgpack.JSONOptions{}, "c4 03 010203"},
		{"empty bytes", `[{"_placeholder":true,"bin":""}]`, msgpack.JSONOptions{}, "91 c400"},
		{"marker written otherwise is an object", `{"bin":"AQID","_placeholder":true}`, msgpack.JSONOptions{}, "82 a362696e a441514944 ac5f706c616365686f6c646572 c3"},
		{"marker with non-canonical base64 is an object", `{"_placeholder":true,"bin":"AQJ="}`, msgpack.JSONOptions{}, "82 ac5f706c616365686f6c646572 c3 a362696e a441514a3d"},

		// Exact.
		{"exact -0", `[-0,-0.0,-1e-400,0]`, exact, "94 cb8000000000000000 cb8000000000000000 cb8000000000000000 00"},
		{"exact integral", `[2.0,1e2,-9223372036854775809]`, exact, "93 02 64 d38000000000000000"},
		{"exact floats", `[1.5,1e300,1e-400]`, exact, "93 cb3ff8000000000000 cb7e37e43c8800759c 00"},

		// Depth: a value inside MaxDepth containers is accepted.
		{"depth 2", `[[1]]`, msgpack.JSONOptions{MaxDepth: 2}, "91 91 01"},
		{"depth 2, empty", `[[[]]]`, msgpack.JSONOptions{MaxDepth: 2}, "91 91 90"},
		{"depth 2, bytes", `[{"":{"_placeholder":true,"bin":""}}]`, msgpack.JSONOptions{MaxDepth: 2}, "91 81 a0 c400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := msgpack.AppendJSON(nil, []byte(tc.js), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.want); !bytes.Equal(got, want) {
				t.Fatalf("% x\nwant % x", got, want)
			}
			checkOneValue(t, got)
		})
	}

	t.Run("appends", func(t *testing.T) {
		b := []byte{0xaa}
		got, err := msgpack.AppendJSON(b[:1:1], []byte(`[1]`), msgpack.JSONOptions{})
		if err != nil || !bytes.Equal(got, []byte{0xaa, 0x91, 0x01}) {
			t.Fatalf("% x, %v", got, err)
		}
	})

	t.Run("large containers", func(t *testing.T) {
		for _, n := range []int{65535, 65536} {
			arr := "[" + strings.Repeat("0,", n-1) + "0]"
			obj := "{" + strings.Repeat(`"":0,`, n-1) + `"":0}`
			js := "[" + arr + "," + obj + "]"
			got, err := msgpack.AppendJSON(nil, []byte(js), msgpack.JSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			d := vm.NewDecoder(bytes.NewReader(got))
			if l, err := d.DecodeArrayLen(); err != nil || l != 2 {
				t.Fatalf("outer array: %d, %v", l, err)
			}
			if l, err := d.DecodeArrayLen(); err != nil || l != n {
				t.Fatalf("array: %d, %v", l, err)
			}
			for range n {
				if err := d.Skip(); err != nil {
					t.Fatal(err)
				}
			}
			if l, err := d.DecodeMapLen(); err != nil || l != n {
				t.Fatalf("map: %d, %v", l, err)
			}
		}
	})

	t.Run("nested as deep as the default allows", func(t *testing.T) {
		for _, js := range []string{
			strings.Repeat("[", msgpack.DefaultMaxDepth) + "1" + strings.Repeat("]", msgpack.DefaultMaxDepth),
			strings.Repeat("[", msgpack.DefaultMaxDepth+1) + strings.Repeat("]", msgpack.DefaultMaxDepth+1),
		} {
			got, err := msgpack.AppendJSON(nil, []byte(js), msgpack.JSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != strings.Count(js, "[")+strings.Count(js, "1") {
				t.Fatalf("%d bytes", len(got))
			}
		}
	})
}

func TestAppendJSONRejects(t *testing.T) {
	deep := func(n int, inner string) string {
		return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
	}
	tests := []struct {
		js   string
		opts msgpack.JSONOptions
		want error
	}{
		{``, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{` `, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`[`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`]`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`[1,]`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`[,1]`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`[1 2]`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`[1}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"a" 1}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"a":1,}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"a":}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{1:2}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{a:1}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"a":1]`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"a":1}}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`01`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`1.`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`.5`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`+1`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`-`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`1e`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`1e+`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`1-2`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`0x10`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`NaN`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`Infinity`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`tru`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`truex`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`nul`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`False`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`1 2`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`"a"x`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`'a'`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`"unterminated`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`"ends in a backslash\"`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`"\x"`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"\x":1}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`"\u12"`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{"\"tab\tin\"", msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{"\"\x00\"", msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"_placeholder":true,"bin":"AQID"`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`{"_placeholder":true,"bin":"AQID"}}`, msgpack.JSONOptions{}, msgpack.ErrInvalidJSON},
		{`[1e999]`, msgpack.JSONOptions{Exact: true}, msgpack.ErrNumberRange},
		{`-1e999`, msgpack.JSONOptions{Exact: true}, msgpack.ErrNumberRange},
		{deep(3, "1"), msgpack.JSONOptions{MaxDepth: 2}, msgpack.ErrTooDeep},
		{deep(4, ""), msgpack.JSONOptions{MaxDepth: 2}, msgpack.ErrTooDeep},
		{`[[{"_placeholder":true,"bin":""}]]`, msgpack.JSONOptions{MaxDepth: 1}, msgpack.ErrTooDeep},
		{deep(msgpack.DefaultMaxDepth+1, "1"), msgpack.JSONOptions{}, msgpack.ErrTooDeep},
		{deep(msgpack.DefaultMaxDepth+2, ""), msgpack.JSONOptions{}, msgpack.ErrTooDeep},
		{deep(100000, ""), msgpack.JSONOptions{}, msgpack.ErrTooDeep},
	}
	for _, tc := range tests {
		got, err := msgpack.AppendJSON([]byte{0xaa}, []byte(tc.js), tc.opts)
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("AppendJSON(%.40q, %+v) = % .20x, %v; want nil, %v", tc.js, tc.opts, got, err, tc.want)
		}
	}
}

// FuzzAppendJSON: AppendJSON accepts exactly the JSON texts encoding/json
// does (but for nesting and, with Exact, infinite numbers), and writes one
// MessagePack value that an independent decoder reads as the same value,
// object members in the same order. The seeds are in
// testdata/fuzz/FuzzAppendJSON.
func FuzzAppendJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, js []byte, exact bool) {
		opts := msgpack.JSONOptions{Exact: exact}
		if exact {
			opts.MaxDepth = 20
		}
		mp, err := msgpack.AppendJSON(nil, js, opts)
		if !json.Valid(js) {
			if err == nil {
				t.Fatalf("accepted invalid JSON %q", js)
			}
			return
		}
		want, depth := jsonTree(t, js)
		maxDepth := cmp.Or(opts.MaxDepth, msgpack.DefaultMaxDepth)
		switch {
		case errors.Is(err, msgpack.ErrTooDeep):
			if depth <= maxDepth {
				t.Fatalf("JSON %d deep refused: %v", depth, err)
			}
			return
		case errors.Is(err, msgpack.ErrNumberRange) && exact:
			if !hasInf(want) {
				t.Fatalf("JSON %q refused: %v", js, err)
			}
			return
		case err != nil:
			t.Fatalf("valid JSON %q refused: %v", js, err)
		case depth > maxDepth:
			t.Fatalf("JSON %d deep accepted", depth)
		case exact && hasInf(want):
			t.Fatalf("JSON %q with a number beyond float64 accepted", js)
		}
		r := bytes.NewReader(mp)
		d := vm.NewDecoder(r)
		d.UseLooseInterfaceDecoding(true)
		got := msgpackTree(t, d)
		if r.Len() != 0 {
			t.Fatalf("%d bytes after the value", r.Len())
		}
		if !sameTree(got, want, exact) {
			t.Fatalf("JSON %s became %#v, want %#v", js, got, want)
		}
	})
}

// member is an object member of a tree; an object is a []member.
type member struct {
	name  string
	value any
}

// jsonTree returns the value of valid JSON as a tree (objects as
// []member, arrays []any, numbers float64, strings, bools, nil) and its
// depth: how many arrays and objects the deepest value is inside.
func jsonTree(t *testing.T, js []byte) (any, int) {
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	maxDepth := 0
	var read func(depth int) any
	read = func(depth int) any {
		maxDepth = max(maxDepth, depth)
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("valid JSON %q: %v", js, err)
		}
		switch tok := tok.(type) {
		case json.Delim:
			if tok == '[' {
				a := []any{}
				for d.More() {
					a = append(a, read(depth+1))
				}
				_, _ = d.Token()
				return a
			}
			o := []member{}
			for d.More() {
				name, _ := d.Token()
				o = append(o, member{name.(string), read(depth + 1)})
			}
			_, _ = d.Token()
			return o
		case json.Number:
			f, _ := strconv.ParseFloat(string(tok), 64) // ±Inf beyond float64
			return f
		}
		return tok
	}
	return read(0), maxDepth
}

// msgpackTree reads one value as jsonTree's trees hold it; bin becomes the
// members of events.Bytes's marker object.
func msgpackTree(t *testing.T, d *vm.Decoder) any {
	code, err := d.PeekCode()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case code>>4 == 0x9 || code == 0xdc || code == 0xdd:
		n, _ := d.DecodeArrayLen()
		a := []any{}
		for range n {
			a = append(a, msgpackTree(t, d))
		}
		return a
	case code == 0xc4 || code == 0xc5 || code == 0xc6:
		data, err := d.DecodeBytes()
		if err != nil {
			t.Fatal(err)
		}
		marker, _ := jsonTree(t, events.AppendBytesJSON(nil, data))
		return marker
	case code>>4 == 0x8 || code == 0xde || code == 0xdf:
		n, _ := d.DecodeMapLen()
		o := []member{}
		for range n {
			name, err := d.DecodeString()
			if err != nil {
				t.Fatalf("map key: %v", err)
			}
			o = append(o, member{name, msgpackTree(t, d)})
		}
		return o
	}
	v, err := d.DecodeInterfaceLoose()
	if err != nil {
		t.Fatal(err)
	}
	switch v := v.(type) {
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return v
}

// hasInf reports whether a tree holds an infinite number.
func hasInf(v any) bool {
	switch v := v.(type) {
	case []any:
		return slices.ContainsFunc(v, hasInf)
	case []member:
		return slices.ContainsFunc(v, func(m member) bool { return hasInf(m.value) })
	case float64:
		return math.IsInf(v, 0)
	}
	return false
}

// sameTree compares trees; exact also tells -0 from 0.
func sameTree(a, b any, exact bool) bool {
	switch a := a.(type) {
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameTree(a[i], b[i], exact) {
				return false
			}
		}
		return true
	case []member:
		b, ok := b.([]member)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if a[i].name != b[i].name || !sameTree(a[i].value, b[i].value, exact) {
				return false
			}
		}
		return true
	case float64:
		b, ok := b.(float64)
		return ok && a == b && (!exact || math.Signbit(a) == math.Signbit(b))
	}
	return a == b
}
