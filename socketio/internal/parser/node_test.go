package parser

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/testenv"
)

// Differential tests run Node's socket.io-parser 4.2 and
// socket.io-msgpack-parser 3.0 (testdata/node_modules, npm ci) through
// nodeScript: it reads a JSON array of requests on stdin and writes a
// JSON array of results.
//
// A request {op: "encode", parser, packet} encodes packet ({type, nsp,
// id?, data?}, data as JSON text whose events.Bytes markers become
// Buffers) and returns its messages; {op: "decode", parser, messages}
// feeds the messages to a new decoder and returns the packets it emitted,
// their data as JSON.stringify writes it with Buffers and ArrayBuffers as
// markers, and the error it threw, if any. A message is {text} or {bin}
// (base64).
const nodeScript = `
const { Encoder, Decoder } = require("socket.io-parser");
const msgpackParser = require("socket.io-msgpack-parser");

function define(o, k, v) {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

// events.Bytes markers -> Buffers.
function toBuffers(v) {
  if (Array.isArray(v)) return v.map((e) => toBuffers(e));
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 2 && keys[0] === "_placeholder" && keys[1] === "bin" && v._placeholder === true && typeof v.bin === "string") {
      return Buffer.from(v.bin, "base64");
    }
    const o = {};
    for (const k of keys) define(o, k, toBuffers(v[k]));
    return o;
  }
  return v;
}

// Buffers, typed arrays and ArrayBuffers -> events.Bytes markers.
function toMarkers(v) {
  if (ArrayBuffer.isView(v)) return { _placeholder: true, bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (v instanceof ArrayBuffer) return { _placeholder: true, bin: Buffer.from(v).toString("base64") };
  if (Array.isArray(v)) return v.map((e) => toMarkers(e));
  if (v !== null && typeof v === "object" && !(v instanceof Date)) {
    const o = {};
    for (const k of Object.keys(v)) define(o, k, toMarkers(v[k]));
    return o;
  }
  return v;
}

function message(m) {
  return typeof m === "string" ? { text: m } : { bin: Buffer.from(m).toString("base64") };
}

function run(req) {
  const msgpack = req.parser === "msgpack";
  if (req.op === "encode") {
    const q = req.packet;
    const p = { type: q.type }; // in the order herald writes a msgpack packet's members
    if (q.data !== undefined) p.data = toBuffers(JSON.parse(q.data));
    p.nsp = q.nsp;
    if (q.id !== undefined) p.id = q.id;
    const enc = msgpack ? new msgpackParser.Encoder() : new Encoder();
    return { messages: enc.encode(p).map(message) };
  }
  const d = msgpack ? new msgpackParser.Decoder() : new Decoder();
  const decoded = [];
  d.on("decoded", (p) => decoded.push(p));
  let error;
  try {
    for (const m of req.messages) d.add(m.text !== undefined ? m.text : Buffer.from(m.bin, "base64"));
  } catch (e) {
    error = String((e && e.message) || e);
  }
  const packets = decoded.map((p) => {
    const out = { type: p.type, nsp: p.nsp, id: p.id === undefined ? undefined : String(p.id) };
    try {
      out.data = p.data === undefined ? undefined : JSON.stringify(toMarkers(p.data));
    } catch (e) {
      out.unwritable = String((e && e.message) || e); // too deep for this script's recursion
    }
    return out;
  });
  return { packets, error };
}

const reqs = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(reqs.map(run)));
`

// NodePackets are packets whose Data is what JSON.stringify writes, so
// that Node's encoders, given the same values, must write the same bytes.
var NodePackets = []*Packet{
	{Type: Connect, Nsp: "/"},
	{Type: Connect, Nsp: "/admin", Data: json.RawMessage(`{"token":"x"}`)},
	{Type: Connect, Nsp: "/", Data: json.RawMessage(`{"sid":"oSO0OpakMV_3jnilAAAA","pid":"p"}`)},
	{Type: Disconnect, Nsp: "/"},
	{Type: Disconnect, Nsp: "/admin"},
	{Type: Event, Nsp: "/", Data: json.RawMessage(`["hello",1]`)},
	{Type: Event, Nsp: "", Data: json.RawMessage(`["main namespace"]`)},
	{Type: Event, Nsp: "/admin", ID: 456, HasID: true, Data: json.RawMessage(`["project:delete",123]`)},
	{Type: Event, Nsp: "/", ID: 0, HasID: true, Data: json.RawMessage(`["a",{"b":[null,true,false]}]`)},
	{Type: Event, Nsp: "/", Data: json.RawMessage("[\"é\\\"\\\\\\n\\b\\f\\r\\t\\u0001\\u001f\u007f\u2028\u2029<>&😀\",\"\"]")},
	{Type: Event, Nsp: "/", Data: json.RawMessage(`[1.5,-0.25,1e+21,1e-7,0.000001,123456789012,-5e-324,1.7976931348623157e+308]`)},
	{Type: Event, Nsp: "/", Data: json.RawMessage(`["obj",{"b":1,"a":{"0":1,"c":[{}]}}]`)},
	{Type: Ack, Nsp: "/admin", ID: 456, HasID: true, Data: json.RawMessage(`[]`)},
	{Type: Ack, Nsp: "/", ID: 9007199254740991, HasID: true, Data: json.RawMessage(`["answer",{"ok":true}]`)},
	{Type: ConnectError, Nsp: "/", Data: json.RawMessage(`{"message":"Not authorized","data":{"code":"token_invalid"}}`)},
	{Type: ConnectError, Nsp: "/x", Data: json.RawMessage(`"Invalid namespace"`)},
	{Type: Event, Nsp: "/", Data: json.RawMessage(`["hello",` + mk(1, 2, 3) + `]`)},
	{Type: Ack, Nsp: "/admin", ID: 456, HasID: true, Data: json.RawMessage(`[` + mk(3, 2, 1) + `]`)},
	{Type: Event, Nsp: "/b", ID: 7, HasID: true, Data: json.RawMessage(`["file",{"name":"f","data":` + mk(0, 0xff) +
		`,"parts":[` + mk() + `,` + mk(9) + `],"meta":{"thumb":` + mk(1) + `}},` + mk(2) + `]`)},
	{Type: Event, Nsp: "/", Data: json.RawMessage(`["many"` + strings.Repeat(","+mk(7), 12) + `]`)},
}

// NodeMessage is a message to or from nodeScript.
type NodeMessage struct {
	Text *string `json:"text,omitempty"`
	Bin  *string `json:"bin,omitempty"` // base64
}

// NodePacket is a packet to or from nodeScript.
type NodePacket struct {
	Type int          `json:"type"`
	Nsp  string       `json:"nsp"`
	ID   *json.Number `json:"id,omitempty"`   // from Node: String(id)
	Data *string      `json:"data,omitempty"` // JSON text
	// Unwritable says why nodeScript could not write the data Node
	// decoded (nesting too deep for its stack).
	Unwritable string `json:"unwritable,omitempty"`
}

// NodeRequest is one request to nodeScript.
type NodeRequest struct {
	Op       string        `json:"op"`     // "encode" or "decode"
	Parser   string        `json:"parser"` // "default" or "msgpack"
	Packet   *NodePacket   `json:"packet,omitempty"`
	Messages []NodeMessage `json:"messages,omitempty"`
}

// NodeResult is nodeScript's answer to one request.
type NodeResult struct {
	Messages []NodeMessage `json:"messages"`
	Packets  []NodePacket  `json:"packets"`
	Error    string        `json:"error"`
}

// RunNode runs nodeScript on reqs in the module's testdata directory. It
// skips the test when Node or the npm packages are missing, unless
// HERALD_INTEGRATION=1 (then it fails).
func RunNode(t *testing.T, reqs []NodeRequest) []NodeResult {
	t.Helper()
	node := testenv.RequireNode(t)
	dir := testenv.TestdataDir(t)
	for _, pkg := range []string{"socket.io-parser", "socket.io-msgpack-parser"} {
		_, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json"))
		testenv.Require(t, "testdata/node_modules/"+pkg, "run `npm ci` in testdata/", err == nil)
	}
	in, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", nodeScript)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	var res []NodeResult
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(reqs) {
		t.Fatalf("node wrote %d results for %d requests (%v): %.500s", len(res), len(reqs), err, out)
	}
	return res
}

// ToNode returns msgs as nodeScript takes them.
func ToNode(msgs []Message) []NodeMessage {
	out := make([]NodeMessage, len(msgs))
	for i, m := range msgs {
		s := string(m.Data)
		if m.Binary {
			s = base64.StdEncoding.EncodeToString(m.Data)
			out[i].Bin = &s
		} else {
			out[i].Text = &s
		}
	}
	return out
}

// FromNode returns the messages nodeScript wrote.
func FromNode(t *testing.T, msgs []NodeMessage) []Message {
	t.Helper()
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		switch {
		case m.Text != nil:
			out[i] = Message{Data: []byte(*m.Text)}
		case m.Bin != nil:
			b, err := base64.StdEncoding.DecodeString(*m.Bin)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = Message{Data: b, Binary: true}
		default:
			t.Fatalf("node wrote an empty message")
		}
	}
	return out
}

// ToNodePacket returns p as nodeScript takes it.
func ToNodePacket(p *Packet) *NodePacket {
	np := &NodePacket{Type: int(p.Type), Nsp: p.Nsp}
	if p.HasID {
		id := json.Number(strconv.FormatUint(p.ID, 10))
		np.ID = &id
	}
	if p.Data != nil {
		d := string(p.Data)
		np.Data = &d
	}
	return np
}

// SamePacket reports whether Node's packet np is p: the same type,
// namespace and id, and the same data (the same JSON text if exact, else
// the same value as encoding/json reads it).
func SamePacket(np NodePacket, p *Packet, exact bool) bool {
	if np.Type != int(p.Type) || np.Nsp != p.Nsp || (np.ID != nil) != p.HasID {
		return false
	}
	if np.Unwritable != "" {
		return true // the data cannot be compared
	}
	if (np.Data != nil) != (p.Data != nil) {
		return false
	}
	if p.HasID && np.ID.String() != strconv.FormatUint(p.ID, 10) {
		return false
	}
	if p.Data == nil {
		return true
	}
	if exact {
		return *np.Data == string(p.Data)
	}
	return jsonSame([]byte(*np.Data), p.Data)
}

// FmtNodePacket formats np for failures.
func FmtNodePacket(np NodePacket) string {
	b, _ := json.Marshal(np)
	return string(b)
}
