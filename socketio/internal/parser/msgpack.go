package parser

import (
	"math"

	"github.com/herald-rt/herald/internal/msgpack"
)

// The MessagePack parser, for clients that use socket.io-msgpack-parser
// (npm, 3.x). Each Socket.IO packet is one MessagePack map {type, data,
// nsp, id?}, written with notepack.io, sent as one binary Engine.IO
// message; binary data is MessagePack bin inside it, so there are no
// attachments and no BINARY_EVENT or BINARY_ACK packets.
//
// Outgoing, Data is transcoded directly (msgpack.AppendJSON), so object
// members keep their order; numbers are written as notepack.io writes
// JavaScript numbers (integral values as integers, others as float64),
// and the marker objects of events.Bytes become bin.
//
// Incoming, a packet is checked as socket.io-msgpack-parser's checkPacket
// does, and as Socket.IO's default decoder does for event names, and its
// data is transcoded to the JSON text JSON.stringify would write for what
// notepack.io decodes (see mpReader), bin (and notepack.io's ArrayBuffer
// extension) becoming events.Bytes markers.

// maxMsgpackDepth bounds the nesting of a received packet, the packet's
// own map included, so that hostile input cannot exhaust the stack.
const maxMsgpackDepth = 64

// Msgpack returns socket.io-msgpack-parser's format.
func Msgpack() Parser { return msgpackParser{} }

type msgpackParser struct{}

var _ Parser = msgpackParser{}

// Encode returns p as one binary message.
func (msgpackParser) Encode(p *Packet) ([]Message, error) {
	if p == nil {
		return nil, invalidf("nil packet")
	}
	b, err := appendMsgpackPacket(make([]byte, 0, 32+len(p.Nsp)+len(p.Data)), p)
	if err != nil {
		return nil, err
	}
	return []Message{{Data: b, Binary: true}}, nil
}

// appendMsgpackPacket appends p as socket.io-msgpack-parser's map
// {type, data, nsp, id}; data and id only when set.
func appendMsgpackPacket(b []byte, p *Packet) ([]byte, error) {
	typ, err := encodeType(p.Type)
	if err != nil {
		return nil, err
	}
	n := 2
	if p.Data != nil {
		n++
	}
	if p.HasID {
		n++
	}
	b = msgpack.AppendMapHeader(b, n)
	b = msgpack.AppendInt(msgpack.AppendString(b, "type"), int64(typ))
	if p.Data != nil {
		if b, err = msgpack.AppendJSON(msgpack.AppendString(b, "data"), p.Data, msgpack.JSONOptions{}); err != nil {
			return nil, invalidf("data: %v", err)
		}
	}
	nsp := p.Nsp
	if nsp == "" {
		nsp = "/" // the default parser's empty namespace; the client compares names
	}
	b = msgpack.AppendString(msgpack.AppendString(b, "nsp"), nsp)
	if p.HasID {
		b = msgpack.AppendUint(msgpack.AppendString(b, "id"), p.ID)
	}
	return b, nil
}

// NewDecoder returns a decoder of socket.io-msgpack-parser's Decoder.
func (msgpackParser) NewDecoder() Decoder { return msgpackDecoder{} }

// msgpackDecoder keeps no state between messages.
type msgpackDecoder struct{}

// Add decodes one binary message; socket.io-msgpack-parser sends nothing
// else.
func (msgpackDecoder) Add(m Message) (*Packet, error) {
	if !m.Binary {
		return nil, invalidf("a text message (a client using the default parser?)")
	}
	return decodeMsgpackPacket(m.Data)
}

// Reset implements Decoder; there is nothing to drop.
func (msgpackDecoder) Reset() {}

// decodeMsgpackPacket decodes and checks one packet: a map whose type is
// an integer from CONNECT to CONNECT_ERROR, nsp a string, id (if present)
// a non-negative integer, and data of the packet type's shape. Other
// members (socket.io-client sends its emit options) are checked as
// MessagePack and ignored. A member given twice counts with its last
// value; one whose value is notepack.io's undefined counts as absent.
func decodeMsgpackPacket(msg []byte) (*Packet, error) {
	r := mpReader{b: msg}
	n, isMap, err := r.mapHeader()
	if err != nil {
		return nil, err
	}
	if !isMap {
		if _, _, err := r.value(nil, 0); err != nil {
			return nil, err
		}
		if r.pos != len(msg) {
			return nil, invalidf("%d trailing bytes", len(msg)-r.pos)
		}
		return nil, invalidf("a packet is a map, got %s", mpTypeName(msg[0]))
	}

	var (
		typ, nsp, id any
		hasID        bool
		data         []byte
		dataKind     = mpUndefined
		scratch      []byte
	)
	for range n {
		key, err := r.key()
		if err != nil {
			return nil, err
		}
		// The packet's map is at depth 0, its members' values at depth 1.
		switch string(key) {
		case "type":
			typ, err = r.scalar(1)
		case "nsp":
			nsp, err = r.scalar(1)
		case "id":
			id, err = r.scalar(1)
			_, undef := id.(msgpackUndefined)
			hasID = !undef
		case "data":
			if data == nil {
				data = make([]byte, 0, len(msg))
			}
			data, dataKind, err = r.value(data[:0], 1)
		default:
			scratch, _, err = r.value(scratch[:0], 1)
		}
		if err != nil {
			return nil, err
		}
	}
	if r.pos != len(msg) {
		return nil, invalidf("%d trailing bytes", len(msg)-r.pos)
	}

	t, ok := msgpackInt(typ)
	if !ok || t < int64(Connect) || t > int64(ConnectError) {
		return nil, invalidf("invalid packet type")
	}
	ns, ok := nsp.(string)
	if !ok {
		return nil, invalidf("invalid namespace")
	}
	if len(ns) > MaxNamespaceLength {
		return nil, invalidf("namespace longer than %d bytes", MaxNamespaceLength)
	}
	p := &Packet{Type: Type(t), Nsp: ns}
	present := dataKind != mpUndefined
	if !msgpackDataValid(p.Type, dataKind, data) {
		return nil, invalidf("invalid payload for packet type %v", p.Type)
	}
	if present {
		p.Data = data
	}
	if hasID {
		if p.ID, ok = msgpackID(id); !ok {
			return nil, invalidf("invalid packet id")
		}
		p.HasID = true
	}
	return p, nil
}

// msgpackDataValid: CONNECT data is absent or a map, DISCONNECT has none,
// CONNECT_ERROR's is a string or a map, an ACK's an array, an EVENT's a
// non-empty array whose first element, the event name, is a string that
// is not a reserved name. kind is the data's kind (mpUndefined when
// absent), js its JSON text.
func msgpackDataValid(typ Type, kind mpKind, js []byte) bool {
	switch typ {
	case Connect:
		return kind == mpUndefined || kind == mpMap
	case Disconnect:
		return kind == mpUndefined
	case ConnectError:
		return kind == mpString || kind == mpMap
	case Ack:
		return kind == mpArray
	case Event:
		// The transcoder writes strings one way only: the first element
		// is a string if it starts with '"', and a reserved name is
		// written as itself.
		if kind != mpArray || len(js) < 3 || js[1] != '"' {
			return false
		}
		end := 2
		for js[end] != '"' {
			if js[end] == '\\' {
				return true // no reserved name holds an escape
			}
			end++
		}
		return !isReserved(string(js[2:end]))
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
