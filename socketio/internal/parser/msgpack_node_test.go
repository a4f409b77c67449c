package parser

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/herald-rt/herald/internal/msgpack"
)

// TestMsgpackMatchesNode: Encode writes what socket.io-msgpack-parser's
// Encoder (notepack.io 2.2) writes, each decodes the other's messages into
// the same packet, the decoder's Data is what JSON.stringify writes for
// what Node decodes (floats and strings of every kind included), and it
// accepts and refuses what Node's decoder does, except where it is
// stricter on purpose (the "(stricter)" cases).
func TestMsgpackMatchesNode(t *testing.T) {
	// Node's notepack.io writes integers beyond 2^53 wrongly (and herald
	// keeps them exact): the packets stay below.
	var packets []*Packet
	for _, p := range NodePackets {
		if !bytes.Contains(p.Data, []byte("1e+21")) {
			q := *p
			if q.Nsp == "" {
				q.Nsp = "/" // what herald writes; Node would write ""
			}
			packets = append(packets, &q)
		}
	}
	packets = append(packets, &Packet{Type: Event, Nsp: "/", Data: json.RawMessage(
		`["n",1.5,-0.25,1e-7,0.000001,123456789012,-5e-324,-70000,4294967296,-4294967297,9007199254740991,255,-32,-33,65536]`)})

	type rawCase struct {
		name  string
		msg   []byte
		exact bool // Data must be the same text as Node's
	}
	var raws []rawCase
	// The seed corpus: socket.io-client's packets (node_*) and hostile ones.
	seeds, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzMsgpackDecoder", "*"))
	if err != nil || len(seeds) == 0 {
		t.Fatalf("no seeds: %v", err)
	}
	stricterSeeds := map[string]bool{"deep_nesting": true, "int_key": true, "reserved_event": true}
	for _, s := range seeds {
		name := "seed " + filepath.Base(s)
		if stricterSeeds[filepath.Base(s)] {
			name += " (stricter)"
		}
		raws = append(raws, rawCase{name: name, msg: readSeed(t, s)})
	}
	for _, tc := range mpRejectCases {
		// notepack.io would allocate and fill the 4 GiB ArrayBuffer of
		// "huge ext", which herald refuses at once.
		if tc.hex != "" && tc.name != "huge ext" {
			raws = append(raws, rawCase{name: "reject " + tc.name, msg: mpHex(t, tc.hex)})
		}
	}
	for _, tc := range mpJSONCases {
		raws = append(raws, rawCase{name: "json " + tc.name, msg: mpHex(t, mpEventHex(tc.hex)), exact: !strings.Contains(tc.name, "int64")})
	}
	// Floats and strings of every kind, written as JavaScript writes them.
	rnd := rand.New(rand.NewPCG(1, 2))
	floats := []float64{0.1, 0.2, 0.3, 1.0 / 3, 2.0 / 3, 1e21, 1e-6, 1e-7, 123e-20, 1.5e300, math.MaxFloat64, math.SmallestNonzeroFloat64,
		2.2250738585072014e-308, 1 << 53, 1<<53 + 2, 9.007199254740993e15, 1e20, 123456789012345680000, 1.2345678901234567e21, 100, 5e-7, 4.35, 0.000123}
	for range 300 {
		f := math.Float64frombits(rnd.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		floats = append(floats, f, float64(float32(f)), math.Round(f*1000)/1000, f*1e-10)
	}
	for i := 0; i < len(floats); i += 50 {
		b := msgpack.AppendArrayHeader(nil, 1+min(50, len(floats)-i))
		b = msgpack.AppendString(b, "f")
		for _, f := range floats[i:min(i+50, len(floats))] {
			if f32 := float32(f); float64(f32) == f && rnd.IntN(2) == 0 {
				b = binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(f32))
			} else {
				b = msgpack.AppendFloat(b, f)
			}
		}
		raws = append(raws, rawCase{name: "floats " + strconv.Itoa(i), msg: mpPacket(b), exact: true})
	}
	for i := range 200 {
		s := make([]byte, rnd.IntN(12))
		for j := range s {
			switch rnd.IntN(4) {
			case 0:
				s[j] = byte(rnd.IntN(0x80))
			case 1:
				s[j] = byte(0x80 + rnd.IntN(0x40))
			default:
				s[j] = byte(0xc0 + rnd.IntN(0x40))
			}
		}
		b := msgpack.AppendArrayHeader(nil, 2)
		b = msgpack.AppendString(b, "s")
		b = msgpack.AppendString(b, string(s))
		raws = append(raws, rawCase{name: "string " + strconv.Itoa(i) + " " + strconv.Quote(string(s)), msg: mpPacket(b), exact: true})
	}

	var reqs []NodeRequest
	goMsgs := make([][]Message, len(packets))
	for i, p := range packets {
		reqs = append(reqs, NodeRequest{Op: "encode", Parser: "msgpack", Packet: ToNodePacket(p)})
		if goMsgs[i], err = Msgpack().Encode(p); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, NodeRequest{Op: "decode", Parser: "msgpack", Messages: ToNode(goMsgs[i])})
	}
	for _, r := range raws {
		reqs = append(reqs, NodeRequest{Op: "decode", Parser: "msgpack", Messages: ToNode([]Message{bin(r.msg)})})
	}
	res := RunNode(t, reqs)

	t.Run("encode", func(t *testing.T) {
		for i, p := range packets {
			t.Run(fmtPacket(p), func(t *testing.T) {
				enc, dec := res[2*i], res[2*i+1]
				nodeMsgs := FromNode(t, enc.Messages)
				if !reflect.DeepEqual(goMsgs[i], nodeMsgs) {
					t.Fatalf("Encode = %+v\nNode     %+v", goMsgs[i], nodeMsgs)
				}
				want := *p
				switch want.Type {
				case BinaryEvent:
					want.Type = Event
				case BinaryAck:
					want.Type = Ack
				}
				got, err := mpDecode(nodeMsgs[0])
				if err != nil || !reflect.DeepEqual(got, &want) {
					t.Fatalf("decoded Node's message as %s (%v)\nwant %s", fmtPacket(got), err, fmtPacket(&want))
				}
				if dec.Error != "" || len(dec.Packets) != 1 || !SamePacket(dec.Packets[0], &want, true) {
					t.Fatalf("Node decoded %v (%q)\nwant %s", dec.Packets, dec.Error, fmtPacket(&want))
				}
			})
		}
	})
	res = res[2*len(packets):]

	t.Run("decode", func(t *testing.T) {
		for i, rc := range raws {
			t.Run(rc.name, func(t *testing.T) {
				r := res[i]
				p, err := mpDecode(bin(rc.msg))
				stricter := strings.Contains(rc.name, "(stricter)")
				switch {
				case err != nil && r.Error != "":
					if stricter {
						t.Fatalf("Node refuses too (%s): the case is not stricter", r.Error)
					}
				case err != nil:
					if !stricter {
						t.Fatalf("refused (%v), Node decodes %v", err, r.Packets)
					}
				case r.Error != "":
					t.Fatalf("decoded %s, Node refuses: %s", fmtPacket(p), r.Error)
				case len(r.Packets) != 1:
					t.Fatalf("Node decoded %d packets", len(r.Packets))
				case strings.Contains(rc.name, "__proto__"):
					// Node's notepack.io sets the prototype: JSON.stringify
					// leaves the member out; herald keeps it.
					if r.Packets[0].Data == nil || *r.Packets[0].Data != `["e",{}]` || string(p.Data) != `["e",{"__proto__":1}]` {
						t.Fatalf("decoded %s, Node %s", fmtPacket(p), FmtNodePacket(r.Packets[0]))
					}
				case !SamePacket(r.Packets[0], p, rc.exact):
					t.Fatalf("decoded %s\nNode    %s", fmtPacket(p), FmtNodePacket(r.Packets[0]))
				}
			})
		}
	})
}

// mpPacket returns an EVENT packet to "/" whose data is the MessagePack
// value data.
func mpPacket(data []byte) []byte {
	b := msgpack.AppendMapHeader(nil, 3)
	b = msgpack.AppendInt(msgpack.AppendString(b, "type"), 2)
	b = msgpack.AppendString(b, "nsp")
	b = msgpack.AppendString(b, "/")
	b = msgpack.AppendString(b, "data")
	return append(b, data...)
}

// readSeed returns the []byte of a corpus file ("go test fuzz v1" and one
// []byte("...") line).
func readSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
		t.Fatalf("%s: not a []byte seed", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}
