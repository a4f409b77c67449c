package parser_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

func marker(b ...byte) string { return string(events.AppendBytesJSON(nil, b)) }

func text(s string) parser.Message { return parser.Message{Data: []byte(s)} }

func bin(b ...byte) parser.Message {
	if b == nil {
		b = []byte{}
	}
	return parser.Message{Data: b, Binary: true}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func fmtPacket(p *parser.Packet) string {
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
	if len(p.Data) > 300 {
		return s + fmt.Sprintf(" data=%.300s... (%d bytes)", p.Data, len(p.Data))
	}
	return s + " data=" + string(p.Data)
}

func fmtMessages(ms []parser.Message) string {
	var b strings.Builder
	for i, m := range ms {
		if i > 0 {
			b.WriteString(", ")
		}
		if m.Binary {
			fmt.Fprintf(&b, "bin[% x]", m.Data)
		} else {
			fmt.Fprintf(&b, "%q", m.Data)
		}
	}
	return "[" + b.String() + "]"
}

// decodeAll feeds msgs to a new decoder of p and returns the packets it
// completed, or the first error.
func decodeAll(p parser.Parser, msgs ...parser.Message) ([]*parser.Packet, error) {
	d := p.NewDecoder()
	var out []*parser.Packet
	for i, m := range msgs {
		pk, err := d.Add(m)
		if err != nil {
			if pk != nil {
				return nil, fmt.Errorf("message %d: a packet returned with the error %w", i, err)
			}
			return out, err
		}
		if pk != nil {
			out = append(out, pk)
		}
	}
	return out, nil
}

type encodeCase struct {
	name string
	p    *parser.Packet
	want []parser.Message
}

var defaultEncodeCases = []encodeCase{
	// The examples of the Socket.IO v5 protocol (without the Engine.IO
	// message type "4" in front of each text message).
	{"connect", &parser.Packet{Type: parser.Connect, Nsp: "/"}, []parser.Message{text("0")}},
	{"connect with auth", &parser.Packet{Type: parser.Connect, Nsp: "/admin", Data: raw(`{"token":"x"}`)},
		[]parser.Message{text(`0/admin,{"token":"x"}`)}},
	{"connect accepted", &parser.Packet{Type: parser.Connect, Nsp: "/", Data: raw(`{"sid":"oSO0OpakMV_3jnilAAAA","pid":"pid1"}`)},
		[]parser.Message{text(`0{"sid":"oSO0OpakMV_3jnilAAAA","pid":"pid1"}`)}},
	{"disconnect", &parser.Packet{Type: parser.Disconnect, Nsp: "/admin"}, []parser.Message{text("1/admin,")}},
	{"event", &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["hello",1]`)}, []parser.Message{text(`2["hello",1]`)}},
	{"event with ack", &parser.Packet{Type: parser.Event, Nsp: "/admin", ID: 456, HasID: true, Data: raw(`["project:delete",123]`)},
		[]parser.Message{text(`2/admin,456["project:delete",123]`)}},
	{"ack", &parser.Packet{Type: parser.Ack, Nsp: "/admin", ID: 456, HasID: true, Data: raw(`[]`)},
		[]parser.Message{text(`3/admin,456[]`)}},
	{"connect_error", &parser.Packet{Type: parser.ConnectError, Nsp: "/", Data: raw(`{"message":"Not authorized"}`)},
		[]parser.Message{text(`4{"message":"Not authorized"}`)}},
	{"binary event", &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["hello",` + marker(1, 2, 3) + `]`)},
		[]parser.Message{text(`51-["hello",{"_placeholder":true,"num":0}]`), bin(1, 2, 3)}},
	{"binary ack", &parser.Packet{Type: parser.Ack, Nsp: "/admin", ID: 456, HasID: true, Data: raw(`[` + marker(3, 2, 1) + `]`)},
		[]parser.Message{text(`61-/admin,456[{"_placeholder":true,"num":0}]`), bin(3, 2, 1)}},

	// herald's cases.
	{"empty namespace is the main one", &parser.Packet{Type: parser.Event, Data: raw(`["a"]`)}, []parser.Message{text(`2["a"]`)}},
	{"ack id 0", &parser.Packet{Type: parser.Event, Nsp: "/", HasID: true, Data: raw(`["a"]`)}, []parser.Message{text(`20["a"]`)}},
	{"large ack id", &parser.Packet{Type: parser.Ack, Nsp: "/", ID: 1<<64 - 1, HasID: true, Data: raw(`[]`)},
		[]parser.Message{text(`318446744073709551615[]`)}},
	{"connect_error with a string", &parser.Packet{Type: parser.ConnectError, Nsp: "/x", Data: raw(`"Invalid namespace"`)},
		[]parser.Message{text(`4/x,"Invalid namespace"`)}},
	{"BinaryEvent without markers is an Event", &parser.Packet{Type: parser.BinaryEvent, Nsp: "/", Data: raw(`["a",{"b":1}]`)},
		[]parser.Message{text(`2["a",{"b":1}]`)}},
	{"BinaryAck with a marker", &parser.Packet{Type: parser.BinaryAck, Nsp: "/", ID: 3, HasID: true, Data: raw(`[` + marker() + `]`)},
		[]parser.Message{text(`61-3[{"_placeholder":true,"num":0}]`), bin()}},
	{"markers in document order, nested, data kept as written", &parser.Packet{Type: parser.Event, Nsp: "/", ID: 1, HasID: true,
		Data: raw(" \n[\"a\", {\"x\": " + marker(1) + ", \"y\":[" + marker(2) + "," + marker(1) + "]}, \"\u00e9\\u00e9\"]\t")},
		[]parser.Message{text("53-1[\"a\", {\"x\": {\"_placeholder\":true,\"num\":0}, \"y\":[{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":2}]}, \"\u00e9\\u00e9\"]"),
			bin(1), bin(2), bin(1)}},
	{"marker text inside a string is no marker", &parser.Packet{Type: parser.Event, Nsp: "/",
		Data: raw(`["a","{\"_placeholder\":true,\"bin\":\"AQID\"}"]`)},
		[]parser.Message{text(`2["a","{\"_placeholder\":true,\"bin\":\"AQID\"}"]`)}},
	{"non-canonical marker is no marker", &parser.Packet{Type: parser.Event, Nsp: "/",
		Data: raw(`["a",{"_placeholder":true,"bin":"AQI"},{"bin":"AQID","_placeholder":true},{"_placeholder":true, "bin":"AQID"}]`)},
		[]parser.Message{text(`2["a",{"_placeholder":true,"bin":"AQI"},{"bin":"AQID","_placeholder":true},{"_placeholder":true, "bin":"AQID"}]`)}},
	{"markers outside events and acks stay", &parser.Packet{Type: parser.Connect, Nsp: "/", Data: raw(`{"k":` + marker(1) + `}`)},
		[]parser.Message{text(`0{"k":` + marker(1) + `}`)}},
	{"many attachments", &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a"` + strings.Repeat(","+marker(7), 12) + `]`)},
		append([]parser.Message{text(`512-["a"` + placeholders(12) + `]`)}, repeatMsg(bin(7), 12)...)},
}

func TestDefaultEncode(t *testing.T) {
	for _, tc := range defaultEncodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parser.Default().Encode(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Encode(%s)\n= %s\nwant %s", fmtPacket(tc.p), fmtMessages(got), fmtMessages(tc.want))
			}
		})
	}
}

func placeholders(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `,{"_placeholder":true,"num":%d}`, i)
	}
	return b.String()
}

func repeatMsg(m parser.Message, n int) []parser.Message {
	out := make([]parser.Message, n)
	for i := range out {
		out[i] = m
	}
	return out
}

func TestDefaultEncodeRejects(t *testing.T) {
	cases := []struct {
		name string
		p    *parser.Packet
	}{
		{"nil", nil},
		{"type 7", &parser.Packet{Type: 7, Nsp: "/"}},
		{"type 255", &parser.Packet{Type: 255, Nsp: "/"}},
		{"data not JSON", &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a",`)}},
		{"empty data", &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(``)}},
		{"white space data", &parser.Packet{Type: parser.Connect, Nsp: "/", Data: raw(` `)}},
		{"two values", &parser.Packet{Type: parser.Ack, Nsp: "/", Data: raw(`[] []`)}},
		{"too deep", &parser.Packet{Type: parser.Ack, Nsp: "/", Data: raw(strings.Repeat("[", 10001) + strings.Repeat("]", 10001))}},
		{"namespace without /", &parser.Packet{Type: parser.Connect, Nsp: "admin"}},
		{"namespace with a comma", &parser.Packet{Type: parser.Connect, Nsp: "/a,b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, err := parser.Default().Encode(tc.p)
			if err == nil || !errors.Is(err, parser.ErrInvalidPacket) {
				t.Fatalf("Encode = %s, %v; want an error wrapping ErrInvalidPacket", fmtMessages(msgs), err)
			}
		})
	}
	t.Run("10000 levels are fine", func(t *testing.T) {
		if _, err := parser.Default().Encode(&parser.Packet{Type: parser.Ack, Nsp: "/",
			Data: raw(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))}); err != nil {
			t.Fatal(err)
		}
	})
}

type decodeCase struct {
	name string
	msgs []parser.Message
	want *parser.Packet
}

var defaultDecodeCases = []decodeCase{
	// The examples of the Socket.IO v5 protocol.
	{"connect", []parser.Message{text("0")}, &parser.Packet{Type: parser.Connect, Nsp: "/"}},
	{"connect with auth", []parser.Message{text(`0/admin,{"token":"x"}`)},
		&parser.Packet{Type: parser.Connect, Nsp: "/admin", Data: raw(`{"token":"x"}`)}},
	{"disconnect", []parser.Message{text("1/admin,")}, &parser.Packet{Type: parser.Disconnect, Nsp: "/admin"}},
	{"event", []parser.Message{text(`2["hello",1]`)}, &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["hello",1]`)}},
	{"event with ack", []parser.Message{text(`2/admin,456["project:delete",123]`)},
		&parser.Packet{Type: parser.Event, Nsp: "/admin", ID: 456, HasID: true, Data: raw(`["project:delete",123]`)}},
	{"ack", []parser.Message{text(`3/admin,456[]`)}, &parser.Packet{Type: parser.Ack, Nsp: "/admin", ID: 456, HasID: true, Data: raw(`[]`)}},
	{"connect_error", []parser.Message{text(`4{"message":"Not authorized"}`)},
		&parser.Packet{Type: parser.ConnectError, Nsp: "/", Data: raw(`{"message":"Not authorized"}`)}},
	{"binary event", []parser.Message{text(`51-["hello",{"_placeholder":true,"num":0}]`), bin(1, 2, 3)},
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["hello",` + marker(1, 2, 3) + `]`)}},
	{"binary ack", []parser.Message{text(`61-/admin,456[{"_placeholder":true,"num":0}]`), bin(3, 2, 1)},
		&parser.Packet{Type: parser.Ack, Nsp: "/admin", ID: 456, HasID: true, Data: raw(`[` + marker(3, 2, 1) + `]`)}},

	// Node's decoder reads these the same way.
	{"namespace without a comma", []parser.Message{text("0/admin")}, &parser.Packet{Type: parser.Connect, Nsp: "/admin"}},
	{"namespace /", []parser.Message{text(`2/,["a"]`)}, &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a"]`)}},
	{"connect with an id", []parser.Message{text("01")}, &parser.Packet{Type: parser.Connect, Nsp: "/", ID: 1, HasID: true}},
	{"connect_error with a string", []parser.Message{text(`4"nope"`)}, &parser.Packet{Type: parser.ConnectError, Nsp: "/", Data: raw(`"nope"`)}},
	{"event named by a number", []parser.Message{text(`2[1,"a"]`)}, &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`[1,"a"]`)}},
	{"event named by a negative number", []parser.Message{text(`2[-1.5e3]`)}, &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`[-1.5e3]`)}},
	{"reserved name with other case", []parser.Message{text(`2["Connect"]`)}, &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["Connect"]`)}},
	{"escaped name", []parser.Message{text(`2["\u0061"]`)}, &parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["\u0061"]`)}},
	{"ack id with leading zeros", []parser.Message{text(`2007["a"]`)}, &parser.Packet{Type: parser.Event, Nsp: "/", ID: 7, HasID: true, Data: raw(`["a"]`)}},
	{"largest ack id", []parser.Message{text(`39007199254740991[]`)}, &parser.Packet{Type: parser.Ack, Nsp: "/", ID: 1<<53 - 1, HasID: true, Data: raw(`[]`)}},
	{"JSON kept as written", []parser.Message{text("2[ \"a\" ,{\"b\" : 1.0E2}\n,\"\u00e9\"]\r\n")},
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw("[ \"a\" ,{\"b\" : 1.0E2}\n,\"\u00e9\"]\r\n")}},
	{"placeholders of a text event stay", []parser.Message{text(`2["a",{"_placeholder":true,"num":0}]`)},
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a",{"_placeholder":true,"num":0}]`)}},
	{"placeholders in any form", []parser.Message{
		text(`53-["a",{ "num" : 1 , "_placeholder" : true, "x": [5] },[{"_placeholder":true,"num":0.0}],{"\u005fplaceholder":true,"n\u0075m":2e0}]`),
		bin(1), bin(2), bin(3)},
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a",` + marker(2) + `,[` + marker(1) + `],` + marker(3) + `]`)}},
	{"placeholder num -0", []parser.Message{text(`61-[{"_placeholder":true,"num":-0}]`), bin(4)},
		&parser.Packet{Type: parser.Ack, Nsp: "/", Data: raw(`[` + marker(4) + `]`)}},
	{"a placeholder's placeholders are not looked at", []parser.Message{
		text(`51-["a",{"_placeholder":true,"num":0,"inner":{"_placeholder":true,"num":7}}]`), bin(9)},
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a",` + marker(9) + `]`)}},
	{"the last _placeholder member counts", []parser.Message{
		text(`51-["a",{"_placeholder":true,"_placeholder":false,"num":9},{"_placeholder":1,"num":0},{"_placeholder":false,"_placeholder":true,"num":0}]`), bin(9)},
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a",{"_placeholder":true,"_placeholder":false,"num":9},{"_placeholder":1,"num":0},` + marker(9) + `]`)}},
	{"unused attachments", []parser.Message{
		text(`53-["a",{"_placeholder":true,"num":2},{"_placeholder":true,"num":0}]`), bin(1), bin(2), bin(3)},
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a",` + marker(3) + `,` + marker(1) + `]`)}},
	{"ten attachments", append([]parser.Message{text(`510-["a"` + placeholders(10) + `]`)}, repeatMsg(bin(5), 10)...),
		&parser.Packet{Type: parser.Event, Nsp: "/", Data: raw(`["a"` + strings.Repeat(","+marker(5), 10) + `]`)}},
	{"attachment count with leading zeros", []parser.Message{text(`6001-[{"_placeholder":true,"num":0}]`), bin()},
		&parser.Packet{Type: parser.Ack, Nsp: "/", Data: raw(`[` + marker() + `]`)}},
	{"binary event with a namespace", []parser.Message{text(`51-/a,["a",{"_placeholder":true,"num":0}]`), bin(0xff)},
		&parser.Packet{Type: parser.Event, Nsp: "/a", Data: raw(`["a",` + marker(0xff) + `]`)}},
	{"longest namespace", []parser.Message{text("1/" + strings.Repeat("a", parser.MaxNamespaceLength-1) + ",")},
		&parser.Packet{Type: parser.Disconnect, Nsp: "/" + strings.Repeat("a", parser.MaxNamespaceLength-1)}},
	{"10000 levels", []parser.Message{text(`3` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000))},
		&parser.Packet{Type: parser.Ack, Nsp: "/", Data: raw(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))}},
}

func TestDefaultDecode(t *testing.T) {
	for _, tc := range defaultDecodeCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeAll(parser.Default(), tc.msgs...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				var first *parser.Packet
				if len(got) > 0 {
					first = got[0]
				}
				t.Fatalf("decoded %d packets, the first %s\nwant %s", len(got), fmtPacket(first), fmtPacket(tc.want))
			}
		})
	}
}

type rejectCase struct {
	name string // "(stricter)" when Node accepts the messages
	msgs []parser.Message
	want string // in the error
}

func ph(num string) string { return `{"_placeholder":true,"num":` + num + `}` }

// defaultRejectCases: every refusal of Node's decoder, and those where
// herald is stricter (marked).
var defaultRejectCases = []rejectCase{
	{"unknown type 7", []parser.Message{text(`7["a"]`)}, "unknown packet type"},
	{"unknown type a", []parser.Message{text(`a`)}, "unknown packet type"},
	{"empty message (stricter)", []parser.Message{text(``)}, "unknown packet type"},
	{"white space type", []parser.Message{text(` ["a"]`)}, "unknown packet type"},
	{"white space type, object (stricter)", []parser.Message{text(` {}`)}, "unknown packet type"},
	{"no attachment count", []parser.Message{text(`5["a"]`)}, "Illegal attachments"},
	{"empty attachment count", []parser.Message{text(`5-["a"]`)}, "Illegal attachments"},
	{"zero attachments", []parser.Message{text(`50-["a"]`)}, "Illegal attachments"},
	{"attachment count not a number", []parser.Message{text(`5a-["a"]`)}, "Illegal attachments"},
	{"attachment count 1e0 (stricter)", []parser.Message{text(`51e0-["a"]`)}, "Illegal attachments"},
	{"attachment count 1.5", []parser.Message{text(`61.5-[]`)}, "Illegal attachments"},
	{"too many attachments", []parser.Message{text(`511-["a"]`)}, "too many attachments"},
	{"far too many attachments", []parser.Message{text(`6` + strings.Repeat("9", 40) + `-[]`)}, "too many attachments"},
	{"connect with an array", []parser.Message{text(`0[]`)}, "invalid payload"},
	{"connect with null", []parser.Message{text(`0null`)}, "invalid payload"},
	{"connect with a string", []parser.Message{text(`0/admin,"x"`)}, "invalid payload"},
	{"disconnect with data", []parser.Message{text(`1{}`)}, "invalid payload"},
	{"disconnect with data in a namespace", []parser.Message{text(`1/admin,{}`)}, "invalid payload"},
	{"event without data (stricter)", []parser.Message{text(`2`)}, "invalid payload"},
	{"event without data, with an id (stricter)", []parser.Message{text(`2/admin,1`)}, "invalid payload"},
	{"event without data, JSON in the namespace (stricter)", []parser.Message{text(`2/admin["x"]`)}, "invalid payload"},
	{"event with an object", []parser.Message{text(`2{}`)}, "invalid payload"},
	{"event with an empty array", []parser.Message{text(`2[]`)}, "invalid payload"},
	{"event named by an object", []parser.Message{text(`2[{}]`)}, "invalid payload"},
	{"event named by null", []parser.Message{text(`2[null]`)}, "invalid payload"},
	{"event named by true", []parser.Message{text(`2[true]`)}, "invalid payload"},
	{"event named by an array", []parser.Message{text(`2[["a"]]`)}, "invalid payload"},
	{"event named connect", []parser.Message{text(`2["connect"]`)}, "invalid payload"},
	{"event named connect_error", []parser.Message{text(`2["connect_error",1]`)}, "invalid payload"},
	{"event named disconnect", []parser.Message{text(`2["disconnect"]`)}, "invalid payload"},
	{"event named disconnecting", []parser.Message{text(`2["disconnecting"]`)}, "invalid payload"},
	{"event named newListener", []parser.Message{text(`2["newListener"]`)}, "invalid payload"},
	{"event named removeListener", []parser.Message{text(`2["removeListener"]`)}, "invalid payload"},
	{"event named connect, escaped", []parser.Message{text(`2["conn\u0065ct"]`)}, "invalid payload"},
	{"binary event named connect", []parser.Message{text(`51-["connect",` + ph("0") + `]`)}, "invalid payload"},
	{"binary event named by a placeholder", []parser.Message{text(`51-[` + ph("0") + `]`)}, "invalid payload"},
	{"binary event with an object", []parser.Message{text(`51-{"a":` + ph("0") + `}`)}, "invalid payload"},
	{"binary event without data (stricter)", []parser.Message{text(`51-`)}, "invalid payload"},
	{"ack without data (stricter)", []parser.Message{text(`31`)}, "invalid payload"},
	{"ack with an object", []parser.Message{text(`31{}`)}, "invalid payload"},
	{"ack with a string", []parser.Message{text(`31"a"`)}, "invalid payload"},
	{"binary ack with an object", []parser.Message{text(`61-1{"a":` + ph("0") + `}`)}, "invalid payload"},
	{"connect_error without data (stricter)", []parser.Message{text(`4`)}, "invalid payload"},
	{"connect_error with an array", []parser.Message{text(`4[]`)}, "invalid payload"},
	{"connect_error with a number", []parser.Message{text(`4/a,x`)}, "invalid payload"},
	{"connect_error with null", []parser.Message{text(`4null`)}, "invalid payload"},
	{"not JSON", []parser.Message{text(`2["a"`)}, "invalid payload"},
	{"JSON and more", []parser.Message{text(`2["a"]]`)}, "invalid payload"},
	{"trailing comma", []parser.Message{text(`2["a",]`)}, "invalid payload"},
	{"single quotes", []parser.Message{text(`2['a']`)}, "invalid payload"},
	{"control character in a string", []parser.Message{text("2[\"a\x01\"]")}, "invalid payload"},
	{"bad escape", []parser.Message{text(`2["\x"]`)}, "invalid payload"},
	{"deeper than 10000 levels (stricter)", []parser.Message{text(`3` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001))}, "nested deeper"},
	{"white space before the JSON (stricter)", []parser.Message{text(`2 ["a"]`)}, "white space"},
	{"white space after the id (stricter)", []parser.Message{text(`21 ["a"]`)}, "white space"},
	{"white space after the namespace (stricter)", []parser.Message{text("2/a,\n[\"a\"]")}, "white space"},
	{"white space only (stricter)", []parser.Message{text(`0 `)}, "white space"},
	{"ack id beyond 2^53-1 (stricter)", []parser.Message{text(`39007199254740992[]`)}, "ack id"},
	{"ack id beyond 2^64 (stricter)", []parser.Message{text(`3` + strings.Repeat("9", 30) + `[]`)}, "ack id"},
	{"namespace too long (stricter)", []parser.Message{text("1/" + strings.Repeat("a", parser.MaxNamespaceLength) + ",")}, "namespace longer"},
	{"invalid UTF-8 (stricter)", []parser.Message{text("2[\"\xff\"]")}, "UTF-8"},
	{"binary when not reconstructing", []parser.Message{bin(1)}, "got binary data when not reconstructing a packet"},
	{"binary after a complete binary packet", []parser.Message{text(`51-["a",` + ph("0") + `]`), bin(1), bin(2)}, "got binary data when not reconstructing"},
	{"text when reconstructing", []parser.Message{text(`52-["a",` + ph("0") + `]`), bin(1), text(`2["b"]`)}, "got plaintext data when reconstructing a packet"},
	{"placeholder index too large", []parser.Message{text(`51-["a",` + ph("1") + `]`), bin(1)}, "illegal attachments"},
	{"placeholder index negative", []parser.Message{text(`51-["a",` + ph("-1") + `]`), bin(1)}, "illegal attachments"},
	{"placeholder index a fraction (stricter)", []parser.Message{text(`52-["a",` + ph("0.5") + `]`), bin(1), bin(2)}, "illegal attachments"},
	{"placeholder index a string", []parser.Message{text(`51-["a",` + ph(`"0"`) + `]`), bin(1)}, "illegal attachments"},
	{"placeholder index null", []parser.Message{text(`51-["a",` + ph(`null`) + `]`), bin(1)}, "illegal attachments"},
	{"placeholder index huge", []parser.Message{text(`51-["a",` + ph(`1e400`) + `]`), bin(1)}, "illegal attachments"},
	{"attachment used twice (stricter)", []parser.Message{text(`52-["a",` + ph("1") + `,[` + ph("1.0") + `]]`), bin(1), bin(2)}, "used twice"},
	{"placeholder without index", []parser.Message{text(`51-["a",{"_placeholder":true}]`), bin(1)}, "illegal attachments"},
	{"a marker is a placeholder without index", []parser.Message{text(`51-["a",` + marker(1) + `]`), bin(1)}, "illegal attachments"},
}

// TestDefaultDecodeRejects: each error wraps ErrInvalidPacket.
func TestDefaultDecodeRejects(t *testing.T) {
	for _, tc := range defaultRejectCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeAll(parser.Default(), tc.msgs...)
			if err == nil {
				var first *parser.Packet
				if len(got) > 0 {
					first = got[0]
				}
				t.Fatalf("decoded %d packets (%s), want an error", len(got), fmtPacket(first))
			}
			if !errors.Is(err, parser.ErrInvalidPacket) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one wrapping ErrInvalidPacket and mentioning %q", err, tc.want)
			}
		})
	}
}

// TestDefaultDecoderState: a decoder waits for attachments, is reset by
// an error and by Reset, and keeps nothing of the messages it is given.
func TestDefaultDecoderState(t *testing.T) {
	d := parser.Default().NewDecoder()
	add := func(m parser.Message) (*parser.Packet, error) {
		t.Helper()
		return d.Add(m)
	}
	mustWait := func(m parser.Message) {
		t.Helper()
		if p, err := add(m); p != nil || err != nil {
			t.Fatalf("Add = %s, %v; want nil, nil (waiting)", fmtPacket(p), err)
		}
	}
	mustPacket := func(m parser.Message, want string) {
		t.Helper()
		p, err := add(m)
		if err != nil || p == nil || string(p.Data) != want {
			t.Fatalf("Add = %s, %v; want data %s", fmtPacket(p), err, want)
		}
	}

	// Reset drops the pending packet: an attachment is then unexpected,
	// a text packet fine.
	mustWait(text(`52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`))
	mustWait(bin(1))
	d.Reset()
	if _, err := add(bin(2)); err == nil {
		t.Fatal("an attachment after Reset was accepted")
	}
	mustPacket(text(`2["b"]`), `["b"]`)

	// An error resets the decoder.
	mustWait(text(`51-["a",{"_placeholder":true,"num":0}]`))
	if _, err := add(text(`2["c"]`)); err == nil {
		t.Fatal("text while reconstructing was accepted")
	}
	mustPacket(text(`2["d"]`), `["d"]`)

	// The caller may reuse its buffers.
	buf := []byte(`51-["a",{"_placeholder":true,"num":0}]`)
	mustWait(parser.Message{Data: buf})
	clear(buf)
	att := []byte{1, 2, 3}
	p, err := add(parser.Message{Data: att, Binary: true})
	clear(att)
	if err != nil || p == nil {
		t.Fatal(p, err)
	}
	buf = []byte(`2["e"]`)
	q, err := add(parser.Message{Data: buf})
	clear(buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := `["a",` + marker(1, 2, 3) + `]`; string(p.Data) != want || string(q.Data) != `["e"]` {
		t.Fatalf("packets changed with the caller's buffers: %s, %s", p.Data, q.Data)
	}
}

// TestDefaultRoundTrip: what Encode writes, a decoder reads back.
func TestDefaultRoundTrip(t *testing.T) {
	packets := []*parser.Packet{
		{Type: parser.Connect, Nsp: "/"},
		{Type: parser.Connect, Nsp: "/admin", Data: raw(`{"token":"x","n":[1,2]}`)},
		{Type: parser.Disconnect, Nsp: "/admin"},
		{Type: parser.Event, Nsp: "/", Data: raw(`["hello",1,{"a":null}]`)},
		{Type: parser.Event, Nsp: "/x", ID: 12, HasID: true, Data: raw(`["bin",` + marker(1, 2) + `,{"deep":[` + marker() + `]}]`)},
		{Type: parser.Ack, Nsp: "/", ID: 1<<53 - 1, HasID: true, Data: raw(`[]`)},
		{Type: parser.Ack, Nsp: "/", ID: 0, HasID: true, Data: raw(`[` + marker(0xff) + `]`)},
		{Type: parser.ConnectError, Nsp: "/", Data: raw(`{"message":"unauthorized","data":{"code":"token_expired"}}`)},
	}
	for _, p := range packets {
		t.Run(fmtPacket(p), func(t *testing.T) {
			msgs, err := parser.Default().Encode(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeAll(parser.Default(), msgs...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || !reflect.DeepEqual(got[0], p) {
				t.Fatalf("%s came back as %d packets: %v", fmtPacket(p), len(got), got)
			}
		})
	}
}

// FuzzDecode feeds a default decoder the messages of the input, split at
// 0x1e (the record separator of Engine.IO's long-polling payloads); a
// message that starts with 'b' is binary (without the 'b'). No input
// makes it panic; every error wraps ErrInvalidPacket; every packet it
// returns is valid, and Encode writes it so that it decodes the same.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`2["hello",1]`))
	f.Add([]byte(`51-["hello",{"_placeholder":true,"num":0}]` + "\x1eb\x01\x02\x03"))
	f.Add([]byte(`62-/admin,456[{"num":1,"_placeholder":true},{"_placeholder":true,"num":0}]` + "\x1eb\x01\x1eb"))
	f.Add([]byte(`0/admin,{"token":"x"}` + "\x1e" + `1/admin,`))
	f.Fuzz(func(t *testing.T, in []byte) {
		d := parser.Default().NewDecoder()
		for part := range bytes.SplitSeq(in, []byte{0x1e}) {
			m := parser.Message{Data: part}
			if len(part) > 0 && part[0] == 'b' {
				m = parser.Message{Data: part[1:], Binary: true}
			}
			p, err := d.Add(m)
			if err != nil {
				if p != nil || !errors.Is(err, parser.ErrInvalidPacket) {
					t.Fatalf("Add = %s, %v", fmtPacket(p), err)
				}
				continue
			}
			if p != nil {
				checkDecoded(t, p)
			}
		}
	})
}

// checkDecoded checks a packet the default decoder returned.
func checkDecoded(t *testing.T, p *parser.Packet) {
	t.Helper()
	if p.Type > parser.ConnectError || !strings.HasPrefix(p.Nsp, "/") || len(p.Nsp) > parser.MaxNamespaceLength ||
		p.HasID && p.ID > 1<<53-1 || !p.HasID && p.ID != 0 {
		t.Fatalf("decoded %s", fmtPacket(p))
	}
	if p.Data != nil && !json.Valid(p.Data) {
		t.Fatalf("decoded invalid JSON: %s", fmtPacket(p))
	}
	var v any
	if p.Data != nil {
		if err := json.Unmarshal(p.Data, &v); err != nil {
			t.Fatalf("decoded %s: %v", fmtPacket(p), err)
		}
	}
	ok := false
	switch p.Type {
	case parser.Connect:
		_, isObj := v.(map[string]any)
		ok = p.Data == nil || isObj
	case parser.Disconnect:
		ok = p.Data == nil
	case parser.Event:
		a, isArr := v.([]any)
		if isArr && len(a) > 0 {
			switch name := a[0].(type) {
			case float64:
				ok = true
			case string:
				ok = !map[string]bool{"connect": true, "connect_error": true, "disconnect": true,
					"disconnecting": true, "newListener": true, "removeListener": true}[name]
			}
		}
	case parser.Ack:
		_, ok = v.([]any)
	case parser.ConnectError:
		switch v.(type) {
		case string, map[string]any:
			ok = true
		}
	}
	if !ok {
		t.Fatalf("decoded a packet with invalid data: %s", fmtPacket(p))
	}

	msgs, err := parser.Default().Encode(p)
	if err != nil {
		t.Fatalf("%s does not encode: %v", fmtPacket(p), err)
	}
	// A client's own placeholder objects, left as they were in a text
	// packet, are read as placeholders once markers make the packet
	// binary, as Node would read them.
	if len(msgs) > 1 && parser.HasPlaceholder(p.Data) {
		return
	}
	got, err := decodeAll(parser.Default(), msgs...)
	if err != nil || len(got) != 1 {
		t.Fatalf("%s encoded as %s, decoded as %v, %v", fmtPacket(p), fmtMessages(msgs), got, err)
	}
	q := got[0]
	// The one change Encode may make: the white space around Data.
	want := *p
	if want.Data != nil {
		want.Data = bytes.TrimRight(want.Data, " \t\r\n")
	}
	if !reflect.DeepEqual(q, &want) {
		t.Fatalf("%s encoded as %s came back as %s", fmtPacket(p), fmtMessages(msgs), fmtPacket(q))
	}
}
