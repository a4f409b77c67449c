package adapter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/msgpack"
)

// The wire formats of Socket.IO's Redis adapters, which herald speaks so
// that herald nodes, Node.js servers running @socket.io/redis-adapter and
// processes using @socket.io/redis-emitter share one cluster.
//
// Classic pub/sub: PUBLISH on "<prefix>#<nsp>#" (or "<prefix>#<nsp>#<room>#"
// for a single room) the MessagePack array
//
//	[uid, {type: 2, data: [event, ...args], nsp}, {rooms, except, flags}]
//
// Sharded pub/sub: SPUBLISH on the same channels a cluster message, as JSON
// (MessagePack when it holds binary data)
//
//	{uid, nsp, type: 3, data: {opts: {rooms, except, flags}, packet}}

const (
	requestDisconnect = 4 // @socket.io/redis-adapter RequestType.REMOTE_DISCONNECT
	clusterDisconnect = 6 // @socket.io/cluster-adapter MessageType.DISCONNECT_SOCKETS
	packetEvent       = 2 // Socket.IO EVENT packet
	packetBinaryEvent = 5 // Socket.IO BINARY_EVENT packet
	clusterBroadcast  = 3 // @socket.io/cluster-adapter MessageType.BROADCAST
	defaultNamespace  = "/"
)

// wireNamespace is m's namespace as the wire formats write it.
func wireNamespace(m Message) string {
	if m.Namespace == "" {
		return defaultNamespace
	}
	return m.Namespace
}

// messageNamespace is a wire namespace as Message holds it.
func messageNamespace(nsp string) string {
	if nsp == defaultNamespace {
		return ""
	}
	return nsp
}

// channelFor returns the channel a message to rooms is published on: the
// room's own channel for a single room, the namespace's otherwise.
func channelFor(base string, rooms []string) string {
	if len(rooms) == 1 {
		return base + rooms[0] + "#"
	}
	return base
}

// shardedChannelFor is channelFor as the sharded Node.js adapter decides in
// its "dynamic" mode: a room whose name has a socket id's length (20) goes
// to the namespace channel too, since nodes subscribe to no socket's room.
func shardedChannelFor(base string, rooms []string) string {
	if len(rooms) == 1 && len(rooms[0]) != 20 {
		return base + rooms[0] + "#"
	}
	return base
}

// roomOfChannel returns the room a channel is dedicated to, "" for the
// namespace's main channel, and false for a channel outside base.
func roomOfChannel(base, channel string) (string, bool) {
	if !strings.HasPrefix(channel, base) {
		return "", false
	}
	rest := channel[len(base):]
	if rest == "" {
		return "", true
	}
	if !strings.HasSuffix(rest, "#") {
		return "", false
	}
	return rest[:len(rest)-1], true
}

// encodeClassic encodes m in the classic adapter's format.
func encodeClassic(uid string, m Message) ([]byte, error) {
	b := make([]byte, 0, 64+len(m.Event)+argsLen(m.Args))
	b = msgpack.AppendArrayHeader(b, 3)
	b = msgpack.AppendString(b, uid)
	b, err := appendPacketMsgpack(b, m)
	if err != nil {
		return nil, err
	}
	return appendOptsMsgpack(b, m.Rooms, m.Except), nil
}

// appendPacketMsgpack appends m's Socket.IO packet, {type, data, nsp}.
func appendPacketMsgpack(b []byte, m Message) ([]byte, error) {
	b = msgpack.AppendMapHeader(b, 3)
	b = msgpack.AppendString(b, "type")
	b = msgpack.AppendInt(b, packetEvent)
	b = msgpack.AppendString(b, "data")
	b = msgpack.AppendArrayHeader(b, 1+len(m.Args))
	b = msgpack.AppendString(b, m.Event)
	for _, a := range m.Args {
		var err error
		if b, err = jsonToMsgpack(b, a); err != nil {
			return nil, err
		}
	}
	b = msgpack.AppendString(b, "nsp")
	return msgpack.AppendString(b, wireNamespace(m)), nil
}

// appendOptsMsgpack appends broadcast options {rooms, except, flags: {}}.
func appendOptsMsgpack(b []byte, rooms, except []string) []byte {
	b = msgpack.AppendMapHeader(b, 3)
	b = msgpack.AppendString(b, "rooms")
	b = msgpack.AppendStrings(b, rooms)
	b = msgpack.AppendString(b, "except")
	b = msgpack.AppendStrings(b, except)
	b = msgpack.AppendString(b, "flags")
	return msgpack.AppendMapHeader(b, 0)
}

func argsLen(args []json.RawMessage) int {
	n := 0
	for _, a := range args {
		n += len(a)
	}
	return n
}

// decodeClassic decodes a message in the classic adapter's format. ok is
// false, with a nil error, for a well-formed message that is not an event.
// classicFrom reports whether payload is a classic message from uid,
// reading no further than its uid: in pub/sub mode every node receives
// its own messages back, and decoding them whole was a tenth of a
// publishing node's CPU (BENCHMARKS.md).
func classicFrom(payload, uid string) bool {
	r := mpReader{b: []byte(payload)}
	if n, err := r.arrayLen(); err != nil || n < 2 {
		return false
	}
	s, err := r.strBytes()
	return err == nil && string(s) == uid
}

func decodeClassic(b []byte) (uid string, m Message, ok bool, err error) {
	r := mpReader{b: b}
	n, err := r.arrayLen()
	if err != nil {
		return "", Message{}, false, err
	}
	if n < 2 {
		return "", Message{}, false, malformed("classic: %d elements, want 3", n)
	}
	if uid, err = r.str(); err != nil {
		return "", Message{}, false, err
	}
	if r.peekNil() {
		return uid, Message{}, false, nil
	}
	pk, err := r.packet()
	if err != nil {
		return uid, Message{}, false, err
	}
	m = pk.msg
	if n >= 3 && !r.peekNil() {
		opts, err := r.options()
		if err != nil {
			return uid, Message{}, false, err
		}
		m.Rooms, m.Except = opts.rooms, opts.except
		if opts.local {
			return uid, Message{}, false, nil
		}
	}
	for i := 3; i < n; i++ {
		if err := r.skip(0); err != nil {
			return uid, Message{}, false, err
		}
	}
	if r.pos != len(r.b) {
		return uid, Message{}, false, malformed("classic: trailing data")
	}
	return uid, m, pk.ok(), nil
}

type wirePacket struct {
	typ   int64
	nsp   string
	msg   Message
	attch bool
}

func (p wirePacket) ok() bool {
	return p.typ == packetEvent && !p.attch && p.msg.Event != ""
}

// packet reads a Socket.IO packet map.
func (r *mpReader) packet() (wirePacket, error) {
	var p wirePacket
	n, err := r.mapLen()
	if err != nil {
		return p, err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return p, err
		}
		switch key {
		case "type":
			if p.typ, err = r.integer(); err != nil {
				return p, err
			}
		case "nsp":
			if p.nsp, err = r.str(); err != nil {
				return p, err
			}
		case "data":
			if r.peekNil() {
				continue
			}
			if p.msg.Event, p.msg.Args, err = r.eventData(); err != nil {
				return p, err
			}
		case "attachments":
			p.attch = !r.peekNil()
			if p.attch {
				if err := r.skip(0); err != nil {
					return p, err
				}
			}
		default: // id (acks are not carried across nodes), future keys
			if err := r.skip(0); err != nil {
				return p, err
			}
		}
	}
	if p.typ == packetBinaryEvent {
		p.attch = true
	}
	p.msg.Namespace = messageNamespace(p.nsp)
	return p, nil
}

// eventData reads [event, ...args], converting each argument to JSON.
func (r *mpReader) eventData() (string, []json.RawMessage, error) {
	n, err := r.arrayLen()
	if err != nil {
		return "", nil, err
	}
	if n == 0 {
		return "", nil, malformed("packet data is empty")
	}
	event, err := r.str()
	if err != nil {
		return "", nil, malformed("event name is not a string")
	}
	args := make([]json.RawMessage, n-1)
	for i := range args {
		a, err := r.toJSON(nil, 1)
		if err != nil {
			return "", nil, err
		}
		args[i] = a
	}
	return event, args, nil
}

type wireOptions struct {
	rooms, except []string
	local         bool
}

func (r *mpReader) options() (wireOptions, error) {
	var o wireOptions
	n, err := r.mapLen()
	if err != nil {
		return o, err
	}
	for range n {
		key, err := r.str()
		if err != nil {
			return o, err
		}
		switch key {
		case "rooms":
			o.rooms, err = r.strings()
		case "except":
			o.except, err = r.strings()
		case "flags":
			o.local, err = r.localFlag()
		default:
			err = r.skip(0)
		}
		if err != nil {
			return o, err
		}
	}
	return o, nil
}

func (r *mpReader) strings() ([]string, error) {
	if r.peekNil() {
		return nil, nil
	}
	n, err := r.arrayLen()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for range n {
		s, err := r.str()
		if err != nil {
			return nil, malformed("room name is not a string")
		}
		out = append(out, s)
	}
	return out, nil
}

// localFlag reads the flags map and reports the "local" flag, which means
// the message is for the publishing node only.
func (r *mpReader) localFlag() (bool, error) {
	if r.peekNil() {
		return false, nil
	}
	n, err := r.mapLen()
	if err != nil {
		return false, err
	}
	local := false
	for range n {
		key, err := r.str()
		if err != nil {
			return false, err
		}
		if key == "local" {
			c, err := r.byte1()
			if err != nil {
				return false, err
			}
			local = c == 0xc3
			continue
		}
		if err := r.skip(0); err != nil {
			return false, err
		}
	}
	return local, nil
}

// shardedMessage is the sharded adapter's cluster message, in JSON.
type shardedMessage struct {
	UID  string          `json:"uid"`
	Nsp  string          `json:"nsp"`
	Type int             `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

type shardedBroadcast struct {
	Opts struct {
		Rooms  []string        `json:"rooms"`
		Except []string        `json:"except"`
		Flags  json.RawMessage `json:"flags,omitempty"`
	} `json:"opts"`
	Packet struct {
		Type        int               `json:"type"`
		Data        []json.RawMessage `json:"data"`
		Nsp         string            `json:"nsp"`
		Attachments *int              `json:"attachments,omitempty"`
	} `json:"packet"`
	RequestID *string `json:"requestId,omitempty"`
}

// hasBinary reports whether one of m's arguments holds binary data.
func hasBinary(m Message) bool {
	for _, a := range m.Args {
		if events.HasBytesJSON(a) {
			return true
		}
	}
	return false
}

// appendBroadcastMsgpack appends the MessagePack form of a broadcast,
// {opts: {rooms, except, flags}, packet: {type, data, nsp}}, which the
// sharded and streams adapters use for messages with binary data.
func appendBroadcastMsgpack(b []byte, m Message) ([]byte, error) {
	b = msgpack.AppendMapHeader(b, 2)
	b = msgpack.AppendString(b, "opts")
	b = appendOptsMsgpack(b, nonNil(m.Rooms), nonNil(m.Except))
	b = msgpack.AppendString(b, "packet")
	return appendPacketMsgpack(b, m)
}

// encodeSharded encodes m as the sharded adapter's broadcast message: JSON,
// or MessagePack when m holds binary data; a disconnect request as its
// DISCONNECT_SOCKETS message.
func encodeSharded(uid string, m Message) ([]byte, error) {
	if m.Disconnect {
		data, err := json.Marshal(newDisconnectData(m))
		if err != nil {
			return nil, err
		}
		return json.Marshal(shardedMessage{UID: uid, Nsp: wireNamespace(m), Type: clusterDisconnect, Data: data})
	}
	if hasBinary(m) {
		b := make([]byte, 0, 96+len(m.Event)+argsLen(m.Args))
		b = msgpack.AppendMapHeader(b, 4)
		b = msgpack.AppendString(b, "uid")
		b = msgpack.AppendString(b, uid)
		b = msgpack.AppendString(b, "nsp")
		b = msgpack.AppendString(b, wireNamespace(m))
		b = msgpack.AppendString(b, "type")
		b = msgpack.AppendInt(b, clusterBroadcast)
		b = msgpack.AppendString(b, "data")
		return appendBroadcastMsgpack(b, m)
	}
	var d shardedBroadcast
	d.Opts.Rooms = nonNil(m.Rooms)
	d.Opts.Except = nonNil(m.Except)
	d.Opts.Flags = json.RawMessage(`{}`)
	d.Packet.Type = packetEvent
	d.Packet.Nsp = wireNamespace(m)
	ev, err := json.Marshal(m.Event)
	if err != nil {
		return nil, err
	}
	d.Packet.Data = append([]json.RawMessage{ev}, m.Args...)
	data, err := json.Marshal(d)
	if err != nil {
		return nil, malformed("sharded: %v", err)
	}
	return json.Marshal(shardedMessage{UID: uid, Nsp: wireNamespace(m), Type: clusterBroadcast, Data: data})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// decodeSharded decodes a sharded cluster message. ok is false, with a nil
// error, for a well-formed message that is not a broadcast of an event
// (heartbeats, requests).
func decodeSharded(b []byte) (uid string, m Message, ok bool, err error) {
	if len(b) == 0 || b[0] != '{' {
		return decodeShardedMsgpack(b)
	}
	var sm shardedMessage
	if err := json.Unmarshal(b, &sm); err != nil {
		return "", Message{}, false, malformed("sharded: %v", err)
	}
	if sm.Type == clusterDisconnect {
		var d disconnectData
		if err := json.Unmarshal(sm.Data, &d); err != nil {
			return sm.UID, Message{}, false, malformed("sharded: %v", err)
		}
		nsp := sm.Nsp
		if nsp == "" {
			nsp = defaultNamespace
		}
		m, ok := d.message(nsp)
		return sm.UID, m, ok, nil
	}
	if sm.Type != clusterBroadcast {
		return sm.UID, Message{}, false, nil
	}
	var d shardedBroadcast
	dec := json.NewDecoder(bytes.NewReader(sm.Data))
	if err := dec.Decode(&d); err != nil {
		return sm.UID, Message{}, false, malformed("sharded: %v", err)
	}
	nsp := sm.Nsp
	if nsp == "" {
		nsp = d.Packet.Nsp
	}
	if d.RequestID != nil || d.Packet.Type != packetEvent || d.Packet.Attachments != nil ||
		(d.Packet.Nsp != "" && d.Packet.Nsp != nsp) || len(d.Packet.Data) == 0 {
		return sm.UID, Message{}, false, nil
	}
	var event string
	if err := json.Unmarshal(d.Packet.Data[0], &event); err != nil || event == "" {
		return sm.UID, Message{}, false, malformed("sharded: event name is not a string")
	}
	var flags struct {
		Local bool `json:"local"`
	}
	if len(d.Opts.Flags) > 0 {
		_ = json.Unmarshal(d.Opts.Flags, &flags)
	}
	if flags.Local {
		return sm.UID, Message{}, false, nil
	}
	args := make([]json.RawMessage, len(d.Packet.Data)-1)
	for i, a := range d.Packet.Data[1:] {
		var buf bytes.Buffer
		if err := json.Compact(&buf, a); err != nil {
			return sm.UID, Message{}, false, malformed("sharded: %v", err)
		}
		args[i] = buf.Bytes()
	}
	return sm.UID, Message{Namespace: messageNamespace(nsp), Rooms: d.Opts.Rooms, Except: d.Opts.Except, Event: event, Args: args}, true, nil
}

// decodeShardedMsgpack decodes the MessagePack form of a cluster message,
// which the sharded adapter uses for messages with binary data.
func decodeShardedMsgpack(b []byte) (uid string, m Message, ok bool, err error) {
	r := mpReader{b: b}
	n, err := r.mapLen()
	if err != nil {
		return "", Message{}, false, err
	}
	var typ int64
	nsp := defaultNamespace
	var pk wirePacket
	var opts wireOptions
	var requestID bool
	for range n {
		key, err := r.str()
		if err != nil {
			return uid, Message{}, false, err
		}
		switch key {
		case "uid":
			uid, err = r.str()
		case "nsp":
			nsp, err = r.str()
		case "type":
			typ, err = r.integer()
		case "data":
			if typ != clusterBroadcast && typ != 0 {
				err = r.skip(0)
				break
			}
			var dn int
			if dn, err = r.mapLen(); err != nil {
				break
			}
			for range dn {
				var k string
				if k, err = r.str(); err != nil {
					break
				}
				switch k {
				case "opts":
					opts, err = r.options()
				case "packet":
					pk, err = r.packet()
				case "requestId":
					requestID = !r.peekNil()
					if requestID {
						err = r.skip(0)
					}
				default:
					err = r.skip(0)
				}
				if err != nil {
					break
				}
			}
		default:
			err = r.skip(0)
		}
		if err != nil {
			return uid, Message{}, false, err
		}
	}
	if typ != clusterBroadcast || requestID || opts.local || !pk.ok() {
		return uid, Message{}, false, nil
	}
	m = pk.msg
	m.Namespace = messageNamespace(nsp)
	m.Rooms, m.Except = opts.rooms, opts.except
	return uid, m, true, nil
}

// Streams: XADD on one stream (default "socket.io") an entry with the fields
// uid, nsp, type ("3" for a broadcast) and data, the broadcast
// {packet: {type: 2, data: [event, ...args]}, opts: {rooms, except, flags}}
// as JSON (base64 MessagePack when it holds binary data), as
// @socket.io/redis-streams-adapter writes it. rooms and except are always
// arrays and flags has no false values: Node's restore code needs both.

// streamBroadcast is the data field of a broadcast entry.
type streamBroadcast struct {
	Packet struct {
		Type int               `json:"type"`
		Data []json.RawMessage `json:"data"`
	} `json:"packet"`
	Opts struct {
		Rooms  []string        `json:"rooms"`
		Except []string        `json:"except"`
		Flags  json.RawMessage `json:"flags"`
	} `json:"opts"`
}

// streamType is the type field of m's stream entry.
func streamType(m Message) string {
	if m.Disconnect {
		return strconv.Itoa(clusterDisconnect)
	}
	return strconv.Itoa(clusterBroadcast)
}

// encodeStreamData encodes the data field of m's entry.
func encodeStreamData(m Message) (string, error) {
	if m.Disconnect {
		b, err := json.Marshal(newDisconnectData(m))
		return string(b), err
	}
	if hasBinary(m) {
		b, err := appendBroadcastMsgpack(nil, m)
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	var d streamBroadcast
	d.Opts.Rooms = nonNil(m.Rooms)
	d.Opts.Except = nonNil(m.Except)
	d.Opts.Flags = json.RawMessage(`{}`)
	d.Packet.Type = packetEvent
	ev, err := json.Marshal(m.Event)
	if err != nil {
		return "", err
	}
	d.Packet.Data = append([]json.RawMessage{ev}, m.Args...)
	b, err := json.Marshal(d)
	if err != nil {
		return "", malformed("streams: %v", err)
	}
	return string(b), nil
}

// decodeStreamEntry decodes a stream entry's fields. ok is false, with a nil
// error, for an entry that is not a broadcast of an event (heartbeats,
// requests, responses).
func decodeStreamEntry(values map[string]any) (uid string, m Message, ok bool, err error) {
	str := func(k string) string { s, _ := values[k].(string); return s }
	uid = str("uid")
	nsp := str("nsp")
	if nsp == "" {
		nsp = defaultNamespace
	}
	if str("type") == strconv.Itoa(clusterDisconnect) {
		var d disconnectData
		if err := json.Unmarshal([]byte(str("data")), &d); err != nil {
			return uid, Message{}, false, malformed("streams: %v", err)
		}
		m, ok = d.message(nsp)
		return uid, m, ok, nil
	}
	if str("type") != "3" {
		return uid, Message{}, false, nil
	}
	data := str("data")
	if !strings.HasPrefix(data, "{") {
		raw, derr := base64.StdEncoding.DecodeString(data)
		if derr != nil {
			return uid, Message{}, false, malformed("streams: data is neither JSON nor base64")
		}
		// The MessagePack form, used for binary payloads.
		r := mpReader{b: raw}
		n, derr := r.mapLen()
		if derr != nil {
			return uid, Message{}, false, derr
		}
		var pk wirePacket
		var opts wireOptions
		for range n {
			k, derr := r.str()
			if derr != nil {
				return uid, Message{}, false, derr
			}
			switch k {
			case "packet":
				pk, derr = r.packet()
			case "opts":
				opts, derr = r.options()
			default:
				derr = r.skip(0)
			}
			if derr != nil {
				return uid, Message{}, false, derr
			}
		}
		if !pk.ok() || opts.local {
			return uid, Message{}, false, nil
		}
		m = pk.msg
		m.Namespace = messageNamespace(nsp)
		m.Rooms, m.Except = opts.rooms, opts.except
		return uid, m, true, nil
	}
	msg := shardedMessage{UID: uid, Nsp: nsp, Type: clusterBroadcast, Data: json.RawMessage(data)}
	wire, merr := json.Marshal(msg)
	if merr != nil {
		return uid, Message{}, false, malformed("streams: %v", merr)
	}
	_, m, ok, err = decodeSharded(wire)
	return uid, m, ok, err
}

// encodeSession encodes a session as @socket.io/redis-streams-adapter
// stores it: base64 of the MessagePack map {sid, pid, rooms, data}. herald
// stores no data (a restored socket is authenticated again), but data is an
// empty map, not nil: a Node server that restores the session sets
// socket.data to it, and Node code expects an object there
// (socket.data.user = ... in a middleware would throw on null).
func encodeSession(s Session) string {
	b := msgpack.AppendMapHeader(nil, 4)
	b = msgpack.AppendString(b, "sid")
	b = msgpack.AppendString(b, s.SocketID)
	b = msgpack.AppendString(b, "pid")
	b = msgpack.AppendString(b, s.PID)
	b = msgpack.AppendString(b, "rooms")
	b = msgpack.AppendStrings(b, s.Rooms)
	b = msgpack.AppendString(b, "data")
	b = msgpack.AppendMapHeader(b, 0)
	return base64.StdEncoding.EncodeToString(b)
}

func decodeSession(v string) (Session, error) {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return Session{}, malformed("session: not base64")
	}
	r := mpReader{b: raw}
	n, err := r.mapLen()
	if err != nil {
		return Session{}, err
	}
	var s Session
	for range n {
		k, err := r.str()
		if err != nil {
			return Session{}, err
		}
		switch k {
		case "sid":
			s.SocketID, err = r.str()
		case "pid":
			s.PID, err = r.str()
		case "rooms":
			s.Rooms, err = r.strings()
		default:
			err = r.skip(0)
		}
		if err != nil {
			return Session{}, err
		}
	}
	if s.SocketID == "" || s.PID == "" {
		return Session{}, malformed("session: no sid or pid")
	}
	return s, nil
}

// Disconnect requests: Node's io.in(rooms).disconnectSockets(close). The
// classic adapter publishes {uid, type: 4, opts: {rooms, except}, close} as
// JSON on "<prefix>-request#<nsp>#"; the sharded and streams adapters send
// a cluster message of type 6 with data {opts: {rooms, except, flags},
// close}. herald adds "reason", which Node ignores.

type disconnectOpts struct {
	Rooms  []string        `json:"rooms"`
	Except []string        `json:"except"`
	Flags  json.RawMessage `json:"flags,omitempty"`
}

type disconnectData struct {
	Opts   *disconnectOpts `json:"opts"`
	Close  bool            `json:"close"`
	Reason string          `json:"reason,omitempty"`
}

// disconnectRequest is the classic adapter's request.
type disconnectRequest struct {
	UID  string `json:"uid"`
	Type int    `json:"type"`
	disconnectData
}

func newDisconnectData(m Message) disconnectData {
	return disconnectData{
		Opts:   &disconnectOpts{Rooms: nonNil(m.Rooms), Except: nonNil(m.Except), Flags: json.RawMessage(`{}`)},
		Close:  m.Close,
		Reason: m.Reason,
	}
}

func (d disconnectData) message(nsp string) (Message, bool) {
	if d.Opts == nil {
		return Message{}, false // a request for one socket, by id: not herald's
	}
	return Message{Namespace: messageNamespace(nsp), Rooms: d.Opts.Rooms, Except: d.Opts.Except, Disconnect: true, Close: d.Close, Reason: d.Reason}, true
}

// requestChannel returns the classic adapter's request channel of nsp.
func requestChannel(prefix, nsp string) string { return prefix + "-request#" + nsp + "#" }

// encodeDisconnectRequest encodes m (m.Disconnect) as the classic adapter's
// request.
func encodeDisconnectRequest(uid string, m Message) ([]byte, error) {
	d := newDisconnectData(m)
	d.Opts.Flags = nil
	return json.Marshal(disconnectRequest{UID: uid, Type: requestDisconnect, disconnectData: d})
}

// decodeRequest decodes a message of the classic adapter's request channel
// of namespace nsp. ok is false, with a nil error, for requests other than
// a disconnect of rooms (herald does not answer fetchSockets and the like).
func decodeRequest(b []byte, nsp string) (uid string, m Message, ok bool, err error) {
	var r disconnectRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return "", Message{}, false, malformed("request: %v", err)
	}
	if r.Type != requestDisconnect {
		return r.UID, Message{}, false, nil
	}
	m, ok = r.message(nsp)
	return r.UID, m, ok, nil
}
