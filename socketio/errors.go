package socketio

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of them (or one
// of the events and auth packages' sentinels) and can be tested with
// errors.Is.
var (
	// ErrServerClosed is returned by calls made after Shutdown began.
	ErrServerClosed = errors.New("socketio: server closed")
	// ErrInvalidConfig wraps every problem New finds in a Config.
	ErrInvalidConfig = errors.New("socketio: invalid config")
	// ErrInvalidRoom means a room name is empty, too long, not UTF-8, has
	// control characters, or is reserved (user rooms are managed by herald).
	ErrInvalidRoom = errors.New("socketio: invalid room name")
	// ErrTooManyRooms means Socket.Join would exceed
	// Config.MaxRoomsPerSocket.
	ErrTooManyRooms = errors.New("socketio: too many rooms")
	// ErrUnknownNamespace means a namespace is not served (Server.Of) or
	// not a valid name (Emitter.Of).
	ErrUnknownNamespace = errors.New("socketio: unknown namespace")
	// ErrInvalidUserID means a user id is empty, too long or not UTF-8.
	ErrInvalidUserID = errors.New("socketio: invalid user id")
	// ErrAckTimeout means the client did not acknowledge an event in time.
	ErrAckTimeout = errors.New("socketio: ack timeout")
	// ErrDisconnected means the socket disconnected before the call finished.
	ErrDisconnected = errors.New("socketio: socket disconnected")
	// ErrInvalidAck means a client's acknowledgement did not decode into the
	// expected type.
	ErrInvalidAck = errors.New("socketio: invalid ack payload")
)

// Codes of the errors that reach clients, in connect_error's err.data.code
// and in ack error objects. The auth codes (token_missing, token_invalid,
// token_expired) come from package auth.
const (
	CodeServerShuttingDown = "server_shutting_down"
	CodeInvalidPayload     = "invalid_payload"
	CodeUnknownEvent       = "unknown_event"
	CodeInternal           = "internal"
	CodeRateLimited        = "rate_limited"
	CodeTooManyConnections = "too_many_connections"
)

// Error is an error a handler returns to show a client a code and message.
// Any other error a handler returns reaches the client as
// {code: "internal", message: "internal error"}: internal error text never
// leaves the server.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("socketio: %s: %s", e.Code, e.Message) }

// clientError turns any handler error into what a client may see.
func clientError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}
