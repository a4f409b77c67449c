// Package parser implements the two Socket.IO v5 packet formats herald
// speaks: socket.io-parser's (Default, the format of Socket.IO's default
// parser) and socket.io-msgpack-parser's (Msgpack). Both mirror the Node
// packages byte for byte where herald writes, and accept what they accept
// where herald reads, except where they read nonsense (see each decoder).
//
// # Data model
//
// Inside herald every payload is JSON text (Packet.Data), and binary data
// inside it is the marker object of events.Bytes,
// {"_placeholder":true,"bin":"<base64>"}. The parsers convert between
// that form and each wire form:
//
//   - Default: a packet is one text Engine.IO message. An Event or Ack
//     with binary data is sent as a BINARY_EVENT or BINARY_ACK: each
//     marker becomes a placeholder {"_placeholder":true,"num":N} and its
//     bytes the N-th of the binary messages that follow the text. Data is
//     written as given, and decoded Data keeps the client's bytes except
//     where a placeholder was replaced by its marker.
//   - Msgpack: a packet is one binary Engine.IO message, a MessagePack
//     map {type, data, nsp, id}; markers become MessagePack bin, and
//     decoded data is the JSON text JSON.stringify would write for what
//     notepack.io decodes.
//
// SplitArray splits an Event's Data into its name and arguments;
// AppendEvent writes an Event for many connections at once (broadcasts).
//
// # Errors and bounds
//
// Every error wraps ErrInvalidPacket. A decoder's error means the client
// sent something Socket.IO's Node server would refuse (or herald refuses
// in its place): close the connection. Nothing a client sends makes the
// package panic, and everything it keeps is bounded: a namespace by
// MaxNamespaceLength, JSON nesting by 10000 levels (64 for MessagePack),
// a binary packet by DefaultMaxAttachments attachments, each no larger
// than the Engine.IO message that carried it (the caller bounds those).
// Every MessagePack length is checked against the message before
// anything is allocated. A decoded Data is at most about 4/3 of the
// messages of a default-parser packet (base64; each attachment may be
// used once), and at most 16 times a MessagePack message (an empty bin,
// 2 bytes, is a 31-byte marker; false, 1 byte, is "false,").
//
// # Concurrency and ownership
//
// A Parser is safe for concurrent use and shared by every connection; a
// Decoder belongs to one connection and is not. Nothing starts
// goroutines. Encode's messages and a decoded packet's Data are fresh
// memory: a Decoder keeps nothing of a Message after Add returns (a
// pending binary packet keeps its own copies), so the caller may reuse
// its read buffers.
package parser
