package events_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/herald-rt/herald/events"
)

func TestBytesJSON(t *testing.T) {
	type file struct {
		Data events.Bytes `json:"data"`
	}
	for _, tc := range []struct {
		in   events.Bytes
		want string
	}{
		{nil, `{"data":null}`},
		{events.Bytes{}, `{"data":{"_placeholder":true,"bin":""}}`},
		{events.Bytes{0, 1, 0xff}, `{"data":{"_placeholder":true,"bin":"AAH/"}}`},
	} {
		b, err := json.Marshal(file{tc.in})
		if err != nil || string(b) != tc.want {
			t.Fatalf("Marshal(%v) = %s, %v; want %s", tc.in, b, err, tc.want)
		}
		var back file
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if !bytes.Equal(back.Data, tc.in) || (back.Data == nil) != (tc.in == nil) {
			t.Fatalf("round trip of %v gave %v", tc.in, back.Data)
		}
	}
}

func TestBytesUnmarshal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		ok   bool
	}{
		{`{"_placeholder":true,"bin":"AQI="}`, []byte{1, 2}, true},
		{`{ "bin": "AQI=", "_placeholder": true }`, []byte{1, 2}, true},
		{`"AQI="`, []byte{1, 2}, true}, // base64 text
		{`null`, nil, true},
		{`"not base64!"`, nil, false},
		{`{"_placeholder":true,"bin":"***"}`, nil, false},
		{`{"_placeholder":true,"num":0}`, nil, false}, // an unresolved attachment
		{`{"_placeholder":false,"bin":"AQI="}`, nil, false},
		{`{"bin":"AQI="}`, nil, false},
		{`[1,2]`, nil, false},
		{`12`, nil, false},
		{`{"_placeholder":true,"bin":"AQI="`, nil, false},
	} {
		var b events.Bytes
		err := json.Unmarshal([]byte(tc.in), &b)
		if (err == nil) != tc.ok {
			t.Fatalf("Unmarshal(%s): err = %v, want ok %v", tc.in, err, tc.ok)
		}
		if tc.ok && !bytes.Equal(b, tc.want) {
			t.Fatalf("Unmarshal(%s) = %v, want %v", tc.in, b, tc.want)
		}
	}
}

func TestParseBytesJSON(t *testing.T) {
	js := events.AppendBytesJSON([]byte(nil), []byte("hi"))
	rest := append(append([]byte(nil), js...), `,"next":1}`...)
	data, n, ok := events.ParseBytesJSON(rest)
	if !ok || n != len(js) || string(data) != "hi" {
		t.Fatalf("ParseBytesJSON = %q, %d, %v; want \"hi\", %d, true", data, n, ok, len(js))
	}
	for _, bad := range []string{``, `{`, `{"_placeholder":true,"bin":"aGk="`, `{"_placeholder":true,"bin":"aGk="]`, `{"_placeholder":true,"bin":"a"}`, `{"x":1}`} {
		if _, _, ok := events.ParseBytesJSON([]byte(bad)); ok {
			t.Fatalf("ParseBytesJSON(%s) accepted", bad)
		}
	}
	if !events.HasBytesJSON([]byte(`[1,{"_placeholder":true,"bin":""}]`)) || events.HasBytesJSON([]byte(`{"bin":""}`)) {
		t.Fatal("HasBytesJSON is wrong")
	}
}

// FuzzBytesJSON feeds arbitrary text to the binary-data parsers: they must
// never panic, and what they accept must encode back to the same data.
func FuzzBytesJSON(f *testing.F) {
	for _, s := range []string{`{"_placeholder":true,"bin":"AQI="}`, `"AQI="`, `null`, `{"_placeholder":true,"bin":"AQI="},1`, `{"_placeholder":true,"num":0}`, `{"_placeholder":true,"bin":"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		if data, n, ok := events.ParseBytesJSON(js); ok {
			if n > len(js) || !bytes.Equal(events.AppendBytesJSON(nil, data), js[:n]) {
				t.Fatalf("ParseBytesJSON(%q) = %q, %d: not the form it parsed", js, data, n)
			}
			if !events.HasBytesJSON(js) {
				t.Fatalf("HasBytesJSON(%q) = false for parsed binary data", js)
			}
		}
		var b events.Bytes
		if err := b.UnmarshalJSON(js); err != nil {
			return
		}
		out, err := b.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var again events.Bytes
		if err := again.UnmarshalJSON(out); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%q: re-decoding %s gave %v, %v", js, out, again, err)
		}
	})
}
