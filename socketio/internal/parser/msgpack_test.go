package parser

import (
	"bytes"
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

	"github.com/herald-rt/herald/events"
)

// The MessagePack parser's tests, ported from socketio/parser_msgpack_test.go
// (written against zishang520's packets, whose Data were Go values): the
// same packets and assertions, with Data as JSON text.

// mpEncode returns the one binary message Encode writes for p.
func mpEncode(t testing.TB, p *Packet) []byte {
	t.Helper()
	msgs, err := Msgpack().Encode(p)
	if err != nil {
		t.Fatalf("Encode(%s): %v", fmtPacket(p), err)
	}
	if len(msgs) != 1 || !msgs[0].Binary {
		t.Fatalf("Encode(%s) wrote %d messages (%+v), want 1 binary message", fmtPacket(p), len(msgs), msgs)
	}
	return msgs[0].Data
}

// mpDecode feeds m to a new decoder.
func mpDecode(m Message) (*Packet, error) {
	d := Msgpack().NewDecoder()
	p, err := d.Add(m)
	switch {
	case err != nil && p != nil:
		return nil, errors.New("a packet returned with an error")
	case err == nil && p == nil:
		return nil, errors.New("no packet and no error")
	}
	return p, err
}

func mpHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bin(msg []byte) Message { return Message{Data: msg, Binary: true} }

func mk(b ...byte) string { return string(events.AppendBytesJSON(nil, b)) }

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
	m123 := mk(1, 2, 3)
	arg := `{"z":1,"a":[true,null,1.5,"x\"y\u00e9"],"big":18446744073709551615,"neg":-70000,` +
		`"two":2.0,"e":1e2,"huge":1e300,"min":-9223372036854775808,"negzero":-0,"bin":` + m123 +
		`,"nested":{"m":[` + mk() + `]},"s":"` + strings.Repeat("s", 40) + `"}`
	cases := []struct {
		name string
		p    *Packet
		want map[string]any // as vmihailenco/msgpack decodes it: integer types show the encoding
	}{
		{
			name: "event with JSON and bytes",
			p: &Packet{Type: Event, Nsp: "/", ID: 300, HasID: true, Data: json.RawMessage(`["job",` + arg + `,` + mk(9) + `,` + mk(8, 7) +
				`,{"k":` + m123 + `},{"n":1.0,"f":0.5,"i":-1,"u":65535,"s":["a",null,false]}]`)},
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
			name: "connect with the server's handshake data",
			p:    &Packet{Type: Connect, Nsp: "/", Data: json.RawMessage(`{"sid":"abc"}`)},
			want: map[string]any{"type": int8(0), "nsp": "/", "data": map[string]any{"sid": "abc"}},
		},
		{
			name: "connect_error with an error object",
			p:    &Packet{Type: ConnectError, Nsp: "/admin", Data: json.RawMessage(`{"message":"unauthorized","data":{"code":"token_invalid"}}`)},
			want: map[string]any{"type": int8(4), "nsp": "/admin", "data": map[string]any{"message": "unauthorized", "data": map[string]any{"code": "token_invalid"}}},
		},
		{
			name: "ack with herald's error object",
			p:    &Packet{Type: Ack, Nsp: "/", HasID: true, Data: json.RawMessage(`[{"error":{"code":"c","message":"m"}}]`)},
			want: map[string]any{"type": int8(3), "nsp": "/", "id": int8(0), "data": []any{map[string]any{"error": map[string]any{"code": "c", "message": "m"}}}},
		},
		{
			name: "binary event and ack are plain ones",
			p:    &Packet{Type: BinaryAck, Nsp: "/", ID: 5, HasID: true, Data: json.RawMessage(`[` + mk(1) + `]`)},
			want: map[string]any{"type": int8(3), "nsp": "/", "id": int8(5), "data": []any{[]byte{1}}},
		},
		{
			name: "disconnect, empty namespace",
			p:    &Packet{Type: Disconnect},
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
				return k == "data" && tc.p.Data == nil || k == "id" && !tc.p.HasID
			})
			if keys := mapKeys(t, msg); !reflect.DeepEqual(keys, wantKeys) {
				t.Fatalf("packet keys %q, want %q", keys, wantKeys)
			}
		})
	}

	t.Run("JSON object members keep their order", func(t *testing.T) {
		msg := mpEncode(t, &Packet{Type: Event, Nsp: "/", Data: json.RawMessage(`["e",` + arg + `]`)})
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
		got := mpEncode(t, &Packet{Type: Connect, Nsp: "/", Data: json.RawMessage(`{"sid":"abc"}`)})
		want := mpHex(t, "83 a474797065 00 a464617461 81 a3736964 a3616263 a36e7370 a12f")
		if !bytes.Equal(got, want) {
			t.Fatalf("% x\nwant % x", got, want)
		}
	})

	t.Run("a packet that does not encode is refused", func(t *testing.T) {
		for _, p := range []*Packet{
			nil,
			{Type: Event, Nsp: "/", Data: json.RawMessage(`["e",`)},
			{Type: Event, Nsp: "/", Data: json.RawMessage(``)},
			{Type: 9, Nsp: "/"},
			{Type: Event, Nsp: "/", Data: json.RawMessage(`["e",` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `]`)},
		} {
			if msgs, err := Msgpack().Encode(p); err == nil || !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("Encode(%s) = %d messages, %v; want an error wrapping ErrInvalidPacket", fmtPacket(p), len(msgs), err)
			}
		}
	})

	t.Run("JSON as deep as encoding/json allows", func(t *testing.T) {
		deep := strings.Repeat("[", 9999) + strings.Repeat("]", 9999)
		msg := mpEncode(t, &Packet{Type: Event, Nsp: "/", Data: json.RawMessage(`["e",` + deep + `]`)})
		if want := 9999 + 21; len(msg) != want { // 9999 array headers and the packet around them
			t.Fatalf("%d bytes, want %d", len(msg), want)
		}
	})
}

// TestMsgpackDecoderFromNode decodes packets as socket.io-client with
// socket.io-msgpack-parser 3.0.2 (notepack.io 2.2.0) encodes them
// (testdata/fuzz/FuzzMsgpackDecoder/node_*). TestMsgpackMatchesNode
// checks Data against what Node decodes.
func TestMsgpackDecoderFromNode(t *testing.T) {
	cases := []struct {
		name, hex string
		want      *Packet
	}{
		{
			name: "connect with auth",
			hex:  "83a47479706500a46461746181a5746f6b656ea174a36e7370a12f",
			want: &Packet{Type: Connect, Nsp: "/", Data: json.RawMessage(`{"token":"t"}`)},
		},
		{
			name: "connect, auth undefined",
			hex:  "83a47479706500a464617461d40000a36e7370a12f",
			want: &Packet{Type: Connect, Nsp: "/"},
		},
		{
			name: "connect for recovery, offset undefined",
			hex:  "83a47479706500a46461746183a3706964a27031a66f6666736574d40000a5746f6b656ea174a36e7370a12f",
			want: &Packet{Type: Connect, Nsp: "/", Data: json.RawMessage(`{"pid":"p1","token":"t"}`)},
		},
		{
			name: "event with ack and emit options",
			hex: "85a47479706502a46461746192a46563686f84a474657874a26869a16ecb3ff8000000000000a3626967cf1000000000000000a36e6567d2fffeee90" +
				"a76f7074696f6e7381a8636f6d7072657373c3a2696407a36e7370a12f",
			// big is exact (notepack.io reads 2^60 as a float64; JSON.stringify writes 1152921504606847000).
			want: &Packet{Type: Event, Nsp: "/", ID: 7, HasID: true,
				Data: json.RawMessage(`["echo",{"text":"hi","n":1.5,"big":1152921504606846976,"neg":-70000}]`)},
		},
		{
			name: "event with Buffers and an ArrayBuffer",
			hex: "85a47479706502a46461746192a466696c6584a46e616d65a166a464617461c403010203a5706172747392c400c702000908a46d65746181a57468756d62c402ff00" +
				"a76f7074696f6e7381a8636f6d7072657373c3a2696400a36e7370a12f",
			want: &Packet{Type: Event, Nsp: "/", HasID: true, Data: json.RawMessage(`["file",{"name":"f","data":` + mk(1, 2, 3) +
				`,"parts":[` + mk() + `,` + mk(9, 8) + `],"meta":{"thumb":` + mk(0xff, 0) + `}}]`)},
		},
		{
			name: "event with a Date, undefined, NaN and Infinity",
			hex: "83a47479706502a46461746192a47768656e83a26174d7000000019424f8608ea4676f6e65d40000a46c69737496d40000c0c3c2cb7ff8000000000000cb7ff0000000000000" +
				"a36e7370a62f61646d696e",
			want: &Packet{Type: Event, Nsp: "/admin",
				Data: json.RawMessage(`["when",{"at":"2025-01-02T03:04:05.006Z","list":[null,null,true,false,null,null]}]`)},
		},
		{
			name: "ack with a 64-bit id",
			hex:  "84a47479706503a26964cf0000000100000000a4646174619181a474657874a6616e73776572a36e7370a12f",
			want: &Packet{Type: Ack, Nsp: "/", ID: 1 << 32, HasID: true, Data: json.RawMessage(`[{"text":"answer"}]`)},
		},
		{
			name: "disconnect",
			hex:  "82a47479706501a36e7370a12f",
			want: &Packet{Type: Disconnect, Nsp: "/"},
		},
		{
			name: "integral floats for type and id",
			hex:  "84 a474797065 cb4000000000000000 a26964 cb4008000000000000 a464617461 91a161 a36e7370 a12f",
			want: &Packet{Type: Event, Nsp: "/", ID: 3, HasID: true, Data: json.RawMessage(`["a"]`)},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := mpHex(t, tc.hex)
			got, err := mpDecode(bin(msg))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("decoded %s\nwant    %s", fmtPacket(got), fmtPacket(tc.want))
			}
		})
	}
}

// TestJSDateJSON: the texts are JSON.stringify(new Date(ms)) in Node.
func TestJSDateJSON(t *testing.T) {
	cases := []struct {
		ms   int64
		want string
	}{
		{0, `"1970-01-01T00:00:00.000Z"`},
		{1735787045006, `"2025-01-02T03:04:05.006Z"`},
		{-62198755200000, `"-000001-01-01T00:00:00.000Z"`},
		{-62135596800001, `"0000-12-31T23:59:59.999Z"`},
		{253402300800000, `"+010000-01-01T00:00:00.000Z"`},
		{8.64e15, `"+275760-09-13T00:00:00.000Z"`},
		{-8.64e15, `"-271821-04-20T00:00:00.000Z"`},
		{8.64e15 + 1, `null`},
		{math.MinInt64, `null`},
	}
	for _, tc := range cases {
		if got := string(appendJSDate(nil, tc.ms)); got != tc.want {
			t.Errorf("appendJSDate(%d) = %s, want %s", tc.ms, got, tc.want)
		}
		// The same through the decoder: fixext 8 of type 0.
		msg := binaryAppendDate(tc.ms)
		p, err := mpDecode(bin(msg))
		if err != nil {
			t.Fatal(err)
		}
		if want := `["d",` + tc.want + `]`; string(p.Data) != want {
			t.Errorf("decoded %s, want %s", p.Data, want)
		}
	}
}

// binaryAppendDate returns an EVENT ["d", Date(ms)] as notepack.io writes
// it.
func binaryAppendDate(ms int64) []byte {
	b := []byte("\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1d\xd7\x00")
	for i := 7; i >= 0; i-- {
		b = append(b, byte(uint64(ms)>>(8*i)))
	}
	return b
}

func fmtPacket(p *Packet) string {
	if p == nil {
		return "<nil>"
	}
	s := fmt.Sprintf("%v %q", p.Type, p.Nsp)
	if p.HasID {
		s += fmt.Sprintf(" id=%d", p.ID)
	}
	if p.Data == nil {
		return s + " data=<nil>"
	}
	const max = 300
	if len(p.Data) > max {
		return s + fmt.Sprintf(" data=%s... (%d bytes)", p.Data[:max], len(p.Data))
	}
	return s + " data=" + string(p.Data)
}

// mpPacketHex returns the hex of {type, nsp: "/", data} with data's hex
// appended.
func mpPacketHex(typ byte, data string) string {
	return "83 a474797065" + hex.EncodeToString([]byte{typ}) + " a36e7370 a12f a464617461" + data
}

// mpDeepHex nests n containers, the packet's map and data array included.
func mpDeepHex(n int) string { return mpPacketHex(2, "92a161"+strings.Repeat("91", n-2)+"c0") }

// mpRejectCase is a message the msgpack decoder refuses; hex is the
// message's, or, when text is set, the text of a text message.
type mpRejectCase struct {
	// name says "(stricter)" when Node's decoder accepts the message:
	// herald keeps the checks of its previous msgpack parser (event names
	// as the default parser checks them, non-negative ids, string keys,
	// notepack.io's own extensions only, bounded nesting and namespaces).
	name string
	hex  string
	text string
	want string // in the error
}

func (c mpRejectCase) message(t testing.TB) Message {
	if c.hex == "" {
		return Message{Data: []byte(c.text)}
	}
	return bin(mpHex(t, c.hex))
}

var mpRejectCases = []mpRejectCase{
	{name: "text message", text: `2["e"]`, want: "text message"},
	{name: "empty text message", text: "", want: "text message"},
	{name: "empty", hex: " ", want: "truncated"},
	{name: "not a map", hex: "93 02 a12f 90", want: "a packet is a map"},
	{name: "integer", hex: "02", want: "a packet is a map"},
	{name: "trailing bytes", hex: "82 a474797065 01 a36e7370 a12f c0", want: "trailing"},
	{name: "unknown type byte", hex: "c1", want: "unknown type"},
	{name: "no type", hex: "81 a36e7370 a12f", want: "packet type"},
	{name: "type as string", hex: "82 a474797065 a132 a36e7370 a12f", want: "packet type"},
	{name: "type 5 (binary event)", hex: mpPacketHex(5, "91a161"), want: "packet type"},
	{name: "type 6 (binary ack)", hex: mpPacketHex(6, "90"), want: "packet type"},
	{name: "type -1", hex: mpPacketHex(0xff, "80"), want: "packet type"},
	{name: "type 1.5", hex: "82 a474797065 cb3ff8000000000000 a36e7370 a12f", want: "packet type"},
	{name: "type nil", hex: "82 a474797065 c0 a36e7370 a12f", want: "packet type"},
	{name: "type NaN", hex: "82 a474797065 cb7ff8000000000000 a36e7370 a12f", want: "packet type"},
	{name: "type Infinity", hex: "82 a474797065 cb7ff0000000000000 a36e7370 a12f", want: "packet type"},
	{name: "type undefined", hex: "82 a474797065 d40000 a36e7370 a12f", want: "packet type"},
	{name: "type an array", hex: "82 a474797065 9102 a36e7370 a12f", want: "packet type"},
	{name: "type given twice, last invalid", hex: "83 a474797065 02 a474797065 07 a36e7370 a12f", want: "packet type"},
	{name: "no namespace", hex: "81 a474797065 01", want: "namespace"},
	{name: "namespace not a string", hex: "82 a474797065 01 a36e7370 01", want: "namespace"},
	{name: "namespace undefined", hex: "82 a474797065 01 a36e7370 d40000", want: "namespace"},
	{name: "namespace too long (stricter)", hex: "82 a474797065 01 a36e7370 da0201" + strings.Repeat("61", 513), want: "namespace longer"},
	{name: "connect with null", hex: mpPacketHex(0, "c0"), want: "invalid payload"},
	{name: "connect with an array", hex: mpPacketHex(0, "90"), want: "invalid payload"},
	{name: "connect with a string", hex: mpPacketHex(0, "a161"), want: "invalid payload"},
	{name: "connect with bin", hex: mpPacketHex(0, "c400"), want: "invalid payload"},
	{name: "disconnect with data", hex: mpPacketHex(1, "c0"), want: "invalid payload"},
	{name: "event without data", hex: "82 a474797065 02 a36e7370 a12f", want: "invalid payload"},
	{name: "event with undefined data", hex: mpPacketHex(2, "d40000"), want: "invalid payload"},
	{name: "event with an empty array (stricter)", hex: mpPacketHex(2, "90"), want: "invalid payload"},
	{name: "event with a map", hex: mpPacketHex(2, "81a161a162"), want: "invalid payload"},
	{name: "event named by a number (stricter)", hex: mpPacketHex(2, "9101"), want: "invalid payload"},
	{name: "event named by bin (stricter)", hex: mpPacketHex(2, "91c40161"), want: "invalid payload"},
	{name: "event named by undefined (stricter)", hex: mpPacketHex(2, "91d40000"), want: "invalid payload"},
	{name: "event named by NaN (stricter)", hex: mpPacketHex(2, "91cb7ff8000000000000"), want: "invalid payload"},
	{name: "reserved event name (stricter)", hex: mpPacketHex(2, "91aa646973636f6e6e656374"), want: "invalid payload"},
	{name: "reserved event name newListener (stricter)", hex: mpPacketHex(2, "92ab6e65774c697374656e657201"), want: "invalid payload"},
	{name: "ack with a map", hex: mpPacketHex(3, "80"), want: "invalid payload"},
	{name: "ack without data", hex: "82 a474797065 03 a36e7370 a12f", want: "invalid payload"},
	{name: "connect_error with a number", hex: mpPacketHex(4, "01"), want: "invalid payload"},
	{name: "connect_error without data", hex: "82 a474797065 04 a36e7370 a12f", want: "invalid payload"},
	{name: "negative id (stricter)", hex: "84 a474797065 03 a26964 ff a464617461 90 a36e7370 a12f", want: "packet id"},
	{name: "id as string", hex: "84 a474797065 03 a26964 a131 a464617461 90 a36e7370 a12f", want: "packet id"},
	{name: "id 1.5", hex: "84 a474797065 03 a26964 cb3ff8000000000000 a464617461 90 a36e7370 a12f", want: "packet id"},
	{name: "id nil", hex: "84 a474797065 03 a26964 c0 a464617461 90 a36e7370 a12f", want: "packet id"},
	{name: "id 2^64 (stricter)", hex: "84 a474797065 03 a26964 cb43f0000000000000 a464617461 90 a36e7370 a12f", want: "packet id"},
	{name: "integer map key (stricter)", hex: mpPacketHex(2, "92a1618101c0"), want: "map key"},
	{name: "integer key of the packet", hex: "82 01 01 a36e7370 a12f", want: "map key"},
	{name: "nested 65 deep (stricter)", hex: mpDeepHex(65), want: "nested deeper than 64"},
	{name: "nested 10000 deep", hex: mpDeepHex(10000), want: "nested deeper than 64"},
	{name: "nested 65 deep in another member (stricter)", hex: "83 a474797065 01 a36e7370 a12f a178" + strings.Repeat("91", 64) + "c0", want: "nested deeper than 64"},
	{name: "huge array", hex: mpPacketHex(2, "ddffffffff"), want: "exceeds the message"},
	{name: "huge map", hex: mpPacketHex(2, "92a161dfffffffff"), want: "exceeds the message"},
	{name: "huge array16", hex: mpPacketHex(2, "dcffff"), want: "exceeds the message"},
	{name: "huge string", hex: mpPacketHex(2, "92a161dbffffffff41"), want: "exceeds the message"},
	{name: "huge bin", hex: mpPacketHex(2, "92a161c6ffffffff00"), want: "exceeds the message"},
	{name: "huge ext", hex: mpPacketHex(2, "92a161c9ffffffff00"), want: "exceeds the message"},
	{name: "huge packet map", hex: "dfffffffff", want: "exceeds the message"},
	{name: "truncated fixstr", hex: mpPacketHex(2, "92a161a5616263"), want: "truncated"},
	{name: "truncated float", hex: mpPacketHex(2, "92a161cb3ff8"), want: "truncated"},
	{name: "fixarray longer than the message", hex: mpPacketHex(2, "9fa161"), want: "truncated"},
	{name: "extension type 5 (stricter)", hex: mpPacketHex(2, "92a161d40501"), want: "extension type 5"},
	{name: "timestamp extension (stricter)", hex: mpPacketHex(2, "92a161d6ff00000000"), want: "extension type -1"},
	{name: "fixext 2 of type 0 (stricter)", hex: mpPacketHex(2, "92a161d5000000"), want: "extension type 0"},
}

func TestMsgpackDecoderRejects(t *testing.T) {
	for _, tc := range mpRejectCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := mpDecode(tc.message(t))
			if err == nil {
				t.Fatalf("decoded %s", fmtPacket(p))
			}
			if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one wrapping ErrInvalidPacket and mentioning %q", err, tc.want)
			}
		})
	}

	t.Run("nested 64 deep is accepted", func(t *testing.T) {
		if p, err := mpDecode(bin(mpHex(t, mpDeepHex(64)))); err != nil {
			t.Fatalf("%v (%s)", err, fmtPacket(p))
		}
	})

	t.Run("every truncation of a valid packet", func(t *testing.T) {
		msg := mpEncode(t, &Packet{Type: Event, Nsp: "/", ID: 70000, HasID: true, Data: json.RawMessage(
			`["e",{"a":[1,-1,1.5,"` + strings.Repeat("x", 300) + `",null,true],"b":` + mk(make([]byte, 300)...) + `}]`)})
		for n := range len(msg) {
			if p, err := mpDecode(bin(msg[:n])); err == nil {
				t.Fatalf("%d of %d bytes decoded as %s", n, len(msg), fmtPacket(p))
			}
		}
		if _, err := mpDecode(bin(msg)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestMsgpackDecodeJSON: what the transcoder writes for what notepack.io
// decodes (TestMsgpackMatchesNode compares the same with Node).
func TestMsgpackDecodeJSON(t *testing.T) {
	for _, tc := range mpJSONCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := mpDecode(bin(mpHex(t, mpEventHex(tc.hex))))
			if err != nil {
				t.Fatal(err)
			}
			if want := `["e",` + tc.want + `]`; string(p.Data) != want {
				t.Fatalf("data %s\nwant %s", p.Data, want)
			}
		})
	}
}

// mpEventHex wraps the hex of one value as the argument of an EVENT "e".
func mpEventHex(v string) string { return "83 a474797065 02 a36e7370 a12f a464617461 92 a165" + v }

var mpJSONCases = []struct {
	name, hex, want string // want: the argument's JSON
}{
	{"duplicate key: first position, last value", "83 a161 01 a162 02 a161 03", `{"a":3,"b":2}`},
	{"undefined member then a value", "83 a161 d40000 a162 02 a161 03", `{"a":3,"b":2}`},
	{"value then undefined", "82 a161 01 a161 d40000", `{}`},
	{"array indexes first, in numeric order", "85 a162 01 a131 02 a130 03 a23031 04 aa34323934393637323935 05",
		`{"0":3,"1":2,"b":1,"01":4,"4294967295":5}`},
	{"largest array index", "82 a162 01 aa34323934393637323934 02", `{"4294967294":2,"b":1}`},
	{"__proto__ is kept", "81 a95f5f70726f746f5f5f 01", `{"__proto__":1}`},
	{"undefined in an array", "93 d40000 01 d40000", `[null,1,null]`},
	{"escapes", "aa 220a5c01e280a83c1f7f", `"\"\n\\\u0001` + "\u2028" + `<\u001f` + "\x7f" + `"`},
	{"invalid UTF-8 as TextDecoder replaces it", "a7 61e28241f09f98", `"a` + "\uFFFD" + `A` + "\uFFFD" + `"`},
	{"surrogates are invalid UTF-8", "a4 eda08062", `"` + "\uFFFD\uFFFD\uFFFD" + `b"`},
	{"invalid key", "81 a1ff 01", `{"` + "\uFFFD" + `":1}`},
	{"float64 integral", "cb4000000000000000", `2`},
	{"float64 -0", "cb8000000000000000", `0`},
	{"float64 1e21", "cb444b1ae4d6e2ef50", `1e+21`},
	{"float64 1e20", "cb4415af1d78b58c40", `100000000000000000000`},
	{"float64 1e-7", "cb3e7ad7f29abcaf48", `1e-7`},
	{"float64 0.000001", "cb3eb0c6f7a0b5ed8d", `0.000001`},
	{"float64 0.1", "cb3fb999999999999a", `0.1`},
	{"float32 0.1", "ca3dcccccd", `0.10000000149011612`},
	{"float64 -1.5e300", "cbfe41eb2d66005835", `-1.5e+300`},
	{"float64 5e-324", "cb0000000000000001", `5e-324`},
	{"uint64 max", "cfffffffffffffffff", `18446744073709551615`},
	{"int64 min", "d38000000000000000", `-9223372036854775808`},
	{"ArrayBuffer extension", "c70300010203", mk(1, 2, 3)},
	{"Date before the epoch", "d700fffffffffffffc18", `"1969-12-31T23:59:59.000Z"`},
	{"map in a map", "81 a161 81 a162 90", `{"a":{"b":[]}}`},
}

// TestMsgpackRoundTrip encodes a packet of every type and decodes it again.
func TestMsgpackRoundTrip(t *testing.T) {
	fileArg := `{"name":"f","data":` + mk(1, 2, 3) + `,"parts":[` + mk() + `],"n":1.25,"big":-9007199254740993}`
	cases := []struct {
		name string
		in   *Packet
		want *Packet
	}{
		{"connect", &Packet{Type: Connect, Nsp: "/", Data: json.RawMessage(`{"sid":"s1","pid":"p1"}`)},
			&Packet{Type: Connect, Nsp: "/", Data: json.RawMessage(`{"sid":"s1","pid":"p1"}`)}},
		{"connect without data", &Packet{Type: Connect, Nsp: "/admin"},
			&Packet{Type: Connect, Nsp: "/admin"}},
		{"disconnect", &Packet{Type: Disconnect, Nsp: "/"},
			&Packet{Type: Disconnect, Nsp: "/"}},
		{"event", &Packet{Type: Event, Nsp: "/", Data: json.RawMessage(`["job_progress",{"jobId":"j","progress":40}]`)},
			&Packet{Type: Event, Nsp: "/", Data: json.RawMessage(`["job_progress",{"jobId":"j","progress":40}]`)}},
		{"event with ack and binary data", &Packet{Type: Event, Nsp: "/", ID: 12, HasID: true, Data: json.RawMessage(`["file",` + fileArg + `,` + mk() + `]`)},
			&Packet{Type: Event, Nsp: "/", ID: 12, HasID: true, Data: json.RawMessage(`["file",` + fileArg + `,` + mk() + `]`)}},
		{"event in white space, numbers written otherwise", &Packet{Type: Event, Nsp: "/", Data: json.RawMessage(` [ "e" , 1.0, 1E2, -0, 1e21, 0.0000001, "\u00e9\/" ] `)},
			&Packet{Type: Event, Nsp: "/", Data: json.RawMessage(`["e",1,100,0,1e+21,1e-7,"é/"]`)}},
		{"binary event", &Packet{Type: BinaryEvent, Nsp: "/", Data: json.RawMessage(`["e",` + mk(7) + `]`)},
			&Packet{Type: Event, Nsp: "/", Data: json.RawMessage(`["e",` + mk(7) + `]`)}},
		{"ack", &Packet{Type: Ack, Nsp: "/", ID: math.MaxUint64, HasID: true, Data: json.RawMessage(`[]`)},
			&Packet{Type: Ack, Nsp: "/", ID: math.MaxUint64, HasID: true, Data: json.RawMessage(`[]`)}},
		{"binary ack", &Packet{Type: BinaryAck, Nsp: "/", ID: 1, HasID: true, Data: json.RawMessage(`[` + mk(1) + `,null]`)},
			&Packet{Type: Ack, Nsp: "/", ID: 1, HasID: true, Data: json.RawMessage(`[` + mk(1) + `,null]`)}},
		{"connect_error with a string", &Packet{Type: ConnectError, Nsp: "/", Data: json.RawMessage(`"Invalid namespace"`)},
			&Packet{Type: ConnectError, Nsp: "/", Data: json.RawMessage(`"Invalid namespace"`)}},
		{"connect_error with an object", &Packet{Type: ConnectError, Nsp: "/", Data: json.RawMessage(`{"message":"unauthorized","data":{"code":"token_expired"}}`)},
			&Packet{Type: ConnectError, Nsp: "/", Data: json.RawMessage(`{"message":"unauthorized","data":{"code":"token_expired"}}`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mpDecode(bin(mpEncode(t, tc.in)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip %s\nwant       %s", fmtPacket(got), fmtPacket(tc.want))
			}
		})
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

// jsonKind returns the kind of the JSON text js as msgpackDataValid
// wants it, loosely: an events.Bytes marker counts as a map.
func jsonKind(js []byte) mpKind {
	if js == nil {
		return mpUndefined
	}
	switch js[0] {
	case '{':
		return mpMap
	case '[':
		return mpArray
	case '"':
		return mpString
	case 'n':
		return mpNull
	case 't', 'f':
		return mpBool
	}
	return mpNumber
}

// FuzzMsgpackDecoder: no input makes the decoder panic; what it accepts is
// a valid packet that survives encoding and decoding again unchanged.
// Input that is JSON also goes through the encoder as an event argument
// and must come back as the same value. The seeds in
// testdata/fuzz/FuzzMsgpackDecoder include socket.io-msgpack-parser's own
// output (node_*).
func FuzzMsgpackDecoder(f *testing.F) {
	f.Add([]byte(`{"a":[1,2.5,-3,"x",null,true],"b":{"_placeholder":true,"bin":"AQI="}}`))
	f.Add([]byte("\x83\xa4type\x02\xa3nsp\xa1/\xa4data\x92\xa1e\x83\xa1b\x01\xa10\x02\xa1b\xd4\x00\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		p, err := mpDecode(bin(msg))
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not wrap ErrInvalidPacket", err)
			}
		} else {
			if !msgpackDataValid(p.Type, jsonKind(p.Data), p.Data) || p.Data != nil && !json.Valid(p.Data) {
				t.Fatalf("accepted an invalid packet %s", fmtPacket(p))
			}
			q, err := mpDecode(bin(mpEncode(t, p)))
			if err != nil {
				t.Fatalf("%s does not decode after encoding: %v", fmtPacket(p), err)
			}
			wantNsp := p.Nsp
			if wantNsp == "" {
				wantNsp = "/"
			}
			if !bytes.Equal(p.Data, q.Data) || p.Type != q.Type || q.Nsp != wantNsp || p.HasID != q.HasID || p.ID != q.ID {
				t.Fatalf("round trip changed %s into %s", fmtPacket(p), fmtPacket(q))
			}
		}

		if !json.Valid(msg) {
			return
		}
		var want any
		if json.Unmarshal(msg, &want) != nil {
			return // a number out of float64's range
		}
		msgs, err := Msgpack().Encode(&Packet{Type: Event, Nsp: "/", Data: json.RawMessage(`["e",` + string(msg) + `]`)})
		if err != nil {
			if strings.Contains(err.Error(), "too deep") {
				return
			}
			t.Fatalf("JSON %q not encoded: %v", msg, err)
		}
		q, err := mpDecode(msgs[0])
		if err != nil {
			if strings.Contains(err.Error(), "nested deeper") {
				return
			}
			t.Fatalf("JSON %q: encoded, then %v", msg, err)
		}
		args, err := SplitArray(q.Data)
		if err != nil || len(args) != 2 {
			t.Fatalf("decoded %s: %v", q.Data, err)
		}
		var got any
		if err := json.Unmarshal(args[1], &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("JSON %s came back as %s", msg, args[1])
		}
	})
}
