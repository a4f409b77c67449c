package socketio

import (
	"context"
	"encoding/json"
	"errors"
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
	// Jobs is the cluster's job store (adapter.RedisJobStore), which
	// EmitToUser records job and analysis events in, as Server.EmitToUser
	// does with Config.Jobs. nil records nothing: the nodes' job state
	// then does not see this Emitter's events.
	Jobs adapter.JobStore
}

// Emitter pushes events to users from a process that holds no sockets, such
// as a queue worker: it publishes to the nodes of a cluster exactly what
// Server.EmitToUser publishes, so clients receive the same JSON. It is safe
// for concurrent use and starts no goroutines.
type Emitter struct {
	broker adapter.Broker
	now    func() time.Time
	jobs   adapter.JobStore
}

// NewEmitter validates cfg and returns an Emitter. It does no I/O.
func NewEmitter(cfg EmitterConfig) (*Emitter, error) {
	if cfg.Broker == nil {
		return nil, fmt.Errorf("%w: Broker is required", ErrInvalidConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Emitter{broker: cfg.Broker, now: cfg.Now, jobs: cfg.Jobs}, nil
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
	return e.emit(ctx, "", userID, []string{UserRoom(userID)}, ev, payload)
}

// EmitToRoom sends ev with payload to every socket in room on every node.
func (e *Emitter) EmitToRoom(ctx context.Context, room string, ev events.Event, payload any) error {
	if err := ValidateRoom(room); err != nil {
		return err
	}
	return e.emit(ctx, "", "", []string{room}, ev, payload)
}

// emit publishes ev to rooms of namespace nsp ("" for "/"). userID, when
// not empty, is the user whose room rooms is: with EmitterConfig.Jobs, a
// job event for it in "/" is recorded first (gateJob); if the store fails,
// the event is sent and the store's error returned.
func (e *Emitter) emit(ctx context.Context, nsp, userID string, rooms []string, ev events.Event, payload any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ev == nil {
		return fmt.Errorf("%w: nil event", events.ErrInvalidName)
	}
	now := e.now()
	data, err := ev.EncodeAny(payload, now)
	if err != nil {
		return err
	}
	var failed error
	if e.jobs != nil && userID != "" && nsp == "" {
		var drop error
		if drop, failed = gateJob(ctx, e.jobs, userID, ev, payload, data, now); drop != nil {
			return drop
		}
	}
	m := adapter.Message{Namespace: nsp, Rooms: rooms, Event: ev.Name(), Args: []json.RawMessage{data}}
	if err := e.broker.Publish(ctx, m); err != nil {
		return errors.Join(failed, fmt.Errorf("socketio: emit %s: %w", ev.Name(), err))
	}
	return failed
}
