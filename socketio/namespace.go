package socketio

import (
	"context"
	"fmt"
	"slices"

	"github.com/herald-rt/herald/events"
)

// Namespace emits into one namespace of the cluster: a Server's (see
// Server.Of) or an Emitter's. It is safe for concurrent use.
type Namespace struct {
	name string // "/" or a name of Config.Namespaces
	// publish emits into nsp; userID is the user whose room rooms is, or
	// "" for another room.
	publish func(ctx context.Context, nsp, userID string, rooms []string, ev events.Event, payload any) error
}

// Name returns the namespace's name, e.g. "/admin".
func (n *Namespace) Name() string { return n.name }

// EmitToUser sends ev with payload to every socket of userID in the
// namespace, on every node. It fails like Server.EmitToUser.
func (n *Namespace) EmitToUser(ctx context.Context, userID string, ev events.Event, payload any) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	return n.publish(ctx, messageNamespace(n.name), userID, []string{UserRoom(userID)}, ev, payload)
}

// EmitToRoom sends ev with payload to every socket in room in the
// namespace, on every node. It fails like Server.EmitToRoom.
func (n *Namespace) EmitToRoom(ctx context.Context, room string, ev events.Event, payload any) error {
	if err := ValidateRoom(room); err != nil {
		return err
	}
	return n.publish(ctx, messageNamespace(n.name), "", []string{room}, ev, payload)
}

// Of returns the namespace name, which must be "/" or one of
// Config.Namespaces; other names fail with ErrUnknownNamespace.
// Server.EmitToUser is Of("/").EmitToUser.
func (s *Server) Of(name string) (*Namespace, error) {
	if name != "/" && !slices.Contains(s.cfg.Namespaces, name) {
		return nil, fmt.Errorf("%w: %q is not in Config.Namespaces", ErrUnknownNamespace, name)
	}
	return &Namespace{name: name, publish: func(ctx context.Context, nsp, userID string, rooms []string, ev events.Event, payload any) error {
		if err := s.errIfClosed(); err != nil {
			return err
		}
		return s.publishTo(ctx, nsp, userID, rooms, nil, ev, payload)
	}}, nil
}

// Of returns the namespace name of the cluster's servers, for emits into
// it; name must start with "/" and be a valid namespace name (see
// Config.Namespaces), or the call fails with ErrUnknownNamespace. The
// Emitter cannot know which namespaces the servers serve: sockets of a
// namespace no server serves receive nothing.
func (e *Emitter) Of(name string) (*Namespace, error) {
	if name != "/" {
		if err := checkNamespace(name); err != nil {
			return nil, fmt.Errorf("%w: %q %v", ErrUnknownNamespace, name, err)
		}
	}
	return &Namespace{name: name, publish: e.emit}, nil
}

// messageNamespace is a namespace's name as adapter.Message holds it: ""
// for "/".
func messageNamespace(name string) string {
	if name == "/" {
		return ""
	}
	return name
}

// wireNamespace is the inverse of messageNamespace.
func wireNamespace(nsp string) string {
	if nsp == "" {
		return "/"
	}
	return nsp
}
