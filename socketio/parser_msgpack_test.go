package socketio

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/herald-rt/herald/events"
)

// mpEncode returns the one binary message Encode writes for p.
func mpEncode(t *testing.T, p *parser.Packet) []byte {
	t.Helper()
	bufs := msgpackParser{}.NewEncoder().Encode(p)
	if len(bufs) != 1 {
		t.Fatalf("Encode(%+v) wrote %d messages, want 1", p, len(bufs))
	}
	if _, text := bufs[0].(*types.StringBuffer); text {
		t.Fatalf("Encode(%+v) wrote a text message", p)
	}
	return bufs[0].Bytes()
}

// mpDecode feeds msg to a new decoder and returns what it emitted.
func mpDecode(msg any) (*parser.Packet, error) {
	d := msgpackParser{}.NewDecoder()
	var got []*parser.Packet
	_ = d.On("decoded", func(args ...any) {
		p, _ := args[0].(*parser.Packet)
		got = append(got, p)
	})
	err := d.Add(msg)
	d.Destroy()
	switch {
	case err != nil && len(got) > 0:
		return nil, errors.New("decoded emitted although Add failed")
	case err != nil:
		return nil, err
	case len(got) != 1:
		return nil, errors.New("decoded not emitted exactly once")
	}
	return got[0], nil
}

func mpHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func idp(n uint64) *uint64 { return &n }

// mapMember returns the raw MessagePack value of key in the map msg.
func mapMember(t *testing.T, msg []byte, key string) []byte {
	t.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(msg))
	n, err := dec.DecodeMapLen()
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			t.Fatal(err)
		}
		v, err := dec.DecodeRaw()
		if err != nil {
			t.Fatal(err)
		}
		if k == key {
			return v
		}
	}
	t.Fatalf("no %q in the map", key)
	return nil
}

// mapKeys returns the keys of the MessagePack map msg, in order.
func mapKeys(t *testing.T, msg []byte) []string {
	t.Helper()
	dec := msgpack.NewDecoder(bytes.NewReader(msg))
	n, err := dec.DecodeMapLen()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		if err := dec.Skip(); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestMsgpackEncoder(t *testing.T) {
	marker := events.AppendBytesJSON(nil, []byte{1, 2, 3})
	arg := json.RawMessage(`{"z":1,"a":[true,null,1.5,"x\"y\u00e9"],"big":18446744073709551615,"neg":-70000,` +
		`"two":2.0,"e":1e2,"huge":1e300,"min":-9223372036854775808,"negzero":-0,"bin":` + string(marker) +
		`,"nested":{"m":[` + string(events.AppendBytesJSON(nil, nil)) + `]},"s":"` + strings.Repeat("s", 40) + `"}`)
	cases := []struct {
		name string
		p    *parser.Packet
		want map[string]any // as vmihailenco/msgpack decodes it: integer types show the encoding
	}{
		{
			name: "event with JSON, bytes, buffers and Go values",
			p: &parser.Packet{Type: parser.EVENT, Nsp: "/", Id: idp(300), Data: []any{
				"job", arg, []byte{9}, types.NewBytesBuffer([]byte{8, 7}), wireArg(json.RawMessage(`{"k":` + string(marker) + `}`)),
				map[string]any{"n": 1.0, "f": float32(0.5), "i": -1, "u": uint16(65535), "s": []any{"a", nil, false}},
			}},
			want: map[string]any{"type": int8(2), "nsp": "/", "id": uint16(300), "data": []any{
				"job",
				map[string]any{
					"z": int8(1), "a": []any{true, nil, 1.5, "x\"yé"}, "big": uint64(math.MaxUint64), "neg": int32(-70000),
					"two": int8(2), "e": int8(100), "huge": 1e300, "min": int64(math.MinInt64), "negzero": int8(0),
					"bin": []byte{1, 2, 3}, "nested": map[string]any{"m": []any{[]byte{}}}, "s": strings.Repeat("s", 40),
				},
				[]byte{9}, []byte{8, 7}, map[string]any{"k": []byte{1, 2, 3}},
				map[string]any{"n": int8(1), "f": 0.5, "i": int8(-1), "u": uint16(65535), "s": []any{"a", nil, false}},
			}},
		},
		{
			name: "connect with upstream's struct",
			p: &parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: &struct {
				Sid string `json:"sid" msgpack:"sid"`
				Pid string `json:"pid,omitempty" msgpack:"pid,omitempty"`
			}{Sid: "abc"}},
			want: map[string]any{"type": int8(0), "nsp": "/", "data": map[string]any{"sid": "abc"}},
		},
		{
			name: "connect_error with upstream's ExtendedError",
			p: &parser.Packet{Type: parser.CONNECT_ERROR, Nsp: "/admin",
				Data: types.NewExtendedError("unauthorized", map[string]any{"code": "token_invalid"})},
			want: map[string]any{"type": int8(4), "nsp": "/admin", "data": map[string]any{"message": "unauthorized", "data": map[string]any{"code": "token_invalid"}}},
		},
		{
			name: "ack with herald's error object",
			p:    &parser.Packet{Type: parser.ACK, Nsp: "/", Id: idp(0), Data: []any{map[string]any{"error": Error{Code: "c", Message: "m"}}}},
			want: map[string]any{"type": int8(3), "nsp": "/", "id": int8(0), "data": []any{map[string]any{"error": map[string]any{"code": "c", "message": "m"}}}},
		},
		{
			name: "binary event and ack are plain ones",
			p:    &parser.Packet{Type: parser.BINARY_ACK, Nsp: "/", Id: idp(5), Data: []any{[]byte{1}}},
			want: map[string]any{"type": int8(3), "nsp": "/", "id": int8(5), "data": []any{[]byte{1}}},
		},
		{
			name: "disconnect, empty namespace",
			p:    &parser.Packet{Type: parser.DISCONNECT},
			want: map[string]any{"type": int8(1), "nsp": "/"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := mpEncode(t, tc.p)
			var got map[string]any
			if err := msgpack.Unmarshal(msg, &got); err != nil {
				t.Fatalf("vmihailenco/msgpack cannot decode % x: %v", msg, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("encoded\n%#v\nwant\n%#v", got, tc.want)
			}
			wantKeys := slices.DeleteFunc([]string{"type", "data", "nsp", "id"}, func(k string) bool {
				return k == "data" && tc.p.Data == nil || k == "id" && tc.p.Id == nil
			})
			if keys := mapKeys(t, msg); !reflect.DeepEqual(keys, wantKeys) {
				t.Fatalf("packet keys %q, want %q", keys, wantKeys)
			}
		})
	}

	t.Run("JSON object members keep their order", func(t *testing.T) {
		msg := mpEncode(t, &parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", arg}})
		d := msgpack.NewDecoder(bytes.NewReader(mapMember(t, msg, "data")))
		if n, err := d.DecodeArrayLen(); err != nil || n != 2 {
			t.Fatalf("data array: %d, %v", n, err)
		}
		if err := d.Skip(); err != nil { // the event name
			t.Fatal(err)
		}
		obj, err := d.DecodeRaw()
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"z", "a", "big", "neg", "two", "e", "huge", "min", "negzero", "bin", "nested", "s"}
		if keys := mapKeys(t, obj); !reflect.DeepEqual(keys, want) {
			t.Fatalf("keys %q, want %q", keys, want)
		}
	})

	t.Run("bytes as notepack.io writes them", func(t *testing.T) {
		// {type: 0, data: {sid: "abc"}, nsp: "/"}, as notepack.io encodes
		// the same object.
		got := mpEncode(t, &parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: map[string]any{"sid": "abc"}})
		want := mpHex(t, "83 a474797065 00 a464617461 81 a3736964 a3616263 a36e7370 a12f")
		if !bytes.Equal(got, want) {
			t.Fatalf("% x\nwant % x", got, want)
		}
	})

	t.Run("an unencodable value drops the packet", func(t *testing.T) {
		bufs := msgpackParser{}.NewEncoder().Encode(&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", func() {}}})
		if len(bufs) != 0 {
			t.Fatalf("wrote %d messages", len(bufs))
		}
		if bufs := (msgpackParser{}).NewEncoder().Encode(&parser.Packet{Type: 9, Nsp: "/"}); len(bufs) != 0 {
			t.Fatalf("packet type 9: wrote %d messages", len(bufs))
		}
		loop := map[string]any{}
		loop["self"] = loop
		if bufs := (msgpackParser{}).NewEncoder().Encode(&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", loop}}); len(bufs) != 0 {
			t.Fatalf("a map that holds itself: wrote %d messages", len(bufs))
		}
	})

	t.Run("JSON as deep as encoding/json allows", func(t *testing.T) {
		deep := json.RawMessage(strings.Repeat("[", 9999) + strings.Repeat("]", 9999))
		msg := mpEncode(t, &parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", deep}})
		if want := 9999 + 21; len(msg) != want { // 9999 array headers and the packet around them
			t.Fatalf("%d bytes, want %d", len(msg), want)
		}
	})
}

// TestMsgpackDecoderFromNode decodes packets as socket.io-client with
// socket.io-msgpack-parser 3.0.2 (notepack.io 2.2.0) encodes them
// (testdata/fuzz/FuzzMsgpackDecoder/node_*).
func TestMsgpackDecoderFromNode(t *testing.T) {
	cases := []struct {
		name, hex string
		want      *parser.Packet
		wantArg   string // JSON of data[1] as herald's handlers see it (argJSON)
	}{
		{
			name: "connect with auth",
			hex:  "83a47479706500a46461746181a5746f6b656ea174a36e7370a12f",
			want: &parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: map[string]any{"token": "t"}},
		},
		{
			name: "connect, auth undefined",
			hex:  "83a47479706500a464617461d40000a36e7370a12f",
			want: &parser.Packet{Type: parser.CONNECT, Nsp: "/"},
		},
		{
			name: "connect for recovery, offset undefined",
			hex:  "83a47479706500a46461746183a3706964a27031a66f6666736574d40000a5746f6b656ea174a36e7370a12f",
			want: &parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: map[string]any{"pid": "p1", "token": "t"}},
		},
		{
			name: "event with ack and emit options",
			hex: "85a47479706502a46461746192a46563686f84a474657874a26869a16ecb3ff8000000000000a3626967cf1000000000000000a36e6567d2fffeee90" +
				"a76f7074696f6e7381a8636f6d7072657373c3a2696407a36e7370a12f",
			want: &parser.Packet{Type: parser.EVENT, Nsp: "/", Id: idp(7), Data: []any{"echo",
				map[string]any{"text": "hi", "n": 1.5, "big": int64(1 << 60), "neg": int64(-70000)}}},
			wantArg: `{"big":1152921504606846976,"n":1.5,"neg":-70000,"text":"hi"}`,
		},
		{
			name: "event with Buffers and an ArrayBuffer",
			hex: "85a47479706502a46461746192a466696c6584a46e616d65a166a464617461c403010203a5706172747392c400c702000908a46d65746181a57468756d62c402ff00" +
				"a76f7074696f6e7381a8636f6d7072657373c3a2696400a36e7370a12f",
			want: &parser.Packet{Type: parser.EVENT, Nsp: "/", Id: idp(0), Data: []any{"file", map[string]any{
				"name": "f", "data": []byte{1, 2, 3}, "parts": []any{[]byte{}, []byte{9, 8}}, "meta": map[string]any{"thumb": []byte{0xff, 0}},
			}}},
			wantArg: `{"data":{"_placeholder":true,"bin":"AQID"},"meta":{"thumb":{"_placeholder":true,"bin":"/wA="}},"name":"f",` +
				`"parts":[{"_placeholder":true,"bin":""},{"_placeholder":true,"bin":"CQg="}]}`,
		},
		{
			name: "event with a Date, undefined, NaN and Infinity",
			hex: "83a47479706502a46461746192a47768656e83a26174d7000000019424f8608ea4676f6e65d40000a46c69737496d40000c0c3c2cb7ff8000000000000cb7ff0000000000000" +
				"a36e7370a62f61646d696e",
			want: &parser.Packet{Type: parser.EVENT, Nsp: "/admin", Data: []any{"when", map[string]any{
				"at": "2025-01-02T03:04:05.006Z", "list": []any{nil, nil, true, false, nil, nil},
			}}},
			wantArg: `{"at":"2025-01-02T03:04:05.006Z","list":[null,null,true,false,null,null]}`,
		},
		{
			name: "ack with a 64-bit id",
			hex:  "84a47479706503a26964cf0000000100000000a4646174619181a474657874a6616e73776572a36e7370a12f",
			want: &parser.Packet{Type: parser.ACK, Nsp: "/", Id: idp(1 << 32), Data: []any{map[string]any{"text": "answer"}}},
		},
		{
			name: "disconnect",
			hex:  "82a47479706501a36e7370a12f",
			want: &parser.Packet{Type: parser.DISCONNECT, Nsp: "/"},
		},
		{
			name: "integral floats for type and id",
			hex:  "84 a474797065 cb4000000000000000 a26964 cb4008000000000000 a464617461 91a161 a36e7370 a12f",
			want: &parser.Packet{Type: parser.EVENT, Nsp: "/", Id: idp(3), Data: []any{"a"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := mpHex(t, tc.hex)
			// As upstream hands binary messages over.
			got, err := mpDecode(types.NewBytesBuffer(msg))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded %s\nwant    %s", fmtPacket(got), fmtPacket(tc.want))
			}
			if tc.wantArg != "" {
				js, err := argJSON(got.Data.([]any)[1])
				if err != nil {
					t.Fatal(err)
				}
				if string(js) != tc.wantArg {
					t.Fatalf("argJSON = %s\nwant      %s", js, tc.wantArg)
				}
			}
		})
	}
}

// TestJSDateJSON: the texts are JSON.stringify(new Date(ms)) in Node.
func TestJSDateJSON(t *testing.T) {
	cases := []struct {
		ms   int64
		want any
	}{
		{0, "1970-01-01T00:00:00.000Z"},
		{1735787045006, "2025-01-02T03:04:05.006Z"},
		{-62198755200000, "-000001-01-01T00:00:00.000Z"},
		{-62135596800001, "0000-12-31T23:59:59.999Z"},
		{253402300800000, "+010000-01-01T00:00:00.000Z"},
		{8.64e15, "+275760-09-13T00:00:00.000Z"},
		{-8.64e15, "-271821-04-20T00:00:00.000Z"},
		{8.64e15 + 1, nil},
		{math.MinInt64, nil},
	}
	for _, tc := range cases {
		if got := jsDateJSON(tc.ms); got != tc.want {
			t.Errorf("jsDateJSON(%d) = %v, want %v", tc.ms, got, tc.want)
		}
	}
}

func fmtPacket(p *parser.Packet) string {
	if p == nil {
		return "<nil>"
	}
	s := strings.Builder{}
	s.WriteString(p.Type.String() + " " + p.Nsp)
	if p.Id != nil {
		s.WriteString(" id=" + jsonText(*p.Id))
	}
	s.WriteString(" data=" + strings.ReplaceAll(strings.ReplaceAll(jsonText(p.Data), "\n", ""), " ", ""))
	return s.String() + fmt.Sprintf(" (%T)", p.Data)
}

func jsonText(v any) string {
	b, err := argJSON(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestMsgpackDecoderRejects(t *testing.T) {
	// pkt builds {type, nsp: "/", data} with data's hex appended.
	pkt := func(typ byte, data string) string {
		return "83 a474797065" + hex.EncodeToString([]byte{typ}) + " a36e7370 a12f a464617461" + data
	}
	// deep nests n containers, the packet's map and data array included.
	deep := func(n int) string { return pkt(2, "92a161"+strings.Repeat("91", n-2)+"c0") }
	cases := []struct {
		name string
		msg  any
		want string // in the error
	}{
		{"text message", "2[\"e\"]", "text message"},
		{"text buffer", types.NewStringBufferString(`2["e"]`), "text message"},
		{"nil", nil, "message type"},
		{"empty", []byte{}, "truncated"},
		{"not a map", mpHex(t, "93 02 a12f 90"), "a packet is a map"},
		{"integer", mpHex(t, "02"), "a packet is a map"},
		{"trailing bytes", mpHex(t, "82 a474797065 01 a36e7370 a12f c0"), "trailing"},
		{"unknown type byte", mpHex(t, "c1"), "unknown type"},
		{"no type", mpHex(t, "81 a36e7370 a12f"), "packet type"},
		{"type as string", mpHex(t, "82 a474797065 a132 a36e7370 a12f"), "packet type"},
		{"type 5 (binary event)", mpHex(t, pkt(5, "91a161")), "packet type"},
		{"type 6 (binary ack)", mpHex(t, pkt(6, "90")), "packet type"},
		{"type -1", mpHex(t, pkt(0xff, "80")), "packet type"},
		{"type 1.5", mpHex(t, "82 a474797065 cb3ff8000000000000 a36e7370 a12f"), "packet type"},
		{"type nil", mpHex(t, "82 a474797065 c0 a36e7370 a12f"), "packet type"},
		{"no namespace", mpHex(t, "81 a474797065 01"), "namespace"},
		{"namespace not a string", mpHex(t, "82 a474797065 01 a36e7370 01"), "namespace"},
		{"namespace too long", mpHex(t, "82 a474797065 01 a36e7370 da0201"+strings.Repeat("61", 513)), "namespace longer"},
		{"connect with null", mpHex(t, pkt(0, "c0")), "invalid payload"},
		{"connect with an array", mpHex(t, pkt(0, "90")), "invalid payload"},
		{"connect with a string", mpHex(t, pkt(0, "a161")), "invalid payload"},
		{"disconnect with data", mpHex(t, pkt(1, "c0")), "invalid payload"},
		{"event without data", mpHex(t, "82 a474797065 02 a36e7370 a12f"), "invalid payload"},
		{"event with an empty array", mpHex(t, pkt(2, "90")), "invalid payload"},
		{"event with a map", mpHex(t, pkt(2, "81a161a162")), "invalid payload"},
		{"event named by a number", mpHex(t, pkt(2, "9101")), "invalid payload"},
		{"event named by bin", mpHex(t, pkt(2, "91c40161")), "invalid payload"},
		{"reserved event name", mpHex(t, pkt(2, "91aa646973636f6e6e656374")), "invalid payload"},
		{"ack with a map", mpHex(t, pkt(3, "80")), "invalid payload"},
		{"connect_error with a number", mpHex(t, pkt(4, "01")), "invalid payload"},
		{"connect_error without data", mpHex(t, "82 a474797065 04 a36e7370 a12f"), "invalid payload"},
		{"negative id", mpHex(t, "84 a474797065 03 a26964 ff a464617461 90 a36e7370 a12f"), "packet id"},
		{"id as string", mpHex(t, "84 a474797065 03 a26964 a131 a464617461 90 a36e7370 a12f"), "packet id"},
		{"id 1.5", mpHex(t, "84 a474797065 03 a26964 cb3ff8000000000000 a464617461 90 a36e7370 a12f"), "packet id"},
		{"id nil", mpHex(t, "84 a474797065 03 a26964 c0 a464617461 90 a36e7370 a12f"), "packet id"},
		{"integer map key", mpHex(t, pkt(2, "92a1618101c0")), "map key"},
		{"nested 65 deep", mpHex(t, deep(65)), "nested deeper than 64"},
		{"nested 10000 deep", mpHex(t, deep(10000)), "nested deeper than 64"},
		{"huge array", mpHex(t, pkt(2, "ddffffffff")), "exceeds the message"},
		{"huge map", mpHex(t, pkt(2, "92a161dfffffffff")), "exceeds the message"},
		{"huge array16", mpHex(t, pkt(2, "dcffff")), "exceeds the message"},
		{"huge string", mpHex(t, pkt(2, "92a161dbffffffff41")), "exceeds the message"},
		{"huge bin", mpHex(t, pkt(2, "92a161c6ffffffff00")), "exceeds the message"},
		{"huge ext", mpHex(t, pkt(2, "92a161c9ffffffff00")), "exceeds the message"},
		{"truncated fixstr", mpHex(t, pkt(2, "92a161a5616263")), "truncated"},
		{"truncated float", mpHex(t, pkt(2, "92a161cb3ff8")), "truncated"},
		{"fixarray longer than the message", mpHex(t, pkt(2, "9fa161")), "truncated"},
		{"extension type 5", mpHex(t, pkt(2, "92a161d40501")), "extension type 5"},
		{"timestamp extension", mpHex(t, pkt(2, "92a161d6ff00000000")), "extension type -1"},
		{"fixext 2 of type 0", mpHex(t, pkt(2, "92a161d5000000")), "extension type 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := mpDecode(tc.msg)
			if err == nil {
				t.Fatalf("decoded %s", fmtPacket(p))
			}
			if !errors.Is(err, errMsgpackPacket) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one wrapping errMsgpackPacket and mentioning %q", err, tc.want)
			}
		})
	}

	t.Run("nested 64 deep is accepted", func(t *testing.T) {
		if p, err := mpDecode(mpHex(t, deep(64))); err != nil {
			t.Fatalf("%v (%s)", err, fmtPacket(p))
		}
	})

	t.Run("every truncation of a valid packet", func(t *testing.T) {
		msg := mpEncode(t, &parser.Packet{Type: parser.EVENT, Nsp: "/", Id: idp(70000), Data: []any{
			"e", json.RawMessage(`{"a":[1,-1,1.5,"` + strings.Repeat("x", 300) + `",null,true],"b":` + string(events.AppendBytesJSON(nil, make([]byte, 300))) + `}`)}})
		for n := range len(msg) {
			if p, err := mpDecode(msg[:n]); err == nil {
				t.Fatalf("%d of %d bytes decoded as %s", n, len(msg), fmtPacket(p))
			}
		}
		if _, err := mpDecode(msg); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMsgpackRoundTrip encodes a packet of every type and decodes it again.
func TestMsgpackRoundTrip(t *testing.T) {
	fileArg := json.RawMessage(`{"name":"f","data":` + string(events.AppendBytesJSON(nil, []byte{1, 2, 3})) +
		`,"parts":[` + string(events.AppendBytesJSON(nil, nil)) + `],"n":1.25,"big":-9007199254740993}`)
	cases := []struct {
		name string
		in   *parser.Packet
		want *parser.Packet
	}{
		{"connect", &parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: map[string]any{"sid": "s1", "pid": "p1"}},
			&parser.Packet{Type: parser.CONNECT, Nsp: "/", Data: map[string]any{"sid": "s1", "pid": "p1"}}},
		{"connect without data", &parser.Packet{Type: parser.CONNECT, Nsp: "/admin"},
			&parser.Packet{Type: parser.CONNECT, Nsp: "/admin"}},
		{"disconnect", &parser.Packet{Type: parser.DISCONNECT, Nsp: "/"},
			&parser.Packet{Type: parser.DISCONNECT, Nsp: "/"}},
		{"event", &parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"job_progress", json.RawMessage(`{"jobId":"j","progress":40}`)}},
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"job_progress", map[string]any{"jobId": "j", "progress": int64(40)}}}},
		{"event with ack and binary data", &parser.Packet{Type: parser.EVENT, Nsp: "/", Id: idp(12), Data: []any{"file", fileArg, []byte{}}},
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Id: idp(12), Data: []any{"file", map[string]any{
				"name": "f", "data": []byte{1, 2, 3}, "parts": []any{[]byte{}}, "n": 1.25, "big": int64(-9007199254740993)}, []byte{}}}},
		{"binary event", &parser.Packet{Type: parser.BINARY_EVENT, Nsp: "/", Data: []any{"e", types.NewBytesBuffer([]byte{7})}},
			&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", []byte{7}}}},
		{"ack", &parser.Packet{Type: parser.ACK, Nsp: "/", Id: idp(math.MaxUint64), Data: []any{}},
			&parser.Packet{Type: parser.ACK, Nsp: "/", Id: idp(math.MaxUint64), Data: []any{}}},
		{"binary ack", &parser.Packet{Type: parser.BINARY_ACK, Nsp: "/", Id: idp(1), Data: []any{[]byte{1}, nil}},
			&parser.Packet{Type: parser.ACK, Nsp: "/", Id: idp(1), Data: []any{[]byte{1}, nil}}},
		{"connect_error with a string", &parser.Packet{Type: parser.CONNECT_ERROR, Nsp: "/", Data: "Invalid namespace"},
			&parser.Packet{Type: parser.CONNECT_ERROR, Nsp: "/", Data: "Invalid namespace"}},
		{"connect_error with an object", &parser.Packet{Type: parser.CONNECT_ERROR, Nsp: "/", Data: types.NewExtendedError("unauthorized", map[string]any{"code": "token_expired"})},
			&parser.Packet{Type: parser.CONNECT_ERROR, Nsp: "/", Data: map[string]any{"message": "unauthorized", "data": map[string]any{"code": "token_expired"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mpDecode(mpEncode(t, tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip %s\nwant       %s", fmtPacket(got), fmtPacket(tc.want))
			}
		})
	}
	// A JSON argument comes back as the same JSON from argJSON (members
	// sorted, as for every argument with binary data).
	got, err := mpDecode(mpEncode(t, &parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"file", fileArg}}))
	if err != nil {
		t.Fatal(err)
	}
	js, err := argJSON(got.Data.([]any)[1])
	if err != nil {
		t.Fatal(err)
	}
	if !jsonSame(js, fileArg) {
		t.Fatalf("argJSON = %s, want the value of %s", js, fileArg)
	}
}

// jsonSame reports whether two JSON texts hold the same value.
func jsonSame(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// FuzzMsgpackDecoder: no input makes the decoder panic; what it accepts is
// a valid packet that survives encoding and decoding again. Input that is
// JSON also goes through the encoder as an event argument and must come
// back as the same value. The seeds in testdata/fuzz/FuzzMsgpackDecoder
// include socket.io-msgpack-parser's own output (node_*).
func FuzzMsgpackDecoder(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,-3,"x",null,true],"b":{"_placeholder":true,"bin":"AQI="}}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := mpDecode(msg)
		if err != nil {
			if !errors.Is(err, errMsgpackPacket) {
				t.Fatalf("error %v does not wrap errMsgpackPacket", err)
			}
		} else {
			if !msgpackDataValid(p.Type, p.Data, p.Data != nil) {
				t.Fatalf("accepted an invalid packet %s", fmtPacket(p))
			}
			q, err := mpDecode(mpEncode(t, p))
			if err != nil {
				t.Fatalf("%s does not decode after encoding: %v", fmtPacket(p), err)
			}
			pj, err1 := argJSON(p.Data)
			qj, err2 := argJSON(q.Data)
			if err1 != nil || err2 != nil || !jsonSame(pj, qj) || p.Type != q.Type || cmp.Or(p.Nsp, "/") != q.Nsp || !reflect.DeepEqual(p.Id, q.Id) {
				t.Fatalf("round trip changed %s into %s (%v, %v)", fmtPacket(p), fmtPacket(q), err1, err2)
			}
		}

		if !json.Valid(msg) {
			return
		}
		var want any
		if json.Unmarshal(msg, &want) != nil {
			return // a number out of float64's range
		}
		buf := msgpackParser{}.NewEncoder().Encode(&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: []any{"e", json.RawMessage(msg)}})
		if len(buf) != 1 {
			t.Fatalf("JSON %q not encoded", msg)
		}
		q, err := mpDecode(buf[0].Bytes())
		if err != nil {
			if strings.Contains(err.Error(), "nested deeper") {
				return
			}
			t.Fatalf("JSON %q: encoded, then %v", msg, err)
		}
		js, err := argJSON(q.Data.([]any)[1])
		if err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(js, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON %s came back as %s", msg, js)
		}
	})
}
