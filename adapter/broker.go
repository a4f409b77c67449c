package adapter

import (
	"context"
	"encoding/json"
	"errors"
)

// ErrClosed is returned by a backend used after Close.
var ErrClosed = errors.New("adapter: closed")

// Message is one emit on its way to the sockets of the cluster.
type Message struct {
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
