package socketio

import (
	"encoding/json"
	"errors"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio/engineio"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// Local delivery: a message from the Broker reaches this node's sockets in
// its rooms. The packet is encoded once, at the first recipient, into
// Engine.IO messages whose WebSocket frames are built once too; every
// recipient's session queues the same messages.

// deliver hands a message from the Broker to this node's sockets.
func (s *Server) deliver(m adapter.Message) {
	if m.Disconnect {
		s.disconnectLocal(m)
		return
	}
	nsp := s.nsps[wireNamespace(m.Namespace)]
	if nsp == nil {
		return // a namespace this node does not serve
	}
	offset := ""
	if s.recoverer != nil {
		offset = m.Offset
	}
	var msgs []*engineio.Message
	for _, sock := range nsp.members(m.Rooms, m.Except) {
		if msgs == nil {
			var err error
			if msgs, err = s.encodeEvent(nsp.name, m.Event, m.Args, offset); err != nil {
				s.log.Warn("delivery failed", "event", m.Event, "err", err)
				return
			}
		}
		if err := sock.client.conn.Send(msgs...); err != nil {
			s.log.Debug("delivery to a closed connection dropped", "sid", sock.id, "event", m.Event, "err", err)
		}
	}
	if msgs != nil && s.cfg.Jobs != nil && nsp.name == "/" {
		s.markDelivered(m) // a terminal job event reached a socket
	}
}

var errInvalidArg = errors.New("socketio: an argument is not valid JSON")

// encodeEvent returns the Engine.IO messages of the EVENT packet of event
// with args in namespace nsp, and offset (a JSON string) as the last
// argument when it is not empty: socket.io-client takes it as the offset
// to recover from.
func (s *Server) encodeEvent(nsp, event string, args []json.RawMessage, offset string) ([]*engineio.Message, error) {
	if offset != "" {
		js, err := json.Marshal(offset)
		if err != nil {
			return nil, err
		}
		args = append(args[:len(args):len(args)], js)
	}
	if s.cfg.Parser == ParserDefault && !anyBinary(args) {
		// The common case, written straight into the frame's buffer.
		size := len(nsp) + len(event) + 8
		for _, a := range args {
			size += len(a) + 1
		}
		var err error
		m := engineio.AppendTextMessage(size, func(b []byte) []byte {
			out, e := parser.AppendEvent(b, nsp, event, 0, false, args)
			if e != nil {
				err = e
				return b
			}
			return out
		})
		if err != nil {
			return nil, err
		}
		return []*engineio.Message{m}, nil
	}
	data, err := appendArray(nil, event, args)
	if err != nil {
		return nil, err
	}
	msgs, err := s.parser.Encode(&parser.Packet{Type: parser.Event, Nsp: nsp, Data: data})
	if err != nil {
		return nil, err
	}
	return engineMessages(msgs), nil
}

func anyBinary(args []json.RawMessage) bool {
	for _, a := range args {
		if events.HasBytesJSON(a) {
			return true
		}
	}
	return false
}

// appendArray appends the JSON array [event, args...].
func appendArray(b []byte, event string, args []json.RawMessage) ([]byte, error) {
	name, err := json.Marshal(event)
	if err != nil {
		return nil, err
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
	return append(b, ']'), nil
}
