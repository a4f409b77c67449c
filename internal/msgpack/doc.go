// Package msgpack is herald's MessagePack writer for Socket.IO's wire
// formats: the Redis adapters' and socket.io-msgpack-parser's.
//
// The Append functions append one value in its smallest MessagePack form,
// as notepack.io (the encoder of Socket.IO's Node packages) writes it.
// AppendJSON transcodes JSON text directly, without going through Go maps,
// so object members keep their order; numbers become what notepack.io
// writes for the JavaScript numbers JSON.parse would give, and the marker
// objects of events.Bytes become bin.
//
// Reading MessagePack is left to each wire format's own decoder (adapter,
// socketio), which know what they accept.
//
// # Concurrency
//
// Every function is safe for concurrent use; none keeps state or starts
// goroutines.
package msgpack
