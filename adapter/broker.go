package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// ErrClosed is returned by a backend used after Close.
var ErrClosed = errors.New("adapter: closed")

// Message is one emit on its way to the sockets of the cluster.
type Message struct {
	// Namespace is the Socket.IO namespace whose sockets receive the
	// message; empty means the main namespace "/".
	Namespace string `json:"nsp,omitempty"`
	// Rooms are the rooms whose sockets receive the message; empty means
	// every socket of the namespace.
	Rooms []string `json:"rooms,omitempty"`
	// Except are rooms whose sockets are skipped even if they are in Rooms.
	Except []string `json:"except,omitempty"`
	// Event is the event name.
	Event string `json:"event"`
	// Args are the event's arguments, each one JSON value delivered to
	// clients byte for byte. herald's own emits carry exactly one (the
	// payload); emits from other Socket.IO emitters may carry any number.
	Args []json.RawMessage `json:"args"`
	// Disconnect makes the message a request rather than an event: the
	// sockets of Rooms (minus Except) in Namespace disconnect, with Reason;
	// Event and Args are empty. Close closes their connections instead
	// (Node's disconnectSockets(true); herald's own requests never set it).
	// In the Redis wire formats it is Node's disconnectSockets request, so
	// that Node servers in a mixed cluster honour it too. Brokers never log
	// it for recovery.
	Disconnect bool   `json:"disconnect,omitempty"`
	Close      bool   `json:"close,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Offset is the message's position in the cluster's log, set by a
	// Broker that keeps one (RedisBroker in streams mode) on the messages it
	// delivers; clients send back the last one they saw to recover what
	// they missed while disconnected. Empty otherwise.
	Offset string `json:"offset,omitempty"`
}

// Broker carries messages to every node of the cluster, the publishing node
// included.
type Broker interface {
	// Subscribe sets the function that hands a message to this node's
	// sockets. It must be called once, before the first Publish.
	Subscribe(deliver func(Message)) error
	// Publish sends m to every node. It returns an error when m cannot reach
	// the cluster; it never drops a message silently.
	Publish(ctx context.Context, m Message) error
	// Close stops the broker. Publish after Close fails with ErrClosed.
	// Close is idempotent.
	Close(ctx context.Context) error
}

// Session is what a disconnected socket leaves behind for connection-state
// recovery: its id, its private session id, and its rooms.
type Session struct {
	SocketID string
	PID      string
	Rooms    []string
}

// ErrNoSession is returned by Recoverer.RestoreSession when the session is
// unknown, expired, or its offset is no longer in the log: the client then
// starts a new session.
var ErrNoSession = errors.New("adapter: no session to restore")

// Recoverer is implemented by a Broker that keeps a log of its messages, so
// that a client that reconnects within the session's lifetime, to any node,
// gets the messages it missed (Socket.IO's connection-state recovery).
type Recoverer interface {
	// SaveSession keeps s for ttl.
	SaveSession(ctx context.Context, s Session, ttl time.Duration) error
	// RestoreSession takes the session pid (it cannot be restored twice at
	// once) and returns the messages published after offset that its rooms
	// would have received, in order, each with its Offset. Delivery of
	// later messages on this node is held until done is called (at the
	// latest after a few seconds), so that the socket can join its rooms
	// without missing or repeating one. done(false) says the session was
	// not taken up (the handshake failed): it is stored again for the rest
	// of its lifetime, so that its owner can still recover it. done is
	// idempotent.
	RestoreSession(ctx context.Context, pid, offset string) (s Session, missed []Message, done func(taken bool), err error)
}
