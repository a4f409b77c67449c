package parser

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/herald-rt/herald/events"
)

// The default parser: socket.io-parser 4.2's text format. A packet is one
// text message, <type>[<attachments>-][<nsp>,][<id>][<json>]; an Event or
// an Ack with binary data is a BINARY_EVENT or BINARY_ACK whose JSON holds
// placeholders {"_placeholder":true,"num":N}, followed by one binary
// message per attachment.

// maxSafeID is the largest ack id the default decoder accepts: 2^53-1,
// Number.MAX_SAFE_INTEGER, the largest id Node's Number() reads exactly.
const maxSafeID = 1<<53 - 1

// placeholderPrefix starts the placeholder of an attachment; its number
// and "}" follow (JSON.stringify of {_placeholder: true, num: N}).
const placeholderPrefix = `{"_placeholder":true,"num":`

// Default returns socket.io-parser's format, the format of Socket.IO's
// default parser, with decoders that accept up to DefaultMaxAttachments
// attachments per packet.
func Default() Parser { return defaultParser{maxAttachments: DefaultMaxAttachments} }

type defaultParser struct {
	maxAttachments int
}

var _ Parser = defaultParser{}

// Encode writes p as socket.io-parser's Encoder does: one text message,
// followed, for an Event or an Ack whose Data holds events.Bytes markers,
// by one binary message per marker, in document order. Data is written
// as it is (white space around it dropped), each marker replaced by its
// placeholder.
func (defaultParser) Encode(p *Packet) ([]Message, error) {
	if p == nil {
		return nil, invalidf("nil packet")
	}
	typ, err := encodeType(p.Type)
	if err != nil {
		return nil, err
	}
	if err := checkNsp(p.Nsp); err != nil {
		return nil, err
	}
	data := trimSpace(p.Data)
	var markers []marker
	if p.Data != nil {
		flags := scanFlags(0)
		if typ == Event || typ == Ack {
			flags = scanMarkers
		}
		s, err := scanJSON(data, flags)
		if err != nil {
			return nil, err
		}
		markers = s.markers
	}
	if len(markers) > 0 {
		typ += BinaryEvent - Event // Event -> BinaryEvent, Ack -> BinaryAck
	}

	b := make([]byte, 0, 24+len(p.Nsp)+len(data)+len(markers)*len(placeholderPrefix))
	b = appendHeader(b, typ, len(markers), p.Nsp, p.ID, p.HasID)
	if p.Data != nil {
		last := 0
		for i, m := range markers {
			b = append(b, data[last:m.start]...)
			b = append(b, placeholderPrefix...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, '}')
			last = m.end
		}
		b = append(b, data[last:]...)
	}
	msgs := make([]Message, 1, 1+len(markers))
	msgs[0] = Message{Data: b}
	for _, m := range markers {
		msgs = append(msgs, Message{Data: m.data, Binary: true})
	}
	return msgs, nil
}

// encodeType returns the type Encode starts from: BinaryEvent and
// BinaryAck as Event and Ack, the attachments decide.
func encodeType(t Type) (Type, error) {
	switch t {
	case BinaryEvent:
		return Event, nil
	case BinaryAck:
		return Ack, nil
	case Connect, Disconnect, Event, Ack, ConnectError:
		return t, nil
	}
	return 0, invalidf("packet type %d", byte(t))
}

// checkNsp refuses a namespace the text format cannot carry: one that
// does not start with "/" (a decoder would read it as data) or holds a
// ',' (which ends the namespace). "" stands for "/".
func checkNsp(nsp string) error {
	if nsp != "" && (nsp[0] != '/' || strings.IndexByte(nsp, ',') >= 0) {
		return invalidf("namespace %q cannot be written", nsp)
	}
	return nil
}

// appendHeader appends <type>[<attachments>-][<nsp>,][<id>].
func appendHeader(b []byte, typ Type, attachments int, nsp string, id uint64, hasID bool) []byte {
	b = append(b, '0'+byte(typ))
	if typ == BinaryEvent || typ == BinaryAck {
		b = strconv.AppendInt(b, int64(attachments), 10)
		b = append(b, '-')
	}
	if nsp != "" && nsp != "/" {
		b = append(b, nsp...)
		b = append(b, ',')
	}
	if hasID {
		b = strconv.AppendUint(b, id, 10)
	}
	return b
}

// trimSpace returns js without JSON white space around it.
func trimSpace(js []byte) []byte {
	for len(js) > 0 && isSpace(js[0]) {
		js = js[1:]
	}
	for len(js) > 0 && isSpace(js[len(js)-1]) {
		js = js[:len(js)-1]
	}
	return js
}

// AppendEvent appends to dst the default parser's text message for an
// Event packet without binary data, [name, args...] to the namespace
// nsp ("" or "/" for the main one), with the ack id id if hasID: exactly
// what Encode writes for that packet. It is the fast path of broadcasts,
// which write a packet once for many connections.
//
// name may be any string; it is escaped as JSON.stringify escapes it.
// Each arg is written as it is and must be one JSON value without an
// events.Bytes marker (the caller checks events.HasBytesJSON first and
// uses Encode for binary data). On error, which wraps ErrInvalidPacket
// (an arg that is not JSON or holds a marker, a namespace Encode refuses),
// dst is returned unchanged.
func AppendEvent(dst []byte, nsp, name string, id uint64, hasID bool, args []json.RawMessage) ([]byte, error) {
	if err := checkNsp(nsp); err != nil {
		return dst, err
	}
	for i, a := range args {
		s, err := scanJSONAt(a, scanMarkers, 1) // inside the packet's array
		if err != nil {
			return dst, invalidf("argument %d: %v", i, err)
		}
		if len(s.markers) > 0 {
			return dst, invalidf("argument %d holds binary data", i)
		}
	}
	dst = appendHeader(dst, Event, 0, nsp, id, hasID)
	dst = append(dst, '[')
	dst = appendJSONString(dst, name)
	for _, a := range args {
		dst = append(dst, ',')
		dst = append(dst, a...)
	}
	return append(dst, ']'), nil
}

// NewDecoder returns a decoder of socket.io-parser's Decoder.
func (p defaultParser) NewDecoder() Decoder {
	return &defaultDecoder{maxAttachments: p.maxAttachments}
}

// defaultDecoder decodes one connection's messages.
type defaultDecoder struct {
	maxAttachments int
	pending        *binaryPacket // nil unless attachments are awaited
}

// binaryPacket is a binary packet waiting for its attachments.
type binaryPacket struct {
	p           *Packet // Data is the JSON text with placeholders
	attachments int
	holders     []placeholder
	markers     [][]byte // the marker JSON of each attachment received
}

// Add decodes one message as socket.io-parser's Decoder.add does. Where
// Node is looser, Add refuses (see decodeText); what it accepts, Node
// accepts the same way.
func (d *defaultDecoder) Add(m Message) (*Packet, error) {
	p, err := d.add(m)
	if err != nil {
		d.Reset()
	}
	return p, err
}

func (d *defaultDecoder) add(m Message) (*Packet, error) {
	if m.Binary {
		if d.pending == nil {
			return nil, invalidf("got binary data when not reconstructing a packet")
		}
		bp := d.pending
		// The attachment becomes its marker at once: m.Data is not kept.
		bp.markers = append(bp.markers, events.AppendBytesJSON(nil, m.Data))
		if len(bp.markers) < bp.attachments {
			return nil, nil
		}
		d.pending = nil
		return bp.reconstruct(), nil
	}
	if d.pending != nil {
		return nil, invalidf("got plaintext data when reconstructing a packet")
	}
	p, bp, err := d.decodeText(m.Data)
	if err != nil {
		return nil, err
	}
	if bp != nil {
		d.pending = bp
		return nil, nil
	}
	return p, nil
}

// Reset drops a partly received binary packet.
func (d *defaultDecoder) Reset() { d.pending = nil }

// decodeText decodes a text message as socket.io-parser's decodeString,
// then checks its payload as isPayloadValid. It returns the packet, or,
// for a BINARY_EVENT or BINARY_ACK, the packet waiting for attachments.
//
// Add is stricter than Node where Node reads nonsense:
//   - The message must be valid UTF-8 (a JavaScript string cannot hold
//     anything else; Engine.IO's transports see to it).
//   - The type must be a digit from 0 to 6 (Node reads "" and white space
//     as 0, Number("") being 0).
//   - The attachment count must be decimal digits (Node's Number() also
//     takes "0x1", "1e0", " 1").
//   - The ack id is decimal digits up to 2^53-1 (Number.MAX_SAFE_INTEGER;
//     Node would round larger ones), and the JSON may not start with white
//     space: Node would read that white space as (part of) an ack id, since
//     Number(" ") is 0, and decode an id nobody sent.
//   - EVENT, ACK, CONNECT_ERROR and their binary forms need a payload: Node
//     checks a payload only when there is one, and decodes "2" as an event
//     without data, on which socket.io's server then fails.
//   - JSON may be nested at most 10000 levels deep (encoding/json's limit;
//     V8's JSON.parse has none).
//   - A placeholder's num must be an integer below the attachment count,
//     checked when the text arrives (Node checks at the last attachment,
//     and reads a fraction such as 0.5 as a missing attachment:
//     undefined).
//   - No two placeholders may name the same attachment. Node hands them the
//     same Buffer; herald would copy the attachment into each, so that a
//     client could make one message take many times its size.
//     socket.io-client numbers every binary value anew.
func (d *defaultDecoder) decodeText(msg []byte) (*Packet, *binaryPacket, error) {
	if !utf8.Valid(msg) {
		return nil, nil, invalidf("text message is not valid UTF-8")
	}
	if len(msg) == 0 || msg[0] < '0' || msg[0] > '6' {
		return nil, nil, invalidf("unknown packet type")
	}
	typ := Type(msg[0] - '0')
	i := 1
	attachments := 0
	if typ == BinaryEvent || typ == BinaryAck {
		dash := i
		for dash < len(msg) && msg[dash] != '-' {
			dash++
		}
		if dash == len(msg) || dash == i {
			return nil, nil, invalidf("Illegal attachments")
		}
		for _, c := range msg[i:dash] {
			if !isDigit(c) {
				return nil, nil, invalidf("Illegal attachments")
			}
			if attachments <= d.maxAttachments { // stays small
				attachments = attachments*10 + int(c-'0')
			}
		}
		switch {
		case attachments < 1:
			return nil, nil, invalidf("Illegal attachments")
		case attachments > d.maxAttachments:
			return nil, nil, invalidf("too many attachments")
		}
		i = dash + 1
	}

	p := &Packet{Type: typ, Nsp: "/"}
	if i < len(msg) && msg[i] == '/' {
		end := i
		for end < len(msg) && msg[end] != ',' {
			end++
		}
		if end-i > MaxNamespaceLength {
			return nil, nil, invalidf("namespace longer than %d bytes", MaxNamespaceLength)
		}
		p.Nsp = string(msg[i:end])
		i = min(end+1, len(msg))
	}

	if i < len(msg) && isDigit(msg[i]) {
		var id uint64
		for ; i < len(msg) && isDigit(msg[i]); i++ {
			id = id*10 + uint64(msg[i]-'0')
			if id > maxSafeID {
				return nil, nil, invalidf("ack id larger than 2^53-1")
			}
		}
		p.ID, p.HasID = id, true
	}

	if i == len(msg) {
		switch typ {
		case Connect, Disconnect:
			return p, nil, nil
		}
		return nil, nil, invalidf("invalid payload: %v without data", typ)
	}
	if isSpace(msg[i]) {
		return nil, nil, invalidf("white space before the payload at offset %d", i)
	}
	js := msg[i:]
	flags := scanFlags(0)
	if attachments > 0 {
		flags = scanPlaceholders
	}
	s, err := scanJSON(js, flags)
	if err != nil {
		return nil, nil, invalidf("invalid payload: %v", err)
	}
	if !payloadValid(typ, js, s.first) {
		return nil, nil, invalidf("invalid payload for %v", typ)
	}
	p.Data = slices.Clone(js)
	if attachments == 0 {
		return p, nil, nil
	}
	used := make([]bool, attachments)
	for _, h := range s.holders {
		if !attachmentIndexValid(js, h.num, attachments) {
			return nil, nil, invalidf("illegal attachments: placeholder at offset %d", i+h.start)
		}
		if n := attachmentIndex(js, h.num); used[n] {
			return nil, nil, invalidf("illegal attachments: attachment %d used twice", n)
		} else {
			used[n] = true
		}
	}
	p.Type -= BinaryEvent - Event // BinaryEvent -> Event, BinaryAck -> Ack
	return nil, &binaryPacket{p: p, attachments: attachments, holders: s.holders}, nil
}

// payloadValid is socket.io-parser's isPayloadValid for the JSON text js,
// already checked, whose top-level array (if it is one) starts with the
// element at first.
func payloadValid(typ Type, js []byte, first span) bool {
	switch typ {
	case Connect:
		return js[0] == '{'
	case Disconnect:
		return false // a payload is one too many
	case ConnectError:
		return js[0] == '"' || js[0] == '{'
	case Event, BinaryEvent:
		if js[0] != '[' || first.start < 0 {
			return false
		}
		name := js[first.start:first.end]
		switch c := name[0]; {
		case c == '-' || isDigit(c):
			return true
		case c != '"':
			return false
		}
		return !isReservedJSON(name)
	case Ack, BinaryAck:
		return js[0] == '['
	}
	return false
}

// isReservedJSON reports whether the JSON string literal lit holds a
// reserved event name.
func isReservedJSON(lit []byte) bool {
	inner := lit[1 : len(lit)-1]
	if slices.Contains(inner, '\\') {
		var name string
		return json.Unmarshal(lit, &name) == nil && isReserved(name)
	}
	return isReserved(string(inner))
}

// attachmentIndexValid reports whether the num member at js[num] is an
// integer from 0 to attachments-1 (-0 and 1.0 count as 0 and 1, as in
// JavaScript).
func attachmentIndexValid(js []byte, num span, attachments int) bool {
	if num.start < 0 {
		return false // typeof undefined !== "number"
	}
	text := string(js[num.start:num.end])
	if c := text[0]; c != '-' && !isDigit(c) {
		return false // not a number
	}
	f, err := strconv.ParseFloat(text, 64)
	return err == nil && f >= 0 && f < float64(attachments) && f == float64(int(f))
}

// reconstruct returns the packet with each placeholder replaced by the
// marker of its attachment, as socket.io-parser's reconstructPacket
// replaces it by the Buffer.
func (bp *binaryPacket) reconstruct() *Packet {
	p := bp.p
	js := p.Data
	size := len(js)
	for _, h := range bp.holders {
		size += len(bp.markers[attachmentIndex(js, h.num)]) - (h.end - h.start)
	}
	out := make([]byte, 0, size)
	last := 0
	for _, h := range bp.holders {
		out = append(out, js[last:h.start]...)
		out = append(out, bp.markers[attachmentIndex(js, h.num)]...)
		last = h.end
	}
	p.Data = append(out, js[last:]...)
	return p
}

// attachmentIndex returns the index attachmentIndexValid checked.
func attachmentIndex(js []byte, num span) int {
	f, _ := strconv.ParseFloat(string(js[num.start:num.end]), 64)
	return int(f)
}
