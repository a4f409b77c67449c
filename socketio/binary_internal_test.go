package socketio

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/v3/pkg/types"
)

func TestWireArg(t *testing.T) {
	// Without binary data an argument is written byte for byte.
	plain := json.RawMessage(`{"z":1,"a":[1.50,"x"]}`)
	if got, ok := wireArg(plain).(json.RawMessage); !ok || !bytes.Equal(got, plain) {
		t.Fatalf("wireArg(%s) = %#v", plain, wireArg(plain))
	}
	js := json.RawMessage(`{"z":{"k":[1,2]},"b":{"_placeholder":true,"bin":"AQI="},"l":[{"_placeholder":true,"bin":""},"s"]}`)
	got := wireArg(js)
	want := map[string]any{
		"z": json.RawMessage(`{"k":[1,2]}`),
		"b": []byte{1, 2},
		"l": []any{[]byte{}, json.RawMessage(`"s"`)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("wireArg(%s) = %#v, want %#v", js, got, want)
	}
	// What upstream hands over for attachments becomes the same JSON again.
	back, err := argJSON(map[string]any{
		"z": map[string]any{"k": []any{1.0, 2.0}},
		"b": types.NewBytesBuffer([]byte{1, 2}),
		"l": []any{types.NewBytesBuffer(nil), "s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := `{"b":{"_placeholder":true,"bin":"AQI="},"l":[{"_placeholder":true,"bin":""},"s"],"z":{"k":[1,2]}}`; string(back) != w {
		t.Fatalf("argJSON = %s, want %s", back, w)
	}
	deep := strings.Repeat("[", maxArgDepth+2) + `{"_placeholder":true,"bin":""}` + strings.Repeat("]", maxArgDepth+2)
	if _, err := binaryValue([]byte(deep), 0); err == nil {
		t.Fatal("binaryValue accepted an argument nested too deep")
	}
	if got := wireArg(json.RawMessage(deep)); !reflect.DeepEqual(got, json.RawMessage(deep)) {
		t.Fatalf("wireArg of a too-deep argument = %#v, want it unchanged", got)
	}
}

// FuzzWireArg: for any JSON argument, wireArg must not panic, and what it
// hands upstream must describe the same value.
func FuzzWireArg(f *testing.F) {
	for _, s := range []string{`{"a":{"_placeholder":true,"bin":"AQI="}}`, `[{"_placeholder":true,"bin":""},1]`, `{"_placeholder":true,"bin":"AQI="}`, `"x"`, `{"a":{"_placeholder":true,"bin":"AQI="},"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, js []byte) {
		var a any
		if !json.Valid(js) || json.Unmarshal(js, &a) != nil {
			return // not JSON, or a number beyond float64 that the comparison below cannot read
		}
		v := wireArg(js)
		back, err := appendArgJSON(nil, v, 0)
		if err != nil {
			t.Fatalf("wireArg(%s) gave %#v, which does not encode: %v", js, v, err)
		}
		var b any
		if json.Unmarshal(back, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Fatalf("wireArg(%s) changed the value: %s", js, back)
		}
	})
}
