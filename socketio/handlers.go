package socketio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// handler is a registered event handler: it decodes the payload, runs the
// user's function and returns the arguments of the client's ack (none for
// nil).
type handler func(ctx context.Context, s *Socket, payload []byte) (result []json.RawMessage, err error)

// On registers h for the event ev sent by clients. Payloads that do not
// decode into T, or fail T's Validate method, are rejected before h runs;
// a client that asked for an acknowledgement then receives
// {error: {code: "invalid_payload", message}}.
//
// Handlers of one socket run one at a time, in the order the client sent
// the events, so a slow handler delays the socket's next events: hand long
// work to a goroutine of your own. ctx ends when the socket disconnects or
// after Config.HandlerTimeout. If the client asked for an acknowledgement it
// receives no arguments when h returns nil, and {error: {code, message}}
// when h returns an error: the code and message of an *Error, or
// "internal"/"internal error" for any other error. A panic in h is recovered,
// logged and answered as an internal error.
//
// Registering a second handler for one event name is an error.
func On[T any](srv *Server, ev *events.Def[T], h func(ctx context.Context, s *Socket, p T) error) error {
	return srv.register(ev.Name(), func(ctx context.Context, s *Socket, payload []byte) ([]json.RawMessage, error) {
		p, err := ev.Decode(payload)
		if err != nil {
			return nil, invalidPayload(err)
		}
		return nil, h(ctx, s, p)
	})
}

// invalidPayload is the client's answer to a payload Decode refused: its
// message in JSON terms (events.PayloadError), never the decoder's.
func invalidPayload(err error) *Error {
	msg := "invalid payload"
	var pe *events.PayloadError
	if errors.As(err, &pe) {
		msg = pe.Message()
	}
	return &Error{Code: CodeInvalidPayload, Message: msg}
}

// OnAck is On for events whose sender expects a result: the client's
// acknowledgement callback receives h's result R as its only argument, or
// {error: {code, message}} when h fails.
func OnAck[T, R any](srv *Server, ev *events.Def[T], h func(ctx context.Context, s *Socket, p T) (R, error)) error {
	return srv.register(ev.Name(), func(ctx context.Context, s *Socket, payload []byte) ([]json.RawMessage, error) {
		p, err := ev.Decode(payload)
		if err != nil {
			return nil, invalidPayload(err)
		}
		r, err := h(ctx, s, p)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("socketio: encode result: %w", err)
		}
		return []json.RawMessage{b}, nil
	})
}

func (s *Server) register(name string, h handler) error {
	if err := s.errIfClosed(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.handlers[name]; dup {
		return fmt.Errorf("socketio: a handler for %q is already registered", name)
	}
	s.handlers[name] = h
	return nil
}

// ackError is the argument of an ack that reports a failure.
func ackError(e *Error) json.RawMessage {
	b, _ := json.Marshal(map[string]*Error{"error": e})
	return b
}

// onEvent handles an EVENT packet of sock, on the connection's reader: it
// checks the rate and the handler, then queues the handler's call.
func (s *Server) onEvent(sock *Socket, p *parser.Packet) {
	args, err := parser.SplitArray(p.Data)
	if err != nil || len(args) == 0 {
		return // not reached: the parser checked the packet
	}
	name := eventName(args[0])
	args = args[1:]
	reply := func(args ...json.RawMessage) {
		if p.HasID {
			_ = sock.client.send(ackPacket(sock.nsp.name, p.ID, args...))
		}
	}
	rateLimited := func() {
		s.log.Debug("event over Config.EventRate dropped", "sid", sock.id, "user", sock.userID, "event", name)
		reply(ackError(&Error{Code: CodeRateLimited, Message: "too many events"}))
	}
	if !sock.allowEvent(time.Now()) {
		rateLimited()
		return
	}
	s.mu.RLock()
	h := s.handlers[name]
	s.mu.RUnlock()
	if h == nil {
		s.log.Debug("event without handler", "sid", sock.id, "event", name)
		reply(ackError(&Error{Code: CodeUnknownEvent, Message: "no handler for this event"}))
		return
	}
	var payload []byte
	if len(args) > 0 {
		payload = args[0]
	}
	queued := sock.tasks.push(s, len(p.Data), func(context.Context) {
		ctx, cancel := context.WithTimeout(sock.ctx, s.cfg.HandlerTimeout)
		defer cancel()
		result, err := s.runHandler(ctx, sock, name, h, payload)
		if err != nil {
			reply(ackError(clientError(err)))
			return
		}
		reply(result...)
	})
	if !queued {
		rateLimited()
	}
}

// eventName returns the event name of an EVENT packet's first element: a
// JSON string, or the text of a number (which no handler is registered
// for).
func eventName(js json.RawMessage) string {
	if len(js) >= 2 && js[0] == '"' && !bytes.ContainsAny(js, `\`) {
		return string(js[1 : len(js)-1])
	}
	var name string
	if json.Unmarshal(js, &name) != nil {
		return string(js)
	}
	return name
}

func (s *Server) runHandler(ctx context.Context, sock *Socket, name string, h handler, payload []byte) (result []json.RawMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", "event", name, "sid", sock.id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			result, err = nil, errors.New("handler panicked")
		}
	}()
	result, err = h(ctx, sock, payload)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Code == CodeInvalidPayload {
			s.log.Debug("invalid payload", "event", name, "sid", sock.id, "err", err)
		} else {
			s.log.Warn("handler failed", "event", name, "sid", sock.id, "err", err)
		}
	}
	return result, err
}

// Emit sends ev with payload p to one socket. It fails with an error
// wrapping events.ErrInvalidPayload for a payload that does not validate,
// ErrDisconnected for a socket that is gone (or whose connection is closed
// as a slow consumer by this emit), and ErrServerClosed after Shutdown
// began.
func Emit[T any](ctx context.Context, s *Socket, ev *events.Def[T], p T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.srv.errIfClosed(); err != nil {
		return err
	}
	data, err := ev.Encode(p, s.srv.cfg.Now())
	if err != nil {
		return err
	}
	return s.srv.sendEvent(s, ev.Name(), data)
}

// sendEvent queues the event name with one argument for sock.
func (s *Server) sendEvent(sock *Socket, name string, data json.RawMessage) error {
	if !sock.Connected() {
		return ErrDisconnected
	}
	msgs, err := s.encodeEvent(sock.nsp.name, name, []json.RawMessage{data}, "")
	if err != nil {
		return err
	}
	if err := sock.client.conn.Send(msgs...); err != nil {
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return nil
}

// EmitWithAck sends ev to one socket and waits for the client's
// acknowledgement, whose first argument is decoded into R. It waits until
// ctx's deadline, or Config.AckTimeout when ctx has none, and fails with
// ErrAckTimeout, ErrDisconnected, ErrInvalidAck or ctx.Err().
func EmitWithAck[T, R any](ctx context.Context, s *Socket, ev *events.Def[T], p T) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if err := s.srv.errIfClosed(); err != nil {
		return zero, err
	}
	data, err := ev.Encode(p, s.srv.cfg.Now())
	if err != nil {
		return zero, err
	}
	timeout := s.srv.cfg.AckTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		return zero, context.DeadlineExceeded
	}
	if !s.Connected() {
		return zero, ErrDisconnected
	}
	id, replies, ok := s.acks.add()
	if !ok {
		return zero, fmt.Errorf("%w: %d acknowledgements pending", ErrAckTimeout, maxPendingAcks)
	}
	defer s.acks.drop(id)
	arr, err := appendArray(nil, ev.Name(), []json.RawMessage{data})
	if err != nil {
		return zero, err
	}
	if err := s.client.send(&parser.Packet{Type: parser.Event, Nsp: s.nsp.name, ID: id, HasID: true, Data: arr}); err != nil {
		return zero, fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case args := <-replies:
		if len(args) == 0 {
			return zero, nil
		}
		var out R
		if err := json.Unmarshal(args[0], &out); err != nil {
			return zero, fmt.Errorf("%w: %w", ErrInvalidAck, err)
		}
		return out, nil
	case <-timer.C:
		return zero, fmt.Errorf("%w: %s after %v", ErrAckTimeout, ev.Name(), timeout)
	case <-s.ctx.Done():
		return zero, ErrDisconnected
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
