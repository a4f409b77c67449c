package engineio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Engine.IO v4 packet types, as their first byte on the wire.
const (
	typeOpen    = '0'
	typeClose   = '1'
	typePing    = '2'
	typePong    = '3'
	typeMessage = '4'
	typeUpgrade = '5'
	typeNoop    = '6'
)

// recordSeparator separates the packets of a long-polling payload.
const recordSeparator = '\x1e'

// ErrInvalidPacket is wrapped by the errors of the packet decoder; the
// session that sent such a packet is closed ("parse error").
var ErrInvalidPacket = errors.New("engineio: invalid packet")

// maxFrameHeader is the longest header of a WebSocket frame the server
// writes (unmasked: 2 bytes, 2 more for 16-bit lengths, 8 for 64-bit ones).
const maxFrameHeader = 10

// Message is one outgoing Engine.IO packet, immutable once made, so that
// one Message can be sent to any number of sessions: its WebSocket frame
// is built once, when the Message is made, and every WebSocket session
// writes the same bytes.
type Message struct {
	// buf holds the frame: header space (the header is right-aligned
	// against maxFrameHeader), then the packet as a WebSocket message
	// carries it.
	buf     []byte
	off     int // where the frame starts in buf
	binary  bool
	control bool // a WebSocket control frame, not an Engine.IO packet
}

// NewTextMessage returns the message packet ("4") carrying the text data.
// data is copied.
func NewTextMessage(data []byte) *Message {
	return AppendTextMessage(len(data), func(b []byte) []byte { return append(b, data...) })
}

// AppendTextMessage returns the message packet whose text build appends to
// the slice it is given; size is a hint of its length. It lets a caller
// encode straight into the frame's buffer.
func AppendTextMessage(size int, build func(b []byte) []byte) *Message {
	b := make([]byte, maxFrameHeader+1, maxFrameHeader+1+size)
	b[maxFrameHeader] = typeMessage
	return finishFrame(build(b), false)
}

// NewBinaryMessage returns the message packet carrying the binary data.
// data is copied.
func NewBinaryMessage(data []byte) *Message {
	b := make([]byte, maxFrameHeader, maxFrameHeader+len(data))
	return finishFrame(append(b, data...), true)
}

// newControlFrame returns a WebSocket control frame (a pong: 0x8a) with
// data, at most 125 bytes (gorilla refuses longer pings).
func newControlFrame(op byte, data string) *Message {
	b := make([]byte, maxFrameHeader, maxFrameHeader+len(data))
	m := finishFrame(append(b, data...), false)
	m.buf[m.off] = op
	m.control = true
	return m
}

// newPacket returns a control packet of type typ with text data.
func newPacket(typ byte, data string) *Message {
	b := make([]byte, maxFrameHeader+1, maxFrameHeader+1+len(data))
	b[maxFrameHeader] = typ
	return finishFrame(append(b, data...), false)
}

// finishFrame writes the WebSocket frame header in front of the payload
// b[maxFrameHeader:].
func finishFrame(b []byte, bin bool) *Message {
	n := len(b) - maxFrameHeader
	op := byte(0x81) // FIN, text
	if bin {
		op = 0x82 // FIN, binary
	}
	var off int
	switch {
	case n <= 125:
		off = maxFrameHeader - 2
		b[off+1] = byte(n)
	case n <= 0xffff:
		off = maxFrameHeader - 4
		b[off+1] = 126
		binary.BigEndian.PutUint16(b[off+2:], uint16(n))
	default:
		off = 0
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	b[off] = op
	return &Message{buf: b, off: off, binary: bin}
}

// frame returns the message's WebSocket frame.
func (m *Message) frame() []byte { return m.buf[m.off:] }

// payload returns what the WebSocket message carries: the packet's text
// form ("4hello") or, for binary messages, the raw data.
func (m *Message) payload() []byte { return m.buf[maxFrameHeader:] }

// Binary reports whether m carries binary data.
func (m *Message) Binary() bool { return m.binary }

// Data returns the message's data, without the packet type.
func (m *Message) Data() []byte {
	if m.binary {
		return m.payload()
	}
	return m.payload()[1:]
}

// size is what m counts against a session's buffer bound.
func (m *Message) size() int { return len(m.buf) - m.off }

// Pre-made control packets.
var (
	pingPacket      = newPacket(typePing, "")
	pongProbePacket = newPacket(typePong, "probe")
	noopPacket      = newPacket(typeNoop, "")
	closePacket     = newPacket(typeClose, "")
)

// appendPayload appends msgs as a long-polling payload: the packets'
// text forms separated by the record separator, binary data as "b" and
// its standard base64.
func appendPayload(b []byte, msgs []*Message) []byte {
	for i, m := range msgs {
		if i > 0 {
			b = append(b, recordSeparator)
		}
		if m.binary {
			b = append(b, 'b')
			b = base64.StdEncoding.AppendEncode(b, m.payload())
			continue
		}
		b = append(b, m.payload()...)
	}
	return b
}

// payloadSize returns the length of appendPayload's output.
func payloadSize(msgs []*Message) int {
	n := 0
	for i, m := range msgs {
		if i > 0 {
			n++
		}
		if m.binary {
			n += 1 + base64.StdEncoding.EncodedLen(len(m.payload()))
			continue
		}
		n += len(m.payload())
	}
	return n
}

// packet is one received packet: its type and its data (without the type
// byte for text packets). data aliases the buffer it was read from.
type packet struct {
	typ    byte
	data   []byte
	binary bool
}

// decodeText decodes a packet received as text: a WebSocket text message,
// or one record of a long-polling payload, where "b" starts base64 binary
// data.
func decodeText(b []byte, inPayload bool) (packet, error) {
	if len(b) == 0 {
		return packet{}, fmt.Errorf("%w: empty", ErrInvalidPacket)
	}
	switch t := b[0]; {
	case t >= typeOpen && t <= typeNoop:
		return packet{typ: t, data: b[1:]}, nil
	case t == 'b' && inPayload:
		data, err := base64.StdEncoding.AppendDecode(nil, b[1:])
		if err != nil {
			return packet{}, fmt.Errorf("%w: base64: %w", ErrInvalidPacket, err)
		}
		return packet{typ: typeMessage, data: data, binary: true}, nil
	}
	return packet{}, fmt.Errorf("%w: unknown type %q", ErrInvalidPacket, b[0])
}

// payloadReader iterates over the packets of a long-polling payload
// without copying them or decoding more than one at a time.
type payloadReader struct {
	rest []byte
	done bool
}

// next returns the next packet; ok is false at the end.
func (r *payloadReader) next() (p packet, ok bool, err error) {
	if r.done {
		return packet{}, false, nil
	}
	rec := r.rest
	if i := bytes.IndexByte(r.rest, recordSeparator); i >= 0 {
		rec, r.rest = r.rest[:i], r.rest[i+1:]
	} else {
		r.done = true
	}
	p, err = decodeText(rec, true)
	if err != nil {
		r.done = true
		return packet{}, false, err
	}
	return p, true, nil
}

// toValidUTF8 replaces each maximal subpart of an ill-formed sequence in b
// with U+FFFD, as Node's UTF-8 decoder (WHATWG's) does to a long-polling
// body: the text a handler gets is UTF-8 on either transport.
func toValidUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			out = append(out, b[:n]...)
			b = b[n:]
			continue
		}
		out = utf8.AppendRune(out, utf8.RuneError)
		b = b[maximalSubpart(b):]
	}
	return out
}

// maximalSubpart returns the length of the ill-formed sequence at the start
// of b that one U+FFFD replaces: a lead byte and the continuation bytes
// that could still have completed it, or a single byte.
func maximalSubpart(b []byte) int {
	need, lo, hi := 0, byte(0x80), byte(0xbf)
	switch c := b[0]; {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		need, lo = 2, 0xa0
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
		need = 2
	case c == 0xed:
		need, hi = 2, 0x9f
	case c == 0xf0:
		need, lo = 3, 0x90
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	case c == 0xf4:
		need, hi = 3, 0x8f
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b) && b[n] >= lo && b[n] <= hi; n++ {
		lo, hi = 0x80, 0xbf
	}
	return n
}
