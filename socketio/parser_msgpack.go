package socketio

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/herald-rt/herald/internal/msgpack"
)

// The MessagePack parser, for clients that use socket.io-msgpack-parser
// (npm, 3.x; Config.Parser = ParserMsgpack). Each Socket.IO packet is one
// MessagePack map {type, data, nsp, id?}, written with notepack.io, sent as
// one binary Engine.IO message; binary data is MessagePack bin inside it,
// so there are no attachments and no BINARY_EVENT or BINARY_ACK packets.
//
// Outgoing, herald's JSON arguments (json.RawMessage) are transcoded
// directly, so object members keep their order; numbers are written as
// notepack.io writes JavaScript numbers (integral values as integers,
// others as float64), and the marker object of events.Bytes becomes bin.
//
// Incoming, a packet is checked as socket.io-msgpack-parser's checkPacket
// does, and as upstream's default decoder does for event names: maps
// become map[string]any, arrays []any, bin (and notepack.io's ArrayBuffer
// extension) []byte, which argJSON turns into events.Bytes markers.
// Values take the form JSON.stringify would give them: notepack.io's
// undefined drops a map member (and is null in an array), its Date
// becomes an ISO 8601 string, NaN and infinities null.

// errMsgpackPacket is wrapped by every error of the MessagePack decoder;
// upstream closes the connection that sent the packet.
var errMsgpackPacket = errors.New("socketio: malformed msgpack packet")

func msgpackError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMsgpackPacket, fmt.Sprintf(format, args...))
}

const (
	// maxMsgpackDepth bounds the nesting of a received packet, the packet's
	// own map included, so that hostile input cannot exhaust the stack.
	maxMsgpackDepth = 64
	// maxMsgpackEncodeDepth bounds the nesting of the Go values (maps and
	// slices) around the JSON texts herald writes, which may refer to
	// themselves; JSON texts are bounded by msgpack.DefaultMaxDepth (10000
	// levels, as encoding/json).
	maxMsgpackEncodeDepth = 10000
)

// msgpackParser implements upstream's parser.Parser. Upstream shares one
// encoder between all connections (and calls it concurrently) and makes a
// decoder per connection.
type msgpackParser struct {
	log *slog.Logger
}

var _ parser.Parser = msgpackParser{}

func (p msgpackParser) NewEncoder() parser.Encoder { return msgpackEncoder(p) }

func (p msgpackParser) NewDecoder() parser.Decoder {
	return &msgpackDecoder{EventEmitter: types.NewEventEmitter()}
}

// msgpackEncoder is stateless and safe for concurrent use.
type msgpackEncoder struct {
	log *slog.Logger
}

var _ parser.Encoder = msgpackEncoder{}

// Encode returns the packet as one binary message. A packet whose data does
// not encode (a Go value encoding/json rejects: never one of herald's or
// upstream's) is dropped and logged; upstream's default encoder would send
// it without its data, which the client rejects.
func (e msgpackEncoder) Encode(p *parser.Packet) []types.BufferInterface {
	b, err := appendMsgpackPacket(make([]byte, 0, 128), p)
	if err != nil {
		if e.log != nil {
			e.log.Error("packet dropped: it does not encode as MessagePack", "err", err)
		}
		return nil
	}
	return []types.BufferInterface{types.NewBytesBuffer(b)}
}

// appendMsgpackPacket appends p as socket.io-msgpack-parser's map
// {type, data, nsp, id}; data and id only when set.
func appendMsgpackPacket(b []byte, p *parser.Packet) ([]byte, error) {
	if p == nil {
		return nil, errors.New("socketio: nil packet")
	}
	typ := p.Type
	switch typ {
	case parser.BINARY_EVENT:
		typ = parser.EVENT
	case parser.BINARY_ACK:
		typ = parser.ACK
	case parser.CONNECT, parser.DISCONNECT, parser.EVENT, parser.ACK, parser.CONNECT_ERROR:
	default:
		return nil, fmt.Errorf("socketio: packet type %d", p.Type)
	}
	n := 2
	if p.Data != nil {
		n++
	}
	if p.Id != nil {
		n++
	}
	b = msgpack.AppendMapHeader(b, n)
	b = msgpack.AppendInt(msgpack.AppendString(b, "type"), int64(typ))
	if p.Data != nil {
		var err error
		if b, err = appendMsgpackValue(msgpack.AppendString(b, "data"), p.Data, 1); err != nil {
			return nil, err
		}
	}
	nsp := p.Nsp
	if nsp == "" {
		nsp = "/" // the default parser's empty namespace; the client compares names
	}
	b = msgpack.AppendString(msgpack.AppendString(b, "nsp"), nsp)
	if p.Id != nil {
		b = msgpack.AppendUint(msgpack.AppendString(b, "id"), *p.Id)
	}
	return b, nil
}

// appendMsgpackValue appends the MessagePack form of v: what herald and
// upstream put in packets (json.RawMessage, []byte, buffers, []any,
// map[string]any, strings, numbers, bools, nil) directly, any other value
// as its encoding/json form would be (json tags, MarshalJSON).
func appendMsgpackValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxMsgpackEncodeDepth {
		return nil, fmt.Errorf("socketio: value nested deeper than %d", maxMsgpackEncodeDepth)
	}
	switch x := v.(type) {
	case nil:
		return msgpack.AppendNil(b), nil
	case json.RawMessage:
		return appendMsgpackJSON(b, x)
	case string:
		return msgpack.AppendString(b, x), nil
	case bool:
		return msgpack.AppendBool(b, x), nil
	case []byte:
		return msgpack.AppendBin(b, x), nil
	case *types.StringBuffer:
		return msgpack.AppendString(b, x.String()), nil // text, as the default parser writes it
	case *strings.Reader:
		s := make([]byte, x.Size())
		n, _ := x.ReadAt(s, 0)
		return msgpack.AppendString(b, string(s[:n])), nil
	case byteser: // upstream's binary buffers
		return msgpack.AppendBin(b, x.Bytes()), nil
	case io.Reader:
		data, err := io.ReadAll(x)
		if err != nil {
			return nil, fmt.Errorf("socketio: read binary value: %w", err)
		}
		return msgpack.AppendBin(b, data), nil
	case int, int8, int16, int32, int64:
		return msgpack.AppendInt(b, reflect.ValueOf(x).Int()), nil
	case uint, uint8, uint16, uint32, uint64:
		return msgpack.AppendUint(b, reflect.ValueOf(x).Uint()), nil
	case float32, float64:
		return msgpack.AppendNumber(b, reflect.ValueOf(x).Float()), nil
	case []any:
		b = msgpack.AppendArrayHeader(b, len(x))
		for _, e := range x {
			var err error
			if b, err = appendMsgpackValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys) // as encoding/json
		b = msgpack.AppendMapHeader(b, len(keys))
		for _, k := range keys {
			var err error
			if b, err = appendMsgpackValue(msgpack.AppendString(b, k), x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("socketio: encode %T: %w", v, err)
	}
	return appendMsgpackJSON(b, js)
}

// appendMsgpackJSON appends the MessagePack form of the JSON text js as
// msgpack.AppendJSON writes it: object members in order, numbers as
// notepack.io writes JavaScript numbers, the marker objects of
// events.Bytes as bin.
func appendMsgpackJSON(b, js []byte) ([]byte, error) {
	b, err := msgpack.AppendJSON(b, js, msgpack.JSONOptions{})
	if err != nil {
		return nil, fmt.Errorf("socketio: JSON argument: %w", err)
	}
	return b, nil
}

// ---- Decoding ----

// msgpackDecoder decodes one connection's packets. Add emits "decoded"
// with a *parser.Packet, as upstream's default decoder does, or returns an
// error (and emits nothing): upstream then closes the connection.
type msgpackDecoder struct {
	types.EventEmitter
}

var _ parser.Decoder = (*msgpackDecoder)(nil)

// Add decodes one Engine.IO message. Upstream hands binary messages over
// as buffers (readers) and text messages as *types.StringBuffer;
// socket.io-msgpack-parser sends binary messages only.
func (d *msgpackDecoder) Add(data any) error {
	var msg []byte
	switch x := data.(type) {
	case string, *strings.Reader, *types.StringBuffer:
		return msgpackError("a text message (a client using the default parser?)")
	case []byte:
		msg = x
	case byteser:
		msg = x.Bytes()
	case io.Reader:
		var err error
		if msg, err = io.ReadAll(x); err != nil {
			return fmt.Errorf("%w: %w", errMsgpackPacket, err)
		}
	default:
		return msgpackError("unexpected message type %T", data)
	}
	p, err := decodeMsgpackPacket(msg)
	if err != nil {
		return err
	}
	d.Emit("decoded", p)
	return nil
}

// Destroy implements parser.Decoder; a decoder keeps no state between
// messages.
func (d *msgpackDecoder) Destroy() {}

// decodeMsgpackPacket decodes and checks one packet: a map whose type is an
// integer from CONNECT to CONNECT_ERROR, nsp a string, id (if present) a
// non-negative integer, and data of the packet type's shape. Other members
// (socket.io-client sends its emit options) are ignored.
func decodeMsgpackPacket(msg []byte) (*parser.Packet, error) {
	r := mpReader{b: msg}
	v, err := r.value(0)
	if err != nil {
		return nil, err
	}
	if r.pos != len(msg) {
		return nil, msgpackError("%d trailing bytes", len(msg)-r.pos)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, msgpackError("a packet is a map, got %T", v)
	}
	typ, ok := msgpackInt(m["type"])
	if !ok || typ < int64(parser.CONNECT) || typ > int64(parser.CONNECT_ERROR) {
		return nil, msgpackError("invalid packet type")
	}
	nsp, ok := m["nsp"].(string)
	if !ok {
		return nil, msgpackError("invalid namespace")
	}
	if len(nsp) > parser.DefaultMaxNamespaceLength {
		return nil, msgpackError("namespace longer than %d bytes", parser.DefaultMaxNamespaceLength)
	}
	p := &parser.Packet{Type: parser.PacketType(typ), Nsp: nsp}
	data, hasData := m["data"]
	if !msgpackDataValid(p.Type, data, hasData) {
		return nil, msgpackError("invalid payload for packet type %v", p.Type)
	}
	p.Data = data
	if idv, ok := m["id"]; ok {
		id, ok := msgpackID(idv)
		if !ok {
			return nil, msgpackError("invalid packet id")
		}
		p.Id = &id
	}
	return p, nil
}

// msgpackDataValid: CONNECT data is absent or a map, DISCONNECT has none,
// CONNECT_ERROR's is a string or a map, an ACK's an array, an EVENT's a
// non-empty array whose first element, the event name, is a string that
// is not a reserved name.
func msgpackDataValid(typ parser.PacketType, data any, present bool) bool {
	switch typ {
	case parser.CONNECT:
		_, isMap := data.(map[string]any)
		return !present || isMap
	case parser.DISCONNECT:
		return !present
	case parser.CONNECT_ERROR:
		switch data.(type) {
		case string, map[string]any:
			return true
		}
		return false
	case parser.ACK:
		_, ok := data.([]any)
		return ok
	case parser.EVENT:
		a, ok := data.([]any)
		if !ok || len(a) == 0 {
			return false
		}
		name, ok := a[0].(string)
		return ok && !parser.ReservedEvents.Has(name)
	}
	return false
}

// msgpackInt returns v as an int64 if it is an integer, written as a
// MessagePack integer or as an integral float (JavaScript's isInteger).
func msgpackInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
			return int64(x), true
		}
	}
	return 0, false
}

// msgpackID returns v as a packet id: a non-negative integer.
func msgpackID(v any) (uint64, bool) {
	switch x := v.(type) {
	case int64:
		return uint64(x), x >= 0
	case uint64:
		return x, true
	case float64:
		if x == math.Trunc(x) && x >= 0 && x < 1<<64 {
			return uint64(x), true
		}
	}
	return 0, false
}

// msgpackUndefined is notepack.io's undefined (fixext 1 of type 0).
type msgpackUndefined struct{}

// mpReader reads MessagePack values from a byte slice. Every length is
// checked against the bytes left before anything is allocated.
type mpReader struct {
	b   []byte
	pos int
}

func (r *mpReader) need(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, msgpackError("truncated at offset %d", r.pos)
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *mpReader) uintN(n int) (uint64, error) {
	s, err := r.need(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	default:
		return binary.BigEndian.Uint64(s), nil
	}
}

// length reads an n-byte length and checks it against the bytes left:
// every element, and every byte of a string, takes at least one.
func (r *mpReader) length(n int) (int, error) {
	v, err := r.uintN(n)
	if err != nil {
		return 0, err
	}
	if v > uint64(len(r.b)-r.pos) {
		return 0, msgpackError("length %d at offset %d exceeds the message", v, r.pos)
	}
	return int(v), nil
}

// value reads one value; depth is the nesting of the containers around it.
func (r *mpReader) value(depth int) (any, error) {
	s, err := r.need(1)
	if err != nil {
		return nil, err
	}
	c := s[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xf0 == 0x80:
		return r.mapValue(int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return r.arrayValue(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return r.str(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6: // bin 8, 16, 32
		n, err := r.length(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		return r.bin(n)
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32
		n, err := r.length(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return r.ext(n, false)
	case 0xca:
		v, err := r.uintN(4)
		if err != nil {
			return nil, err
		}
		return jsonNumber(float64(math.Float32frombits(uint32(v)))), nil
	case 0xcb:
		v, err := r.uintN(8)
		if err != nil {
			return nil, err
		}
		return jsonNumber(math.Float64frombits(v)), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := r.uintN(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if v > math.MaxInt64 {
			return v, nil
		}
		return int64(v), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		v, err := r.uintN(n)
		if err != nil {
			return nil, err
		}
		switch n {
		case 1:
			return int64(int8(v)), nil
		case 2:
			return int64(int16(v)), nil
		case 4:
			return int64(int32(v)), nil
		}
		return int64(v), nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		return r.ext(1<<(c-0xd4), true)
	case 0xd9, 0xda, 0xdb:
		n, err := r.length(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return r.str(n)
	case 0xdc, 0xdd:
		n, err := r.length(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return r.arrayValue(n, depth)
	case 0xde, 0xdf:
		n, err := r.length(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return r.mapValue(n, depth)
	}
	return nil, msgpackError("unknown type 0x%02x at offset %d", c, r.pos-1)
}

func (r *mpReader) str(n int) (string, error) {
	s, err := r.need(n)
	if err != nil {
		return "", err
	}
	return string(s), nil
}

// bin copies: upstream may reuse the message's buffer.
func (r *mpReader) bin(n int) ([]byte, error) {
	s, err := r.need(n)
	if err != nil {
		return nil, err
	}
	return append([]byte{}, s...), nil
}

// ext reads an extension value of n data bytes. notepack.io writes three:
// undefined (fixext 1, type 0), Date (fixext 8, type 0: milliseconds since
// the epoch, int64) and, in Node, ArrayBuffer (ext 8/16/32, type 0).
func (r *mpReader) ext(n int, fixed bool) (any, error) {
	s, err := r.need(1)
	if err != nil {
		return nil, err
	}
	typ := int8(s[0])
	data, err := r.need(n)
	if err != nil {
		return nil, err
	}
	switch {
	case typ != 0:
	case !fixed:
		return append([]byte{}, data...), nil
	case n == 1:
		return msgpackUndefined{}, nil
	case n == 8:
		return jsDateJSON(int64(binary.BigEndian.Uint64(data))), nil
	}
	return nil, msgpackError("extension type %d of %d bytes is not supported", typ, n)
}

func (r *mpReader) arrayValue(n, depth int) (any, error) {
	if depth >= maxMsgpackDepth {
		return nil, msgpackError("nested deeper than %d", maxMsgpackDepth)
	}
	a := make([]any, 0, min(n, 64))
	for range n {
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, undef := v.(msgpackUndefined); undef {
			v = nil // as JSON.stringify
		}
		a = append(a, v)
	}
	return a, nil
}

func (r *mpReader) mapValue(n, depth int) (any, error) {
	if depth >= maxMsgpackDepth {
		return nil, msgpackError("nested deeper than %d", maxMsgpackDepth)
	}
	m := make(map[string]any, min(n, 64))
	for range n {
		k, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, msgpackError("map key is %T, not a string", k)
		}
		v, err := r.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if _, undef := v.(msgpackUndefined); undef {
			delete(m, key) // as JSON.stringify; the last member wins
			continue
		}
		m[key] = v
	}
	return m, nil
}

// jsonNumber returns f, or nil for NaN and infinities, which JSON cannot
// hold (JSON.stringify writes null).
func jsonNumber(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return f
}

// jsDateJSON returns what JSON.stringify writes for the Date of ms
// milliseconds since the epoch: Date.prototype.toISOString's text, or null
// outside JavaScript's Date range.
func jsDateJSON(ms int64) any {
	const maxDate = 8.64e15
	if ms > maxDate || ms < -maxDate {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	var year string
	switch y := t.Year(); {
	case y < 0:
		year = fmt.Sprintf("-%06d", -y)
	case y > 9999:
		year = fmt.Sprintf("+%06d", y)
	default:
		year = fmt.Sprintf("%04d", y)
	}
	return year + t.Format("-01-02T15:04:05.000Z")
}
