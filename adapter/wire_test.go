package adapter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/herald-rt/herald/events"
)

// payloads are JSON values as encoding/json writes them; each must survive
// JSON -> MessagePack -> JSON byte for byte.
var payloads = []string{
	`{"jobId":"j1","progress":42,"message":"halfway","timestamp":"2026-11-22T01:02:03.456Z"}`,
	`{"z":1,"a":2,"m":{"y":[1,2,{"x":null}],"b":true,"c":false}}`,
	`{"html":"\u003cb\u003e\u0026\"quoted\"\\","ctl":"\n\t\r\u0000\u001f","uni":"héllo 世界 🎉","ls":"\u2028\u2029"}`,
	`{"f":0.5,"g":-1.25,"h":1e+21,"i":1e-7,"j":123456.789,"k":0.000001,"l":-0}`,
	`{"big":9223372036854775807,"neg":-9223372036854775808,"u":18446744073709551615}`,
	`[]`, `{}`, `"s"`, `0`, `-1`, `true`, `null`, `[[[[]]]]`,
	`{"b":{"_placeholder":true,"bin":"AAH/"},"e":{"_placeholder":true,"bin":""}}`,
	`{"long":"` + strings.Repeat("x", 70000) + `"}`,
	`[` + strings.Repeat(`1,`, 70000) + `1]`,
}

func TestJSONMsgpackRoundTrip(t *testing.T) {
	for _, p := range payloads {
		mp, err := jsonToMsgpack(nil, []byte(p))
		if err != nil {
			t.Fatalf("jsonToMsgpack(%.60s): %v", p, err)
		}
		// An independent decoder must read the same value.
		var viaLib any
		if err := msgpack.Unmarshal(mp, &viaLib); err != nil {
			t.Fatalf("msgpack library cannot read our encoding of %.60s: %v", p, err)
		}
		r := mpReader{b: mp}
		back, err := r.toJSON(nil, 0)
		if err != nil {
			t.Fatalf("toJSON(%.60s): %v", p, err)
		}
		if r.pos != len(mp) {
			t.Fatalf("toJSON left %d bytes", len(mp)-r.pos)
		}
		if !bytes.Equal(back, []byte(p)) {
			t.Errorf("round trip changed the JSON:\n got %.200s\nwant %.200s", back, p)
		}
	}
}

// TestStructPayloadIdentical is the property herald promises: a struct
// encoded by encoding/json is delivered to remote nodes as the same bytes
// (json tags respected, field order kept).
func TestStructPayloadIdentical(t *testing.T) {
	type payload struct {
		JobID    string         `json:"jobId"`
		Progress float64        `json:"progress"`
		Note     string         `json:"note,omitempty"`
		Extra    map[string]any `json:"extra"`
		At       time.Time      `json:"timestamp"`
	}
	for _, v := range []payload{
		{JobID: "a<b>&c", Progress: 33.333333333333336, Extra: map[string]any{"n": 1, "list": []any{1.5, "x", nil}}},
		{JobID: "é", Progress: 1e21, Note: "line\nbreak", At: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)},
		{Progress: math.SmallestNonzeroFloat64, Extra: map[string]any{}},
	} {
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		m := Message{Rooms: []string{"user:1"}, Event: "job_progress", Args: []json.RawMessage{js}}
		wire, err := encodeClassic("node-a", m)
		if err != nil {
			t.Fatal(err)
		}
		uid, got, ok, err := decodeClassic(wire)
		if err != nil || !ok || uid != "node-a" {
			t.Fatalf("decodeClassic = %q, ok %v, %v", uid, ok, err)
		}
		if string(got.Args[0]) != string(js) {
			t.Errorf("classic: remote JSON differs:\n got %s\nwant %s", got.Args[0], js)
		}
		wire, err = encodeSharded("node-a", m)
		if err != nil {
			t.Fatal(err)
		}
		_, got, ok, err = decodeSharded(wire)
		if err != nil || !ok {
			t.Fatalf("decodeSharded: ok %v, %v", ok, err)
		}
		if string(got.Args[0]) != string(js) {
			t.Errorf("sharded: remote JSON differs:\n got %s\nwant %s", got.Args[0], js)
		}
	}
}

func TestClassicEnvelope(t *testing.T) {
	m := Message{Rooms: []string{"a", "b"}, Except: []string{"c"}, Event: "ev", Args: []json.RawMessage{[]byte(`{"k":1}`), []byte(`2`)}}
	wire, err := encodeClassic("uid1", m)
	if err != nil {
		t.Fatal(err)
	}
	// The layout Node's adapter destructures: [uid, packet, opts].
	var arr []any
	if err := msgpack.Unmarshal(wire, &arr); err != nil {
		t.Fatal(err)
	}
	want := []any{"uid1",
		map[string]any{"type": int8(2), "data": []any{"ev", map[string]any{"k": int8(1)}, int8(2)}, "nsp": "/"},
		map[string]any{"rooms": []any{"a", "b"}, "except": []any{"c"}, "flags": map[string]any{}},
	}
	if !reflect.DeepEqual(arr, want) {
		t.Fatalf("envelope = %#v\nwant %#v", arr, want)
	}
	uid, got, ok, err := decodeClassic(wire)
	if err != nil || !ok || uid != "uid1" {
		t.Fatalf("decode: %q %v %v", uid, ok, err)
	}
	if !reflect.DeepEqual(got.Rooms, m.Rooms) || !reflect.DeepEqual(got.Except, m.Except) || got.Event != "ev" ||
		len(got.Args) != 2 || string(got.Args[0]) != `{"k":1}` || string(got.Args[1]) != "2" {
		t.Fatalf("decoded %+v", got)
	}
}

// TestDecodeForeign decodes messages written the way other emitters write
// them, with the msgpack library standing in for notepack.io.
func TestDecodeForeign(t *testing.T) {
	enc := func(v any) []byte {
		t.Helper()
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	packet := func(typ int, nsp string, data ...any) map[string]any {
		return map[string]any{"type": typ, "data": data, "nsp": nsp}
	}
	opts := map[string]any{"rooms": []string{"user:1"}, "except": []string{}, "flags": map[string]any{}}
	tests := []struct {
		name   string
		wire   []byte
		wantOK bool
		args   string // the args, joined by |
		err    bool
	}{
		{"emitter event", enc([]any{"emitter", packet(2, "/", "ev", map[string]any{"a": 1.5}), opts}), true, `{"a":1.5}`, false},
		{"no args", enc([]any{"emitter", packet(2, "/", "ev"), opts}), true, ``, false},
		{"float integral", enc([]any{"e", packet(2, "/", "ev", 3.0), opts}), true, `3`, false},
		{"other namespace", enc([]any{"e", packet(2, "/admin", "ev"), opts}), true, ``, false},
		{"missing nsp means /", enc([]any{"e", map[string]any{"type": 2, "data": []any{"ev"}}, opts}), true, ``, false},
		{"connect packet", enc([]any{"e", packet(0, "/"), opts}), false, ``, false},
		{"binary event packet", enc([]any{"e", packet(5, "/", "ev", []byte{1}), opts}), false, ``, false},
		{"buffer in an event", enc([]any{"e", packet(2, "/", "ev", map[string]any{"f": []byte{1, 2}}), opts}), true, `{"f":{"_placeholder":true,"bin":"AQI="}}`, false},
		{"local flag", enc([]any{"e", packet(2, "/", "ev"), map[string]any{"rooms": []string{}, "flags": map[string]any{"local": true}}}), false, ``, false},
		{"nil packet", enc([]any{"e", nil, opts}), false, ``, false},
		{"timestamp ext", enc([]any{"e", packet(2, "/", "ev", time.UnixMilli(1700000000123).UTC()), opts}), true, `"2023-11-14T22:13:20.123Z"`, false},
		{"not an array", enc(map[string]any{"a": 1}), false, ``, true},
		{"truncated", enc([]any{"e", packet(2, "/", "ev", "hello")})[:12], false, ``, true},
		{"event not string", enc([]any{"e", packet(2, "/", 1), opts}), false, ``, true},
		{"map key not string", enc([]any{"e", packet(2, "/", "ev", map[int]int{1: 2}), opts}), false, ``, true},
		{"empty", nil, false, ``, true},
		{"huge length", []byte{0x93, 0xa1, 'e', 0xdf, 0xff, 0xff, 0xff, 0xff}, false, ``, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, m, ok, err := decodeClassic(tc.wire)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			var args []string
			for _, a := range m.Args {
				args = append(args, string(a))
			}
			if got := strings.Join(args, "|"); got != tc.args {
				t.Fatalf("args = %s, want %s", got, tc.args)
			}
		})
	}
}

func TestDecodeShardedForeign(t *testing.T) {
	tests := []struct {
		name string
		wire string
		ok   bool
		err  bool
	}{
		{"broadcast", `{"uid":"n1","nsp":"/","type":3,"data":{"opts":{"rooms":["user:1"],"except":[],"flags":{}},"packet":{"type":2,"data":["ev",{"b":1,"a":2}],"nsp":"/"}}}`, true, false},
		{"heartbeat", `{"uid":"n1","nsp":"/","type":2}`, false, false},
		{"broadcast with ack", `{"uid":"n1","nsp":"/","type":3,"data":{"opts":{"rooms":[],"except":[]},"packet":{"type":2,"data":["ev"],"nsp":"/"},"requestId":"r"}}`, false, false},
		{"other nsp", `{"uid":"n1","nsp":"/x","type":3,"data":{}}`, false, false},
		{"bad json", `{"uid":`, false, true},
		{"event not string", `{"uid":"n1","nsp":"/","type":3,"data":{"opts":{},"packet":{"type":2,"data":[1],"nsp":"/"}}}`, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, m, ok, err := decodeSharded([]byte(tc.wire))
			if (err != nil) != tc.err || ok != tc.ok {
				t.Fatalf("ok %v err %v; want ok %v err %v", ok, err, tc.ok, tc.err)
			}
			if ok && (m.Event != "ev" || string(m.Args[0]) != `{"b":1,"a":2}` || m.Rooms[0] != "user:1") {
				t.Fatalf("decoded %+v", m)
			}
		})
	}
}

func TestJSONToMsgpackRejectsBadJSON(t *testing.T) {
	for _, bad := range []string{``, `{`, `[1,]`, `{"a" 1}`, `01`, `1.`, `-`, `"\x01"`, `tru`, `1 2`, `{"a":1}}`, `"unterminated`, `1e999`,
		strings.Repeat("[", maxDepth+2) + strings.Repeat("]", maxDepth+2)} {
		if _, err := jsonToMsgpack(nil, []byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("jsonToMsgpack(%.40q) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestChannels(t *testing.T) {
	base := "socket.io#/#"
	if got := channelFor(base, []string{"user:1"}); got != "socket.io#/#user:1#" {
		t.Errorf("single room channel = %q", got)
	}
	if got := channelFor(base, []string{"a", "b"}); got != base {
		t.Errorf("multi room channel = %q", got)
	}
	for ch, want := range map[string]string{"socket.io#/#": "", "socket.io#/#user:1#": "user:1", "socket.io#/#a#b#": "a#b"} {
		if room, ok := roomOfChannel(base, ch); !ok || room != want {
			t.Errorf("roomOfChannel(%q) = %q, %v", ch, room, ok)
		}
	}
	for _, ch := range []string{"other#/#", "socket.io#/#x"} {
		if _, ok := roomOfChannel(base, ch); ok {
			t.Errorf("roomOfChannel(%q) accepted", ch)
		}
	}
}

func FuzzDecodeClassic(f *testing.F) {
	for _, p := range payloads[:5] {
		w, _ := encodeClassic("uid", Message{Rooms: []string{"user:1"}, Event: "e", Args: []json.RawMessage{[]byte(p)}})
		f.Add(w)
	}
	f.Add([]byte{0x93, 0xa1, 'e', 0xc0, 0xc0})
	f.Fuzz(func(t *testing.T, wire []byte) {
		uid, m, ok, err := decodeClassic(wire)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
		// The shortcut for a node's own messages agrees with the decoder.
		if uid != "" && !classicFrom(string(wire), uid) {
			t.Fatalf("decoded uid %q, classicFrom disagrees", uid)
		}
		if classicFrom(string(wire), uid+"x") {
			t.Fatalf("classicFrom matched %q, decoded uid %q", uid+"x", uid)
		}
		if !ok {
			return
		}
		for _, a := range m.Args {
			if !json.Valid(a) {
				t.Fatalf("decoded arg is not JSON: %q", a)
			}
		}
		// What we decode, we can publish again, and it decodes the same.
		again, err := encodeClassic("uid", m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		_, m2, ok2, err := decodeClassic(again)
		if err != nil || !ok2 || m.Event != m2.Event || len(m.Args) != len(m2.Args) {
			t.Fatalf("re-decode differs: %+v vs %+v (%v)", m, m2, err)
		}
		for i := range m.Args {
			var a, b any
			if json.Unmarshal(m.Args[i], &a) != nil || json.Unmarshal(m2.Args[i], &b) != nil || !reflect.DeepEqual(a, b) {
				t.Fatalf("arg %d changed: %s -> %s", i, m.Args[i], m2.Args[i])
			}
		}
	})
}

func FuzzDecodeSharded(f *testing.F) {
	w, _ := encodeSharded("uid", Message{Rooms: []string{"user:1"}, Event: "e", Args: []json.RawMessage{[]byte(payloads[0])}})
	f.Add(w)
	f.Add([]byte(`{"uid":"n1","nsp":"/","type":2}`))
	f.Add([]byte{0x84, 0xa3, 'u', 'i', 'd', 0xa1, 'x'})
	f.Fuzz(func(t *testing.T, wire []byte) {
		_, m, ok, err := decodeSharded(wire)
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
		if ok {
			for _, a := range m.Args {
				if !json.Valid(a) {
					t.Fatalf("decoded arg is not JSON: %q", a)
				}
			}
		}
	})
}

func FuzzDecodeStreamEntry(f *testing.F) {
	data, _ := encodeStreamData(Message{Rooms: []string{"user:1"}, Event: "e", Args: []json.RawMessage{[]byte(payloads[0])}})
	f.Add("3", "/", data)
	f.Add("2", "/", "")
	f.Add("3", "/", "gqZwYWNrZXSDpHR5cGUCpGRhdGGRoWWjbnNwoS+kb3B0c4A=")
	f.Fuzz(func(t *testing.T, typ, nsp, data string) {
		_, m, ok, err := decodeStreamEntry(map[string]any{"uid": "u", "type": typ, "nsp": nsp, "data": data})
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
		if ok {
			for _, a := range m.Args {
				if !json.Valid(a) {
					t.Fatalf("decoded arg is not JSON: %q", a)
				}
			}
		}
	})
}

func FuzzDecodeSession(f *testing.F) {
	f.Add(encodeSession(Session{SocketID: "sid", PID: "pid", Rooms: []string{"sid", "user:1"}}))
	f.Add("")
	f.Add("gA==")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := decodeSession(v)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := decodeSession(encodeSession(s))
		if err != nil || again.SocketID != s.SocketID || again.PID != s.PID || !reflect.DeepEqual(nonNil(again.Rooms), nonNil(s.Rooms)) {
			t.Fatalf("round trip %+v -> %+v (%v)", s, again, err)
		}
	})
}

func TestStreamEntryAndSession(t *testing.T) {
	m := Message{Rooms: []string{"user:1"}, Except: []string{"user:2"}, Event: "job_progress", Args: []json.RawMessage{[]byte(`{"b":1,"a":"\u003c"}`)}}
	data, err := encodeStreamData(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"packet":{"type":2,"data":["job_progress",{"b":1,"a":"\u003c"}]},"opts":{"rooms":["user:1"],"except":["user:2"],"flags":{}}}`
	if data != want {
		t.Fatalf("stream data = %s\nwant %s", data, want)
	}
	uid, got, ok, err := decodeStreamEntry(map[string]any{"uid": "n1", "nsp": "/", "type": "3", "data": data})
	if err != nil || !ok || uid != "n1" || string(got.Args[0]) != string(m.Args[0]) || got.Rooms[0] != "user:1" || got.Except[0] != "user:2" {
		t.Fatalf("decode = %q %+v %v %v", uid, got, ok, err)
	}
	if _, _, ok, err := decodeStreamEntry(map[string]any{"uid": "n1", "nsp": "/", "type": "2"}); ok || err != nil {
		t.Errorf("heartbeat: decodeStreamEntry = %v, %v; want skipped", ok, err)
	}
	if _, got, ok, err := decodeStreamEntry(map[string]any{"uid": "n1", "nsp": "/admin", "type": "3", "data": data}); !ok || err != nil || got.Namespace != "/admin" {
		t.Errorf("other namespace: decodeStreamEntry = %+v, %v, %v", got, ok, err)
	}
	if _, _, _, err := decodeStreamEntry(map[string]any{"type": "3", "data": "!!"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad data: %v", err)
	}
	s := Session{SocketID: "sid", PID: "pid", Rooms: []string{"sid", "user:1"}}
	// data is an empty map, as Node stores it for a socket without data: a
	// Node server restoring the session sets socket.data to it.
	var asNode map[string]any
	raw, _ := base64.StdEncoding.DecodeString(encodeSession(s))
	if err := msgpack.Unmarshal(raw, &asNode); err != nil {
		t.Fatal(err)
	}
	if d, ok := asNode["data"].(map[string]any); !ok || len(d) != 0 {
		t.Errorf("session data = %#v, want an empty map", asNode["data"])
	}
	back, err := decodeSession(encodeSession(s))
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("session round trip = %+v, %v", back, err)
	}
	for _, bad := range []string{"", "!!", "gA==", encodeSession(Session{PID: "p"})} {
		if _, err := decodeSession(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("decodeSession(%q) = %v", bad, err)
		}
	}
}

// TestBinaryWire checks that binary data (events.Bytes) crosses every wire
// format as MessagePack bin, as Node's adapters write Buffers, and comes
// back as the same JSON.
func TestBinaryWire(t *testing.T) {
	big := make([]byte, 70000)
	for i := range big {
		big[i] = byte(i)
	}
	type file struct {
		Name  string         `json:"name"`
		Data  events.Bytes   `json:"data"`
		Parts []events.Bytes `json:"parts"`
	}
	arg, err := json.Marshal(file{Name: "a", Data: events.Bytes{0, 1, 255}, Parts: []events.Bytes{{}, big, nil}})
	if err != nil {
		t.Fatal(err)
	}
	m := Message{Rooms: []string{"user:1"}, Event: "ev", Args: []json.RawMessage{arg, json.RawMessage(`"text"`)}}
	check := func(t *testing.T, got Message, ok bool, err error) {
		t.Helper()
		if err != nil || !ok {
			t.Fatalf("decode: ok=%v err=%v", ok, err)
		}
		if len(got.Args) != 2 || !bytes.Equal(got.Args[0], arg) || string(got.Args[1]) != `"text"` {
			t.Fatalf("args changed:\n got %.200s\nwant %.200s", got.Args, arg)
		}
	}
	t.Run("classic", func(t *testing.T) {
		wire, err := encodeClassic("u", m)
		if err != nil {
			t.Fatal(err)
		}
		var viaLib []any
		if err := msgpack.Unmarshal(wire, &viaLib); err != nil {
			t.Fatal(err)
		}
		data := viaLib[1].(map[string]any)["data"].([]any)[1].(map[string]any)["data"]
		if b, ok := data.([]byte); !ok || !bytes.Equal(b, []byte{0, 1, 255}) {
			t.Fatalf("data on the wire is %#v, want bin", data)
		}
		_, got, ok, err := decodeClassic(wire)
		check(t, got, ok, err)
	})
	t.Run("sharded", func(t *testing.T) {
		wire, err := encodeSharded("u", m)
		if err != nil {
			t.Fatal(err)
		}
		if wire[0] == '{' {
			t.Fatalf("binary message sent as JSON")
		}
		_, got, ok, err := decodeSharded(wire)
		check(t, got, ok, err)
	})
	t.Run("streams", func(t *testing.T) {
		data, err := encodeStreamData(m)
		if err != nil {
			t.Fatal(err)
		}
		_, got, ok, err := decodeStreamEntry(map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": data})
		check(t, got, ok, err)
	})
}

// TestNamespaceWire: a message to another namespace than "/" keeps its
// namespace in every wire format, and "/" is written as Node writes it.
func TestNamespaceWire(t *testing.T) {
	for _, nsp := range []string{"", "/admin"} {
		for _, args := range [][]json.RawMessage{{json.RawMessage(`{"a":1}`)}, {json.RawMessage(`{"b":{"_placeholder":true,"bin":"AQ=="}}`)}} {
			m := Message{Namespace: nsp, Rooms: []string{"user:1"}, Event: "ev", Args: args}
			want := nsp
			classic, err := encodeClassic("u", m)
			if err != nil {
				t.Fatal(err)
			}
			var viaLib []any
			if err := msgpack.Unmarshal(classic, &viaLib); err != nil {
				t.Fatal(err)
			}
			if w := viaLib[1].(map[string]any)["nsp"]; w != wireNamespace(m) || (nsp == "" && w != "/") {
				t.Fatalf("classic nsp on the wire = %v", w)
			}
			sharded, err := encodeSharded("u", m)
			if err != nil {
				t.Fatal(err)
			}
			stream, err := encodeStreamData(m)
			if err != nil {
				t.Fatal(err)
			}
			decoded := map[string]func() (Message, bool, error){
				"classic": func() (Message, bool, error) { _, got, ok, err := decodeClassic(classic); return got, ok, err },
				"sharded": func() (Message, bool, error) { _, got, ok, err := decodeSharded(sharded); return got, ok, err },
				"streams": func() (Message, bool, error) {
					_, got, ok, err := decodeStreamEntry(map[string]any{"uid": "u", "nsp": wireNamespace(m), "type": "3", "data": stream})
					return got, ok, err
				},
			}
			for format, decode := range decoded {
				got, ok, err := decode()
				if err != nil || !ok || got.Namespace != want || !bytes.Equal(got.Args[0], args[0]) {
					t.Errorf("%s, namespace %q: decoded %+v, %v, %v", format, nsp, got, ok, err)
				}
			}
		}
	}
}

// TestDisconnectWire: a disconnect request crosses every wire format as
// Node's disconnectSockets request, and Node's requests decode.
func TestDisconnectWire(t *testing.T) {
	m := Message{Namespace: "/admin", Rooms: []string{"user:1"}, Except: []string{"x"}, Disconnect: true, Reason: "revoked"}
	check := func(t *testing.T, got Message, ok bool, err error) {
		t.Helper()
		if err != nil || !ok || !reflect.DeepEqual(got, m) {
			t.Fatalf("decoded %+v, %v, %v; want %+v", got, ok, err, m)
		}
	}
	t.Run("classic request", func(t *testing.T) {
		b, err := encodeDisconnectRequest("u", m)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"uid":"u","type":4,"opts":{"rooms":["user:1"],"except":["x"]},"close":false,"reason":"revoked"}`; string(b) != want {
			t.Fatalf("request = %s\nwant %s", b, want)
		}
		_, got, ok, err := decodeRequest(b, "/admin")
		check(t, got, ok, err)
	})
	t.Run("sharded", func(t *testing.T) {
		b, err := encodeSharded("u", m)
		if err != nil {
			t.Fatal(err)
		}
		_, got, ok, err := decodeSharded(b)
		check(t, got, ok, err)
	})
	t.Run("streams", func(t *testing.T) {
		data, err := encodeStreamData(m)
		if err != nil {
			t.Fatal(err)
		}
		_, got, ok, err := decodeStreamEntry(map[string]any{"uid": "u", "nsp": "/admin", "type": streamType(m), "data": data})
		check(t, got, ok, err)
	})
	for _, tc := range []struct {
		name, wire string
		ok, err    bool
	}{
		{"Node's emitter", `{"type":4,"opts":{"rooms":["user:1"],"except":[]},"close":true}`, true, false},
		{"one socket by id", `{"uid":"n","type":4,"sid":"abc","close":false}`, false, false},
		{"fetchSockets", `{"uid":"n","type":2,"requestId":"r","opts":{"rooms":[],"except":[]}}`, false, false},
		{"not JSON", `\x93\xa1e`, false, true},
		{"rooms not strings", `{"type":4,"opts":{"rooms":[1]}}`, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, got, ok, err := decodeRequest([]byte(tc.wire), "/")
			if ok != tc.ok || (err != nil) != tc.err || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Fatalf("decodeRequest = %+v, %v, %v", got, ok, err)
			}
			if ok && (!got.Disconnect || got.Rooms[0] != "user:1" || !got.Close) {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
}

// FuzzDecodeRequest: no input makes the request decoder panic, errors wrap
// ErrMalformed, and an accepted request is a disconnect of rooms.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"uid":"u","type":4,"opts":{"rooms":["user:1"],"except":["x"]},"close":false,"reason":"r"}`,
		`{"uid":"n","type":4,"sid":"abc"}`, `{"type":2}`, `[]`, `{"type":4,"opts":null}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, m, ok, err := decodeRequest(b, "/")
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		if ok && (!m.Disconnect || m.Event != "" || len(m.Args) != 0) {
			t.Fatalf("accepted %+v", m)
		}
	})
}
