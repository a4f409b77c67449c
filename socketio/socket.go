package socketio

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/socketio/engineio"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// UserRoomPrefix starts the name of every user's room.
const UserRoomPrefix = "user:"

// MaxRoomLength is the longest room name accepted, in bytes.
const MaxRoomLength = 512

// maxUserIDLength is the longest user id accepted, in bytes.
const maxUserIDLength = 256

// UserRoom returns the room that every socket of userID joins.
func UserRoom(userID string) string { return UserRoomPrefix + userID }

func validateUserID(id string) error { return checkName(ErrInvalidUserID, id, maxUserIDLength) }

// ValidateRoom reports whether name can be used as a room name. The error
// wraps ErrInvalidRoom.
func ValidateRoom(name string) error { return checkName(ErrInvalidRoom, name, MaxRoomLength) }

// checkName accepts non-empty UTF-8 without control characters, at most max
// bytes long; its errors wrap sentinel.
func checkName(sentinel error, name string, max int) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", sentinel)
	case len(name) > max:
		return fmt.Errorf("%w: longer than %d bytes", sentinel, max)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not valid UTF-8", sentinel)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: has control characters", sentinel)
	}
	return nil
}

// Socket is one connection of an authenticated user to one namespace.
// Methods are safe for concurrent use.
type Socket struct {
	srv       *Server
	client    *client
	nsp       *nspState
	id        string
	pid       string // private session id, for recovery ("" when off)
	userID    string
	principal auth.Principal

	ctx    context.Context // ends when the socket disconnects
	cancel context.CancelFunc
	once   sync.Once // guards the disconnect

	rooms []string // its user's room and the rooms it joined; guarded by nsp.mu

	tasks serialQueue

	authMu sync.Mutex // guards principal (after a reauthenticate) and expiry
	expiry *expiry

	rateMu sync.Mutex // the event token bucket (Config.EventRate)
	tokens float64
	filled time.Time

	acks acks // EmitWithAck calls waiting for the client
}

// allowEvent takes a token from the socket's event bucket, which holds
// Config.EventRate tokens and refills at that many per second.
func (s *Socket) allowEvent(now time.Time) bool {
	rate := s.srv.cfg.EventRate
	if rate < 0 {
		return true
	}
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	if s.filled.IsZero() {
		s.tokens = float64(rate)
	} else {
		s.tokens = min(float64(rate), s.tokens+now.Sub(s.filled).Seconds()*float64(rate))
	}
	s.filled = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

func newSocket(srv *Server, c *client, nsp *nspState, id, pid string, p auth.Principal) *Socket {
	ctx, cancel := context.WithCancel(srv.ctx)
	return &Socket{
		srv:       srv,
		client:    c,
		nsp:       nsp,
		id:        id,
		pid:       pid,
		userID:    p.UserID,
		principal: p,
		ctx:       ctx,
		cancel:    cancel,
	}
}

// ID returns the socket id, which the client sees as socket.id.
func (s *Socket) ID() string { return s.id }

// Namespace returns the namespace the socket belongs to: "/" or one of
// Config.Namespaces. A client connection that joined several namespaces
// has one Socket in each.
func (s *Socket) Namespace() string { return s.nsp.name }

// UserID returns the authenticated user's id.
func (s *Socket) UserID() string { return s.userID }

// ExpiresAt returns when the socket's token expires: the one presented at
// the handshake, or the latest accepted reauthenticate's.
func (s *Socket) ExpiresAt() time.Time {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	return s.principal.ExpiresAt
}

// Claim returns one claim of the socket's token (see ExpiresAt).
func (s *Socket) Claim(name string) (any, bool) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	v, ok := s.principal.Claims[name]
	return v, ok
}

// setPrincipal replaces the socket's token after a reauthenticate.
func (s *Socket) setPrincipal(p auth.Principal) {
	s.authMu.Lock()
	defer s.authMu.Unlock()
	s.principal = p
}

// Context returns a context that ends when the socket disconnects.
func (s *Socket) Context() context.Context { return s.ctx }

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool { return s.ctx.Err() == nil }

// Transport returns "polling" or "websocket".
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// Join adds the socket to room. User rooms (UserRoomPrefix) are managed by
// the Server and cannot be joined. A socket may be in
// Config.MaxRoomsPerSocket rooms: Join fails with ErrTooManyRooms beyond.
func (s *Socket) Join(room string) error {
	if err := ValidateRoom(room); err != nil {
		return err
	}
	if strings.HasPrefix(room, UserRoomPrefix) {
		return fmt.Errorf("%w: %q: user rooms are managed by the server", ErrInvalidRoom, room)
	}
	if !s.Connected() {
		return ErrDisconnected
	}
	if room == s.id || s.nsp.inRoom(s, room) {
		return nil
	}
	// Its user's room does not count.
	if max := s.srv.cfg.MaxRoomsPerSocket; max >= 0 && len(s.nsp.roomsOf(s))-2 >= max {
		return fmt.Errorf("%w: %d rooms already (Config.MaxRoomsPerSocket)", ErrTooManyRooms, max)
	}
	if !s.nsp.join(s, room) && !s.nsp.inRoom(s, room) {
		return ErrDisconnected // disconnected meanwhile
	}
	return nil
}

// Leave removes the socket from room.
func (s *Socket) Leave(room string) error {
	if err := ValidateRoom(room); err != nil {
		return err
	}
	if strings.HasPrefix(room, UserRoomPrefix) {
		return fmt.Errorf("%w: %q: user rooms are managed by the server", ErrInvalidRoom, room)
	}
	s.nsp.leave(s, room)
	return nil
}

// Disconnect ends the socket. The client sees "io server disconnect" and
// does not reconnect by itself.
func (s *Socket) Disconnect() {
	if !s.Connected() {
		return
	}
	_ = s.client.send(&parser.Packet{Type: parser.Disconnect, Nsp: s.nsp.name})
	s.onClose(reasonServerNamespaceDisconnect)
}

// Disconnect reasons of the Socket.IO layer, as Node's socket.io words
// them (the Engine.IO ones come from package engineio).
const (
	reasonServerNamespaceDisconnect = "server namespace disconnect"
	reasonClientNamespaceDisconnect = "client namespace disconnect"
	reasonForcedServerClose         = "forced server close"
	reasonServerShuttingDown        = "server shutting down"
)

// recoverable are the disconnect reasons after which a session is kept
// for connection-state recovery (Node's RECOVERABLE_DISCONNECT_REASONS).
func recoverable(reason string) bool {
	switch reason {
	case engineio.ReasonTransportError, engineio.ReasonTransportClose, engineio.ReasonForcedClose,
		engineio.ReasonPingTimeout, reasonServerShuttingDown, reasonForcedServerClose:
		return true
	}
	return false
}

// onPacket handles a packet of the socket's namespace.
func (s *Socket) onPacket(p *parser.Packet) {
	switch p.Type {
	case parser.Event:
		s.srv.onEvent(s, p)
	case parser.Ack:
		s.acks.answer(p)
	case parser.Disconnect:
		s.client.removeSocket(s)
		s.onClose(reasonClientNamespaceDisconnect)
	}
}

// onClose disconnects the socket, once: its session is kept for recovery
// when the reason allows it, it leaves its rooms, and the Server forgets
// it.
func (s *Socket) onClose(reason string) {
	s.once.Do(func() {
		s.cancel() // first: a registration or a Join racing this sees it (rooms.go)
		keep := s.srv.recoverer != nil && recoverable(reason) && s.srv.ctx.Err() == nil
		var rooms []string
		if keep {
			rooms = s.nsp.roomsOf(s)
		}
		s.nsp.remove(s)
		s.client.removeSocket(s)
		s.srv.onDisconnect(s, reason)
		// Saved last: a client that recovers it at once, on any node,
		// finds this socket's presence gone already.
		if keep {
			s.srv.persist(s, rooms)
		}
	})
}

// maxQueuedEvents bounds the events of one socket waiting for their
// handler; the ones beyond, or beyond Config.MaxBufferedBytes of payload,
// are refused as over the rate.
const maxQueuedEvents = 1024

// serialQueue runs a socket's handler calls one at a time, in arrival
// order, on a goroutine of the Server that exists only while work is
// queued. It holds at most maxQueuedEvents tasks and
// Config.MaxBufferedBytes of their payloads.
type serialQueue struct {
	mu      sync.Mutex
	tasks   []queuedTask
	bytes   int64
	running bool
}

type queuedTask struct {
	run  func(context.Context)
	size int64
}

// push queues task, whose payload is size bytes; it reports false when the
// queue is full or the Server has stopped.
func (q *serialQueue) push(srv *Server, size int, task func(context.Context)) bool {
	q.mu.Lock()
	if len(q.tasks) >= maxQueuedEvents || q.bytes+int64(size) > srv.cfg.MaxBufferedBytes {
		q.mu.Unlock()
		return false
	}
	q.tasks = append(q.tasks, queuedTask{task, int64(size)})
	q.bytes += int64(size)
	if q.running {
		q.mu.Unlock()
		return true
	}
	q.running = true
	q.mu.Unlock()
	started := srv.goroutine(func(ctx context.Context) {
		for {
			q.mu.Lock()
			if len(q.tasks) == 0 {
				q.running = false
				q.tasks = nil
				q.mu.Unlock()
				return
			}
			next := q.tasks[0]
			q.tasks[0] = queuedTask{}
			q.tasks = q.tasks[1:]
			q.bytes -= next.size
			q.mu.Unlock()
			next.run(ctx)
		}
	})
	if !started {
		q.mu.Lock()
		q.running = false
		q.tasks = nil
		q.bytes = 0
		q.mu.Unlock()
	}
	return started
}
