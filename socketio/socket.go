package socketio

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/herald-rt/herald/auth"
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

// Socket is one connection of an authenticated user. Methods are safe for
// concurrent use.
type Socket struct {
	srv       *Server
	raw       *socket.Socket
	id        string
	nsp       string // "/" or a name of Config.Namespaces
	userID    string
	principal auth.Principal

	ctx    context.Context // ends when the socket disconnects
	cancel context.CancelFunc
	once   sync.Once // guards the disconnect bookkeeping

	emitMu sync.Mutex // upstream's Timeout flag is per socket, not per call
	tasks  serialQueue

	authMu sync.Mutex // guards principal (after a reauthenticate) and expiry
	expiry *expiry

	rateMu sync.Mutex // the event token bucket (Config.EventRate)
	tokens float64
	filled time.Time
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

func newSocket(srv *Server, raw *socket.Socket, p auth.Principal) *Socket {
	ctx, cancel := context.WithCancel(srv.ctx)
	p.Claims = maps.Clone(p.Claims)
	return &Socket{
		srv:       srv,
		raw:       raw,
		id:        string(raw.Id()),
		nsp:       raw.Nsp().Name(),
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
func (s *Socket) Namespace() string { return s.nsp }

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
	p.Claims = maps.Clone(p.Claims)
	s.authMu.Lock()
	defer s.authMu.Unlock()
	s.principal = p
}

// Context returns a context that ends when the socket disconnects.
func (s *Socket) Context() context.Context { return s.ctx }

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool { return s.ctx.Err() == nil && s.raw.Connected() }

// Transport returns "polling" or "websocket".
func (s *Socket) Transport() string {
	if conn := s.raw.Conn(); conn != nil && conn.Transport() != nil {
		return conn.Transport().Name()
	}
	return ""
}

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
	rooms := s.raw.Rooms()
	// Its own room and its user's room do not count.
	if max := s.srv.cfg.MaxRoomsPerSocket; max >= 0 && !rooms.Has(socket.Room(room)) && rooms.Len()-2 >= max {
		return fmt.Errorf("%w: %d rooms already (Config.MaxRoomsPerSocket)", ErrTooManyRooms, max)
	}
	s.raw.Join(socket.Room(room))
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
	s.raw.Leave(socket.Room(room))
	return nil
}

// Disconnect ends the socket. The client sees "io server disconnect" and
// does not reconnect by itself.
func (s *Socket) Disconnect() {
	s.raw.Disconnect(false)
}

// serialQueue runs a socket's handler calls one at a time, in arrival
// order, on a goroutine of the Server that exists only while work is queued.
type serialQueue struct {
	mu      sync.Mutex
	tasks   []func(context.Context)
	running bool
}

func (q *serialQueue) push(srv *Server, task func(context.Context)) bool {
	q.mu.Lock()
	q.tasks = append(q.tasks, task)
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
			q.tasks[0] = nil
			q.tasks = q.tasks[1:]
			q.mu.Unlock()
			next(ctx)
		}
	})
	if !started {
		q.mu.Lock()
		q.running = false
		q.tasks = nil
		q.mu.Unlock()
	}
	return started
}
