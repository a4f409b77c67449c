package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
)

// EmitterConfig configures an Emitter.
type EmitterConfig struct {
	// Broker carries the emits to the cluster's nodes: an
	// adapter.RedisBroker on the cluster's Redis (Subscribe is not needed).
	// Required. The Emitter never closes it.
	Broker adapter.Broker
	// Now returns the current time, for payload timestamps; nil means
	// time.Now.
	Now func() time.Time
}

// Emitter pushes events to users from a process that holds no sockets, such
// as a queue worker: it publishes to the nodes of a cluster exactly what
// Server.EmitToUser publishes, so clients receive the same JSON. It is safe
// for concurrent use and starts no goroutines.
type Emitter struct {
	broker adapter.Broker
	now    func() time.Time
}

// NewEmitter validates cfg and returns an Emitter. It does no I/O.
func NewEmitter(cfg EmitterConfig) (*Emitter, error) {
	if cfg.Broker == nil {
		return nil, fmt.Errorf("%w: Broker is required", ErrInvalidConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Emitter{broker: cfg.Broker, now: cfg.Now}, nil
}

// EmitToUser sends ev with payload to every socket of userID on every node.
// It fails like Server.EmitToUser; with an adapter.RedisBroker, an error
// wrapping adapter.ErrRemoteUndelivered means Redis did not take the
// message and no node received it, adapter.ErrMaybeLost (pub/sub mode) that
// fewer nodes received it than are registered (some were resubscribing,
// or died less than 15 s ago), adapter.ErrModeMismatch or
// adapter.ErrNoListeners that no node listens on the broker's mode and
// prefix.
func (e *Emitter) EmitToUser(ctx context.Context, userID string, ev events.Event, payload any) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	return e.emit(ctx, "", []string{UserRoom(userID)}, ev, payload)
}

// EmitToRoom sends ev with payload to every socket in room on every node.
func (e *Emitter) EmitToRoom(ctx context.Context, room string, ev events.Event, payload any) error {
	if err := ValidateRoom(room); err != nil {
		return err
	}
	return e.emit(ctx, "", []string{room}, ev, payload)
}

func (e *Emitter) emit(ctx context.Context, nsp string, rooms []string, ev events.Event, payload any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ev == nil {
		return fmt.Errorf("%w: nil event", events.ErrInvalidName)
	}
	data, err := ev.EncodeAny(payload, e.now())
	if err != nil {
		return err
	}
	m := adapter.Message{Namespace: nsp, Rooms: rooms, Event: ev.Name(), Args: []json.RawMessage{data}}
	if err := e.broker.Publish(ctx, m); err != nil {
		return fmt.Errorf("socketio: emit %s: %w", ev.Name(), err)
	}
	return nil
}
