package parser

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Type is a Socket.IO packet type. Its zero value is Connect.
type Type byte

// The packet types of the Socket.IO v5 protocol, numbered as on the wire.
const (
	Connect      Type = iota // 0: connect to a namespace (client) or accept it (server)
	Disconnect               // 1: leave a namespace
	Event                    // 2: an event, Data is [name, args...]
	Ack                      // 3: the answer to an event with an id, Data is [args...]
	ConnectError             // 4: a refused connect, Data is {"message":..., "data":...} or a string
	BinaryEvent              // 5: the default parser's Event with attachments
	BinaryAck                // 6: the default parser's Ack with attachments
)

// String returns the name socket.io-parser gives t ("EVENT"), or
// "Type(n)" for a number that is no packet type.
func (t Type) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Disconnect:
		return "DISCONNECT"
	case Event:
		return "EVENT"
	case Ack:
		return "ACK"
	case ConnectError:
		return "CONNECT_ERROR"
	case BinaryEvent:
		return "BINARY_EVENT"
	case BinaryAck:
		return "BINARY_ACK"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Packet is one Socket.IO packet. The zero value is a CONNECT packet
// without data to the namespace "" (which Encode writes as "/").
type Packet struct {
	// Type is the packet type. Decode never returns BinaryEvent or
	// BinaryAck (Node's decoder turns them into Event and Ack once the
	// attachments are in); Encode writes an Event or an Ack whose Data
	// holds events.Bytes markers in the binary form itself, and takes
	// BinaryEvent and BinaryAck as Event and Ack.
	Type Type
	// Nsp is the namespace: "/" for the main namespace. Encode writes ""
	// as "/". Decode returns what the client named: the default parser
	// gives "/" when the packet names none, a MessagePack packet names its
	// namespace itself and may name "" (which, as in Node, is not the main
	// namespace, but a namespace nobody can define).
	Nsp string
	// ID is the ack id, meaningful only when HasID is true.
	ID    uint64
	HasID bool
	// Data is the payload as JSON text, binary values as events.Bytes
	// markers ({"_placeholder":true,"bin":"<base64>"}); nil when the
	// packet has none. Decode returns Data that shares no memory with the
	// messages it was given.
	Data json.RawMessage
}

// Message is one Engine.IO message of type "message": text or binary.
type Message struct {
	Data   []byte
	Binary bool
}

// Parser encodes packets and makes per-connection decoders.
// Implementations are safe for concurrent use: one Parser serves every
// connection of a server.
type Parser interface {
	// Encode returns the Engine.IO messages that carry p, in order. Its
	// errors wrap ErrInvalidPacket: p is nil, its Type is not a packet
	// type, its Data is not one JSON value, or (default parser) its Nsp
	// cannot be written. Encode does not check that Data has the shape
	// the packet type wants: the caller builds its packets.
	Encode(p *Packet) ([]Message, error)
	// NewDecoder returns a decoder for one connection.
	NewDecoder() Decoder
}

// Decoder reassembles one connection's packets. It is not safe for
// concurrent use; it does not keep m.Data after Add returns.
type Decoder interface {
	// Add takes the connection's next Engine.IO message. It returns the
	// completed packet, or nil while a binary packet still waits for
	// attachments. An error (wrapping ErrInvalidPacket) means the
	// connection must be closed; the decoder is then reset.
	Add(m Message) (*Packet, error)
	// Reset drops a partly received binary packet.
	Reset()
}

// ErrInvalidPacket is wrapped by every error of a Decoder (the message
// is not a valid packet, or not one expected now: close the connection)
// and of Encode (the packet cannot be written).
var ErrInvalidPacket = errors.New("socketio: invalid packet")

// DefaultMaxAttachments is the number of attachments a binary packet may
// announce to Default's decoders: the default of Node's socket.io-parser
// Decoder.
const DefaultMaxAttachments = 10

// MaxNamespaceLength bounds a decoded namespace, in bytes, the "/"
// included; a packet naming a longer one is refused. It is the bound
// herald's previous parser enforced (zishang520's
// DefaultMaxNamespaceLength); Node has none.
const MaxNamespaceLength = 512

// invalidf returns an error wrapping ErrInvalidPacket.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPacket, fmt.Sprintf(format, args...))
}

// isReserved reports whether name is one of the event names Socket.IO
// reserves (socket.io-parser's RESERVED_EVENTS).
func isReserved(name string) bool {
	switch name {
	case "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener":
		return true
	}
	return false
}
