package socketio

import (
	"encoding/json"
	"errors"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
)

// writeLocal delivers m to this node's sockets in m.Rooms, but not in
// m.Except, by encoding the Socket.IO packet once and handing it to each
// socket's connection. It replaces upstream's BroadcastOperator.Emit on the
// hot path: upstream marks a broadcast packet as a pre-encoded WebSocket
// frame, and its WebSocket transport then builds a gorilla PreparedMessage
// for it per socket per message (a frame, and a throwaway websocket.Conn
// with its buffers, each time), which was the largest cost of a fan-out in
// the profiles (BENCHMARKS.md).
//
// A socket on a WebSocket that herald writes to itself (wire.go) gets the
// WebSocket frame, built once for all of them; any other socket, or one
// whose connection refuses the frame, gets the packet through upstream's
// engine, without the pre-encoded mark, which the transport then writes
// straight to the connection.
//
// writeLocal reports false, having done nothing, for what it leaves to
// upstream: no rooms (a broadcast to everyone), arguments with binary data
// (attachments), and the MessagePack parser.
func (s *Server) writeLocal(nsp socket.Namespace, m adapter.Message) bool {
	if len(m.Rooms) == 0 || s.cfg.Parser == ParserMsgpack {
		return false
	}
	for _, a := range m.Args {
		if events.HasBytesJSON(a) {
			return false
		}
	}
	rooms := nsp.Adapter().Rooms()
	sockets := nsp.Sockets()
	var except map[socket.SocketId]struct{}
	for _, r := range m.Except {
		if ids, ok := rooms.Load(socket.Room(r)); ok {
			for _, id := range ids.Keys() {
				if except == nil {
					except = make(map[socket.SocketId]struct{})
				}
				except[id] = struct{}{}
			}
		}
	}
	var seen map[socket.SocketId]struct{} // with several rooms, a socket in two gets it once
	if len(m.Rooms) > 1 {
		seen = make(map[socket.SocketId]struct{})
	}
	// Encoded at the first recipient: in pub/sub mode most messages in a
	// cluster have none on a given node.
	var (
		pkt     types.BufferInterface
		packets []types.BufferInterface
		opts    = &socket.WriteOptions{}
		frame   []byte // the WebSocket frame, made for the first direct write
	)

	for _, r := range m.Rooms {
		ids, ok := rooms.Load(socket.Room(r))
		if !ok {
			continue
		}
		for _, id := range ids.Keys() {
			if _, ok := except[id]; ok {
				continue
			}
			if seen != nil {
				if _, ok := seen[id]; ok {
					continue
				}
				seen[id] = struct{}{}
			}
			sock, ok := sockets.Load(id)
			if !ok || !sock.Connected() {
				continue
			}
			if pkt == nil {
				var err error
				if pkt, err = encodeEvent(nsp.Name(), m.Event, m.Args); err != nil {
					return false // nothing written yet; upstream reports it
				}
				packets = []types.BufferInterface{pkt}
			}
			if wc := s.wireOf(sock); wc != nil {
				if frame == nil {
					frame = appendTextFrame(nil, pkt.Bytes())
				}
				if wc.writeFrame(frame) {
					s.directWrites.Add(1)
					continue
				}
			}
			// WriteToEngine copies the packet for each socket.
			sock.Client().WriteToEngine(packets, opts)
		}
	}
	return true
}

// wireOf returns the connection herald writes to sock through itself, or
// nil (see wire.go).
func (s *Server) wireOf(sock *socket.Socket) *wireConn {
	if s.wires == nil {
		return nil
	}
	conn := sock.Conn()
	if conn == nil {
		return nil
	}
	if wc, ok := s.wires.Load(conn.Id()); ok {
		return wc.(*wireConn)
	}
	return nil
}

var errInvalidArg = errors.New("socketio: an argument is not valid JSON")

// encodeEvent returns the Socket.IO EVENT packet (type 2) of event with
// args, as upstream's encoder writes it: the namespace and a comma unless it
// is "/", then the JSON array [event, args...].
func encodeEvent(nsp, event string, args []json.RawMessage) (types.BufferInterface, error) {
	name, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	n := 4 + len(nsp) + len(name)
	for _, a := range args {
		n += 1 + len(a)
	}
	b := make([]byte, 0, n)
	b = append(b, '2')
	if nsp != "/" {
		b = append(b, nsp...)
		b = append(b, ',')
	}
	b = append(b, '[')
	b = append(b, name...)
	for _, a := range args {
		if !json.Valid(a) {
			return nil, errInvalidArg
		}
		b = append(b, ',')
		b = append(b, a...)
	}
	b = append(b, ']')
	return types.NewStringBuffer(b), nil
}
