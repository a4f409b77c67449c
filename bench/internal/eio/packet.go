package eio

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about bytes that are not a valid
// packet or not the JSON this package expects.
var ErrMalformed = errors.New("eio: malformed packet")

// Kind is the type of a packet: an Engine.IO packet type, or for an
// Engine.IO message ("4") the Socket.IO packet type it carries.
type Kind uint8

// The packet kinds. The comment shows the packet on the wire (namespace "/").
const (
	Invalid      Kind = iota
	Open              // "0{...}": Engine.IO handshake; Data is the JSON object
	Close             // "1"
	Ping              // "2": answer with Pong
	Pong              // "3"
	Upgrade           // "5"
	Noop              // "6"
	Connect           // "40{...}": Socket.IO CONNECT; Data is {"sid":...}
	Disconnect        // "41"
	Event             // "42[...]": Data is the JSON array ["name",args...]
	Ack               // "43[...]"
	ConnectError      // "44{...}": Data is the error object
	BinaryEvent       // "45N-[...]": the attachments follow as binary frames
	BinaryAck         // "46N-[...]"
)

var kindNames = [...]string{
	Invalid: "invalid", Open: "open", Close: "close", Ping: "ping", Pong: "pong",
	Upgrade: "upgrade", Noop: "noop", Connect: "connect", Disconnect: "disconnect",
	Event: "event", Ack: "ack", ConnectError: "connect_error",
	BinaryEvent: "binary_event", BinaryAck: "binary_ack",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Packet is one decoded packet. Namespace and Data alias the bytes given to
// Parse (for a Conn: valid until its next Next call).
type Packet struct {
	Kind Kind
	// Namespace is the Socket.IO namespace when it is not "/", else empty.
	Namespace []byte
	// ID is the acknowledgement id, -1 when the packet has none.
	ID int64
	// Attachments is the number of binary attachments of a BinaryEvent or
	// BinaryAck.
	Attachments int
	// Data is what follows the header: the JSON of a Socket.IO packet, the
	// handshake object of Open, the payload of Ping/Pong/Engine.IO messages.
	Data []byte
}

// maxIDDigits bounds an ack id or attachment count so that it fits an int64.
const maxIDDigits = 18

// Parse decodes one Engine.IO packet (one WebSocket text frame) and, for an
// Engine.IO message, the Socket.IO packet inside. It does not allocate and
// does not look into the JSON beyond its first byte. Errors wrap
// ErrMalformed.
func Parse(b []byte) (Packet, error) {
	p := Packet{ID: -1}
	if len(b) == 0 {
		return p, fmt.Errorf("%w: empty", ErrMalformed)
	}
	switch b[0] {
	case '0':
		p.Kind = Open
	case '1':
		p.Kind = Close
	case '2':
		p.Kind = Ping
	case '3':
		p.Kind = Pong
	case '4':
		return parseSocketIO(b[1:])
	case '5':
		p.Kind = Upgrade
	case '6':
		p.Kind = Noop
	default:
		return p, fmt.Errorf("%w: Engine.IO packet type %q", ErrMalformed, b[0])
	}
	p.Data = b[1:]
	if p.Kind == Open && (len(p.Data) == 0 || p.Data[0] != '{') {
		return Packet{ID: -1}, fmt.Errorf("%w: open packet without a JSON object", ErrMalformed)
	}
	return p, nil
}

// parseSocketIO decodes `<type>[<attachments>-][<namespace>,][<id>][<json>]`.
func parseSocketIO(b []byte) (Packet, error) {
	p := Packet{ID: -1}
	if len(b) == 0 {
		return p, fmt.Errorf("%w: empty Socket.IO packet", ErrMalformed)
	}
	if b[0] < '0' || b[0] > '6' {
		return p, fmt.Errorf("%w: Socket.IO packet type %q", ErrMalformed, b[0])
	}
	kind := Connect + Kind(b[0]-'0')
	b = b[1:]
	if kind == BinaryEvent || kind == BinaryAck {
		n, rest, ok := digits(b)
		if !ok || len(rest) == 0 || rest[0] != '-' {
			return p, fmt.Errorf("%w: %v without an attachment count", ErrMalformed, kind)
		}
		p.Attachments = int(n)
		b = rest[1:]
	}
	if len(b) > 0 && b[0] == '/' {
		end := bytes.IndexByte(b, ',')
		if end < 0 {
			p.Namespace, b = b, nil // "41/chat": nothing follows
		} else {
			p.Namespace, b = b[:end], b[end+1:]
		}
		if len(p.Namespace) == 1 { // "/," is the default namespace spelled out
			p.Namespace = nil
		}
	}
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		n, rest, ok := digits(b)
		if !ok {
			return p, fmt.Errorf("%w: ack id too long", ErrMalformed)
		}
		p.ID, b = n, rest
	}
	switch kind {
	case Connect, ConnectError:
		if len(b) > 0 && b[0] != '{' {
			return p, fmt.Errorf("%w: %v data is not a JSON object", ErrMalformed, kind)
		}
		if kind == ConnectError && len(b) == 0 {
			return p, fmt.Errorf("%w: connect_error without data", ErrMalformed)
		}
	case Event, Ack, BinaryEvent, BinaryAck:
		if len(b) == 0 || b[0] != '[' {
			return p, fmt.Errorf("%w: %v data is not a JSON array", ErrMalformed, kind)
		}
	case Disconnect:
		if len(b) > 0 {
			return p, fmt.Errorf("%w: disconnect with data", ErrMalformed)
		}
	}
	p.Kind, p.Data = kind, b
	return p, nil
}

// digits reads a run of at most maxIDDigits decimal digits at the start of b.
func digits(b []byte) (n int64, rest []byte, ok bool) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i == maxIDDigits {
			return 0, b, false
		}
		n = n*10 + int64(b[i]-'0')
		i++
	}
	return n, b[i:], i > 0
}
