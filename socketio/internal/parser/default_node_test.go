package parser_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/herald-rt/herald/socketio/internal/parser"
)

// TestDefaultMatchesNode: Encode writes what socket.io-parser's Encoder
// writes, each decodes the other's messages into the same packet, and the
// decoder accepts and refuses what Node's Decoder does, except where it
// is stricter on purpose (the "(stricter)" cases).
func TestDefaultMatchesNode(t *testing.T) {
	var reqs []parser.NodeRequest
	for _, p := range parser.NodePackets {
		reqs = append(reqs, parser.NodeRequest{Op: "encode", Parser: "default", Packet: parser.ToNodePacket(p)})
	}
	for _, tc := range defaultDecodeCases {
		reqs = append(reqs, parser.NodeRequest{Op: "decode", Parser: "default", Messages: parser.ToNode(tc.msgs)})
	}
	for _, tc := range defaultRejectCases {
		reqs = append(reqs, parser.NodeRequest{Op: "decode", Parser: "default", Messages: parser.ToNode(tc.msgs)})
	}
	res := parser.RunNode(t, reqs)

	// Node's encoded messages, to be decoded by Node in a second run.
	var nodeMsgs [][]parser.Message
	t.Run("encode", func(t *testing.T) {
		for i, p := range parser.NodePackets {
			nodeMsgs = append(nodeMsgs, parser.FromNode(t, res[i].Messages))
			t.Run(fmtPacket(p), func(t *testing.T) {
				got, err := parser.Default().Encode(p)
				if err != nil {
					t.Fatal(err)
				}
				if want := nodeMsgs[i]; !reflect.DeepEqual(got, want) {
					t.Fatalf("Encode = %s\nNode     %s", fmtMessages(got), fmtMessages(want))
				}
			})
		}
	})
	res = res[len(parser.NodePackets):]

	t.Run("decode", func(t *testing.T) {
		for i, tc := range defaultDecodeCases {
			t.Run(tc.name, func(t *testing.T) {
				r := res[i]
				if r.Error != "" || len(r.Packets) != 1 {
					t.Fatalf("Node: %d packets, error %q; want %s", len(r.Packets), r.Error, fmtPacket(tc.want))
				}
				if !parser.SamePacket(r.Packets[0], tc.want, false) {
					t.Fatalf("Node decoded %s\nwant %s", parser.FmtNodePacket(r.Packets[0]), fmtPacket(tc.want))
				}
			})
		}
	})
	res = res[len(defaultDecodeCases):]

	t.Run("reject", func(t *testing.T) {
		for i, tc := range defaultRejectCases {
			t.Run(tc.name, func(t *testing.T) {
				r := res[i]
				stricter := strings.Contains(tc.name, "(stricter)")
				switch {
				case stricter && r.Error != "":
					t.Fatalf("Node refuses too (%s): the case is not stricter", r.Error)
				case !stricter && r.Error == "":
					t.Fatalf("Node accepts: %d packets %v", len(r.Packets), r.Packets)
				}
			})
		}
	})

	// Node decodes its own messages as herald's decoder does, and Go's
	// messages as its own (they are the same bytes: see encode).
	var reqs2 []parser.NodeRequest
	for _, msgs := range nodeMsgs {
		reqs2 = append(reqs2, parser.NodeRequest{Op: "decode", Parser: "default", Messages: parser.ToNode(msgs)})
	}
	res2 := parser.RunNode(t, reqs2)
	t.Run("decode Node's messages", func(t *testing.T) {
		for i, p := range parser.NodePackets {
			t.Run(fmtPacket(p), func(t *testing.T) {
				got, err := decodeAll(parser.Default(), nodeMsgs[i]...)
				if len(nodeMsgs[i]) > parser.DefaultMaxAttachments+1 {
					// Node's decoder refuses as many attachments as herald's.
					if r := res2[i]; err == nil || !strings.Contains(err.Error(), "too many attachments") || r.Error != "too many attachments" {
						t.Fatalf("decoded %d packets (%v); Node %d (%q); want both to refuse", len(got), err, len(r.Packets), r.Error)
					}
					return
				}
				if err != nil || len(got) != 1 {
					t.Fatalf("decoded %d packets: %v", len(got), err)
				}
				want := decodedForm(p)
				if !reflect.DeepEqual(got[0], want) {
					t.Fatalf("decoded %s\nwant    %s", fmtPacket(got[0]), fmtPacket(want))
				}
				r := res2[i]
				if r.Error != "" || len(r.Packets) != 1 || !parser.SamePacket(r.Packets[0], want, true) {
					t.Fatalf("Node decoded %v (error %q)\nwant %s", r.Packets, r.Error, fmtPacket(want))
				}
			})
		}
	})
}

// decodedForm returns p as a decoder returns it: no binary types, "/"
// for "".
func decodedForm(p *parser.Packet) *parser.Packet {
	q := *p
	switch q.Type {
	case parser.BinaryEvent:
		q.Type = parser.Event
	case parser.BinaryAck:
		q.Type = parser.Ack
	}
	if q.Nsp == "" {
		q.Nsp = "/"
	}
	return &q
}

// TestAppendEventMatchesNode: event names of every ASCII character and
// some others, escaped as socket.io-parser's Encoder (JSON.stringify)
// escapes them.
func TestAppendEventMatchesNode(t *testing.T) {
	var names []string
	for c := range 0x80 {
		names = append(names, fmt.Sprintf("a%cb", c))
	}
	names = append(names, "é", "😀", "\u2028\u2029", "\ufeff", "\ufffd", "日本語", strings.Repeat("x", 300))
	var reqs []parser.NodeRequest
	for _, name := range names {
		data := raw(`[` + string(mustMarshal(t, name)) + `,1]`)
		reqs = append(reqs, parser.NodeRequest{Op: "encode", Parser: "default",
			Packet: parser.ToNodePacket(&parser.Packet{Type: parser.Event, Nsp: "/n", ID: 3, HasID: true, Data: data})})
	}
	res := parser.RunNode(t, reqs)
	for i, name := range names {
		got, err := parser.AppendEvent(nil, "/n", name, 3, true, []json.RawMessage{raw(`1`)})
		if err != nil {
			t.Fatal(err)
		}
		want := parser.FromNode(t, res[i].Messages)
		if len(want) != 1 || string(got) != string(want[0].Data) {
			t.Errorf("name %q: AppendEvent = %q, Node %s", name, got, fmtMessages(want))
		}
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
