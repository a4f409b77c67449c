package parser_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/herald-rt/herald/socketio/internal/parser"
)

func TestSplitArray(t *testing.T) {
	many := make([]string, 100)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	cases := []struct {
		name, in string
		want     []string // nil: an error
	}{
		{"empty", `[]`, []string{}},
		{"empty with space", " [ \n] ", []string{}},
		{"event", `["hello",1,{"a":[1,2]},null,true,false,"x"]`, []string{`"hello"`, `1`, `{"a":[1,2]}`, `null`, `true`, `false`, `"x"`}},
		{"white space trimmed", " [ \"a\" ,\t{ \"b\" : 1 } \r\n, [ ] ] ", []string{`"a"`, `{ "b" : 1 }`, `[ ]`}},
		{"strings with brackets", `["],[", "\"]"]`, []string{`"],["`, `"\"]"`}},
		{"numbers", `[-0,1.5e-3,0.0,-12E+2]`, []string{`-0`, `1.5e-3`, `0.0`, `-12E+2`}},
		{"more than 32", "[" + strings.Join(many, ",") + "]", many},
		{"not an array", `{"a":1}`, nil},
		{"null", `null`, nil},
		{"string", `"[]"`, nil},
		{"nothing", ``, nil},
		{"unterminated", `["a"`, nil},
		{"trailing comma", `["a",]`, nil},
		{"leading comma", `[,"a"]`, nil},
		{"two arrays", `[] []`, nil},
		{"trailing garbage", `["a"]x`, nil},
		{"bad element", `[01]`, nil},
		{"bad nested", `[{"a"}]`, nil},
		{"too deep", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parser.SplitArray([]byte(tc.in))
			if tc.want == nil {
				if err == nil || !errors.Is(err, parser.ErrInvalidPacket) {
					t.Fatalf("SplitArray = %q, %v; want an error wrapping ErrInvalidPacket", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || len(got) != len(tc.want) {
				t.Fatalf("SplitArray = %q (nil: %v), want %q", got, got == nil, tc.want)
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Fatalf("element %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}

	t.Run("elements do not grow into the text", func(t *testing.T) {
		in := []byte(`[1,2]`)
		got, err := parser.SplitArray(in)
		if err != nil {
			t.Fatal(err)
		}
		_ = append(got[0], 'x')
		if string(in) != `[1,2]` {
			t.Fatalf("appending to an element changed the text: %s", in)
		}
	})

	t.Run("allocates the result only", func(t *testing.T) {
		for _, in := range []string{`["job_progress",{"jobId":"j","progress":40}]`, "[" + strings.Join(many, ",") + "]"} {
			js := []byte(in)
			if n := testing.AllocsPerRun(100, func() { _, _ = parser.SplitArray(js) }); n > 1 {
				t.Errorf("%d allocations for %d bytes", int(n), len(in))
			}
		}
	})
}

// FuzzSplitArray: SplitArray accepts what encoding/json decodes into a
// []json.RawMessage (except null, no array), with the same elements.
func FuzzSplitArray(f *testing.F) {
	f.Add([]byte(`["hello",1,{"a":[1,2]},null]`))
	f.Add([]byte(` [ "a" , [ ] ] `))
	f.Add([]byte(`null`))
	f.Add([]byte(`["\ud800\"",-0.0e+1]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parser.SplitArray(in)
		var want []json.RawMessage
		wantErr := json.Unmarshal(in, &want)
		if wantErr == nil && want == nil { // null
			wantErr = errors.New("null")
		}
		switch {
		case err != nil && wantErr != nil:
			if !errors.Is(err, parser.ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
		case err != nil:
			t.Fatalf("SplitArray(%q): %v; encoding/json reads %q", in, err, want)
		case wantErr != nil:
			t.Fatalf("SplitArray(%q) = %q; encoding/json: %v", in, got, wantErr)
		case !reflect.DeepEqual(got, want):
			t.Fatalf("SplitArray(%q) = %q; encoding/json reads %q", in, got, want)
		}
	})
}

func TestAppendEvent(t *testing.T) {
	cases := []struct {
		name, nsp, ev string
		id            uint64
		hasID         bool
		args          []string
		want          string // "": an error
	}{
		{"no args", "/", "hello", 0, false, nil, `2["hello"]`},
		{"spec example", "/admin", "project:delete", 456, true, []string{`123`}, `2/admin,456["project:delete",123]`},
		{"empty namespace", "", "a", 0, true, []string{`{"b":[1,2]}`, `"x"`}, `20["a",{"b":[1,2]},"x"]`},
		{"args as written", "/", "a", 0, false, []string{` 1 `, "{ \"b\" :\n2}"}, "2[\"a\", 1 ,{ \"b\" :\n2}]"},
		{"name escaped as JSON.stringify escapes", "/", "q\"\\/\b\f\n\r\t\x00\x1f\x7f<>&\u2028\u2029é😀", 0, false, nil,
			"2[\"q\\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\x7f<>&\u2028\u2029é😀\"]"},
		{"invalid UTF-8 in the name", "/", "a\xffb\xe2\x82", 0, false, nil, "2[\"a\uFFFDb\uFFFD\"]"},
		{"arg not JSON", "/", "a", 0, false, []string{`{`}, ""},
		{"empty arg", "/", "a", 0, false, []string{``}, ""},
		{"two values in an arg", "/", "a", 0, false, []string{`1 2`}, ""},
		{"arg with a marker", "/", "a", 0, false, []string{`1`, `{"k":` + marker(1) + `}`}, ""},
		{"namespace with a comma", "/a,b", "a", 0, false, nil, ""},
		{"namespace without /", "a", "a", 0, false, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := make([]json.RawMessage, len(tc.args))
			for i, a := range tc.args {
				args[i] = json.RawMessage(a)
			}
			dst := []byte("prefix")
			got, err := parser.AppendEvent(dst, tc.nsp, tc.ev, tc.id, tc.hasID, args)
			if tc.want == "" {
				if err == nil || !errors.Is(err, parser.ErrInvalidPacket) || string(got) != "prefix" {
					t.Fatalf("AppendEvent = %q, %v; want prefix and an error wrapping ErrInvalidPacket", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix"+tc.want {
				t.Fatalf("AppendEvent = %q\nwant          %q", got, "prefix"+tc.want)
			}
			// Encode writes the same.
			msgs, err := parser.Default().Encode(&parser.Packet{Type: parser.Event, Nsp: tc.nsp, ID: tc.id, HasID: tc.hasID, Data: got[len("prefix")+strings.IndexByte(tc.want, '['):]})
			if err != nil || len(msgs) != 1 || string(msgs[0].Data) != tc.want {
				t.Fatalf("Encode = %s, %v; want %q", fmtMessages(msgs), err, tc.want)
			}
		})
	}
}

// FuzzAppendEvent: AppendEvent writes what Encode writes for the same
// packet, or fails where Encode fails or needs attachments; the name
// reads back as itself (invalid UTF-8 replaced) and is escaped no more
// than JSON.stringify escapes.
func FuzzAppendEvent(f *testing.F) {
	f.Add("/", "hello", uint64(0), false, []byte("1\x00{\"a\":[true]}"))
	f.Add("/admin", "q\"\\\n\u2028", uint64(456), true, []byte(`"x"`))
	f.Add("", "\xff", uint64(1<<63), true, []byte("{\"_placeholder\":true,\"bin\":\"AQ==\"}\x00[]"))
	f.Add("/a,b", "e", uint64(1), true, []byte(""))
	f.Fuzz(func(t *testing.T, nsp, name string, id uint64, hasID bool, blob []byte) {
		var args []json.RawMessage
		if len(blob) > 0 {
			for a := range bytes.SplitSeq(blob, []byte{0}) {
				args = append(args, a)
			}
		}
		got, err := parser.AppendEvent(nil, nsp, name, id, hasID, args)

		// The same packet through Encode, the name written as AppendEvent
		// writes it (checked below).
		nameJSON := nameJSONOf(t, name)
		data := []byte("[" + nameJSON)
		for _, a := range args {
			data = append(append(data, ','), a...)
		}
		data = append(data, ']')
		msgs, encErr := parser.Default().Encode(&parser.Packet{Type: parser.Event, Nsp: nsp, ID: id, HasID: hasID, Data: data})
		switch {
		case err != nil:
			if !errors.Is(err, parser.ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
			argsOK := true // each arg one JSON value: joined, they could make one
			for _, a := range args {
				argsOK = argsOK && json.Valid(a)
			}
			if argsOK && encErr == nil && len(msgs) == 1 {
				t.Fatalf("AppendEvent failed (%v), Encode wrote %s", err, fmtMessages(msgs))
			}
		case encErr != nil:
			t.Fatalf("AppendEvent wrote %q, Encode failed: %v", got, encErr)
		case len(msgs) != 1 || !bytes.Equal(msgs[0].Data, got):
			t.Fatalf("AppendEvent wrote %q, Encode %s", got, fmtMessages(msgs))
		}
		var back string
		if err := json.Unmarshal([]byte(nameJSON), &back); err != nil {
			t.Fatalf("name %q written as %s: %v", name, nameJSON, err)
		}
		if utf8.ValidString(name) && back != name {
			t.Fatalf("name %q written as %s reads back as %q", name, nameJSON, back)
		}
		if want := stringifyLike(back); nameJSON != want {
			t.Fatalf("name %q written as %s, JSON.stringify writes %s", name, nameJSON, want)
		}
	})
}

// nameJSONOf returns the JSON of name as AppendEvent writes it.
func nameJSONOf(t *testing.T, name string) string {
	t.Helper()
	b, err := parser.AppendEvent(nil, "/", name, 0, false, nil)
	if err != nil || !bytes.HasPrefix(b, []byte(`2[`)) {
		t.Fatalf("AppendEvent(%q) = %q, %v", name, b, err)
	}
	return string(b[2 : len(b)-1])
}

// stringifyLike is JSON.stringify for a valid UTF-8 string, written
// plainly: rune by rune.
func stringifyLike(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
