package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
)

// EmitToUser sends ev with payload to every socket of userID: every tab and
// device, on every node. payload must be ev's payload type. It fails with
// ErrInvalidUserID, an error wrapping events.ErrPayloadType or
// events.ErrInvalidPayload, ErrServerClosed after Shutdown began, or the
// Broker's error when the message cannot reach the cluster. With an
// adapter.RedisBroker, adapter.ErrRemoteUndelivered means this node's
// sockets got it and no other node did; adapter.ErrMaybeLost means Redis
// took it but nodes that were resubscribing (after a Redis restart) may
// have missed it. A user with no connected socket is not an error: the
// event is simply not delivered.
//
// With Config.Jobs, a job or analysis event is recorded first (see
// JobStates); one that would move its job backwards is dropped, and
// EmitToUser returns an error wrapping ErrStaleJobEvent.
func (s *Server) EmitToUser(ctx context.Context, userID string, ev events.Event, payload any) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	if err := s.errIfClosed(); err != nil {
		return err
	}
	return s.publishTo(ctx, "", userID, []string{UserRoom(userID)}, nil, ev, payload)
}

// EmitToRoom sends ev with payload to every socket in room, on every node.
// It fails like EmitToUser, with ErrInvalidRoom for a bad room name.
func (s *Server) EmitToRoom(ctx context.Context, room string, ev events.Event, payload any) error {
	if err := ValidateRoom(room); err != nil {
		return err
	}
	return s.publish(ctx, []string{room}, nil, ev, payload)
}

func (s *Server) publish(ctx context.Context, rooms, except []string, ev events.Event, payload any) error {
	if err := s.errIfClosed(); err != nil {
		return err
	}
	return s.publishTo(ctx, "", "", rooms, except, ev, payload)
}

// publishTo publishes into namespace nsp ("" for "/") without the shutdown
// check (the presence notes that Shutdown itself causes use it). userID,
// when not empty, is the user whose room the emit is for: with
// Config.Jobs, a job event for it in "/" is recorded first (gateJob).
func (s *Server) publishTo(ctx context.Context, nsp, userID string, rooms, except []string, ev events.Event, payload any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ev == nil {
		return fmt.Errorf("%w: nil event", events.ErrInvalidName)
	}
	now := s.cfg.Now()
	data, err := ev.EncodeAny(payload, now)
	if err != nil {
		return err
	}
	if s.cfg.Jobs != nil && userID != "" && nsp == "" {
		drop, failed := gateJob(ctx, s.cfg.Jobs, userID, ev, payload, data, now)
		if drop != nil {
			s.jobsDropped.Add(1)
			return drop
		}
		if failed != nil {
			s.log.Warn("sending an event whose job state was not recorded", "user", userID, "err", failed)
		}
	}
	m := adapter.Message{Namespace: nsp, Rooms: slices.Clone(rooms), Except: slices.Clone(except), Event: ev.Name(), Args: []json.RawMessage{data}}
	if err := s.cfg.Broker.Publish(ctx, m); err != nil {
		return fmt.Errorf("socketio: emit %s: %w", ev.Name(), err)
	}
	return nil
}
