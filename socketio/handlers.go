package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/herald-rt/herald/events"
)

// handler is a registered event handler: it decodes the payload, runs the
// user's function and returns what the client's ack receives (nil for no
// argument).
type handler func(ctx context.Context, s *Socket, payload []byte) (result any, err error)

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
	return srv.register(ev.Name(), func(ctx context.Context, s *Socket, payload []byte) (any, error) {
		p, err := ev.Decode(payload)
		if err != nil {
			return nil, &Error{Code: CodeInvalidPayload, Message: err.Error()}
		}
		return nil, h(ctx, s, p)
	})
}

// OnAck is On for events whose sender expects a result: the client's
// acknowledgement callback receives h's result R as its only argument, or
// {error: {code, message}} when h fails.
func OnAck[T, R any](srv *Server, ev *events.Def[T], h func(ctx context.Context, s *Socket, p T) (R, error)) error {
	return srv.register(ev.Name(), func(ctx context.Context, s *Socket, payload []byte) (any, error) {
		p, err := ev.Decode(payload)
		if err != nil {
			return nil, &Error{Code: CodeInvalidPayload, Message: err.Error()}
		}
		r, err := h(ctx, s, p)
		if err != nil {
			return nil, err
		}
		arg, err := resultArg(r)
		if err != nil {
			return nil, err
		}
		return []any{arg}, nil
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

// onEvent runs for every event a client sends, on upstream's goroutine.
func (s *Server) onEvent(sock *Socket, args []any) {
	name, ok := firstArg[string](args)
	if !ok {
		return
	}
	args = args[1:]
	var ack socket.Ack
	if n := len(args); n > 0 {
		if a, ok := args[n-1].(socket.Ack); ok {
			ack, args = a, args[:n-1]
		}
	}
	if !sock.allowEvent(time.Now()) {
		s.log.Debug("event over Config.EventRate dropped", "sid", sock.id, "user", sock.userID, "event", name)
		if ack != nil {
			ack([]any{map[string]any{"error": Error{Code: CodeRateLimited, Message: "too many events"}}}, nil)
		}
		return
	}
	s.mu.RLock()
	h := s.handlers[name]
	s.mu.RUnlock()
	if h == nil {
		s.log.Debug("event without handler", "sid", sock.id, "event", name)
		if ack != nil {
			ack([]any{map[string]any{"error": Error{Code: CodeUnknownEvent, Message: "no handler for this event"}}}, nil)
		}
		return
	}
	var payload []byte
	if len(args) > 0 {
		b, err := argJSON(args[0])
		if err != nil {
			b = nil // rejected by the handler as not a JSON object
		}
		payload = b
	}
	sock.tasks.push(s, func(context.Context) {
		ctx, cancel := context.WithTimeout(sock.ctx, s.cfg.HandlerTimeout)
		defer cancel()
		result, err := s.runHandler(ctx, sock, name, h, payload)
		if ack == nil {
			return
		}
		if err != nil {
			ack([]any{map[string]any{"error": clientError(err)}}, nil)
			return
		}
		if r, ok := result.([]any); ok {
			ack(r, nil)
			return
		}
		ack([]any{}, nil)
	})
}

func (s *Server) runHandler(ctx context.Context, sock *Socket, name string, h handler, payload []byte) (result any, err error) {
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
// ErrDisconnected for a socket that is gone, and ErrServerClosed after
// Shutdown began.
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
	if !s.Connected() {
		return ErrDisconnected
	}
	return s.raw.Emit(ev.Name(), wireArg(data))
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
	type reply struct {
		args []any
		err  error
	}
	replies := make(chan reply, 1)
	s.emitMu.Lock()
	if !s.Connected() {
		s.emitMu.Unlock()
		return zero, ErrDisconnected
	}
	err = s.raw.Timeout(timeout).Emit(ev.Name(), wireArg(data), socket.Ack(func(args []any, err error) {
		select {
		case replies <- reply{args, err}:
		default:
		}
	}))
	s.emitMu.Unlock()
	if err != nil {
		return zero, err
	}
	select {
	case r := <-replies:
		if r.err != nil {
			return zero, fmt.Errorf("%w: %s after %v", ErrAckTimeout, ev.Name(), timeout)
		}
		if len(r.args) == 0 {
			return zero, nil
		}
		b, err := argJSON(r.args[0])
		if err != nil {
			return zero, fmt.Errorf("%w: %w", ErrInvalidAck, err)
		}
		var out R
		if err := json.Unmarshal(b, &out); err != nil {
			return zero, fmt.Errorf("%w: %w", ErrInvalidAck, err)
		}
		return out, nil
	case <-s.ctx.Done():
		return zero, ErrDisconnected
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}
