package socketio

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/herald-rt/herald/adapter"
)

// Connection-state recovery across nodes. Upstream's server calls its
// adapter's PersistSession when a socket drops for a recoverable reason and
// RestoreSession when a client reconnects with its private session id and
// the offset of the last event it received. herald's adapter stores
// sessions through the Broker's Recoverer (Redis, readable by every node)
// and, unlike upstream, replays the missed events only after the handshake
// token was verified again and belongs to the session's user: upstream
// would write them to the connection before the middlewares ran.

// recoveryAdapterBuilder builds the namespace adapter when Config.Recovery
// is set.
type recoveryAdapterBuilder struct{ s *Server }

func (b *recoveryAdapterBuilder) New(nsp socket.Namespace) socket.Adapter {
	a := &recoveryAdapter{Adapter: socket.MakeAdapter(), s: b.s}
	a.Prototype(a)
	a.Construct(nsp)
	return a
}

// recoveryAdapter is upstream's in-memory adapter (rooms, local delivery)
// with sessions kept by the Broker.
type recoveryAdapter struct {
	socket.Adapter
	s *Server
}

func (a *recoveryAdapter) PersistSession(sess *socket.SessionToPersist) {
	if sess == nil || a.s.closing.Load() && a.s.ctx.Err() != nil {
		return
	}
	if _, refused := a.s.refused.LoadAndDelete(string(sess.Sid)); refused {
		return
	}
	var rooms []string
	if sess.Rooms != nil {
		for _, r := range sess.Rooms.Keys() {
			rooms = append(rooms, string(r))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := a.s.recoverer.SaveSession(ctx, adapter.Session{SocketID: string(sess.Sid), PID: string(sess.Pid), Rooms: rooms}, a.s.cfg.Recovery)
	if err != nil {
		a.s.log.Warn("session not saved: the client will start a new one", "sid", sess.Sid, "err", err)
	}
}

func (a *recoveryAdapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	ctx, cancel := context.WithTimeout(a.s.ctx, 5*time.Second)
	defer cancel()
	sess, missed, done, err := a.s.recoverer.RestoreSession(ctx, string(pid), offset)
	if err != nil {
		if errors.Is(err, adapter.ErrNoSession) {
			a.s.log.Debug("session not recovered", "err", err)
		} else {
			a.s.log.Warn("session not recovered", "err", err)
		}
		return nil, nil // a new session, as for an unknown one
	}
	a.s.restoring.put(sess.SocketID, &restore{missed: missed, done: done})
	rooms := types.NewSet[socket.Room]()
	for _, r := range sess.Rooms {
		rooms.Add(socket.Room(r))
	}
	return &socket.Session{
		SessionToPersist: &socket.SessionToPersist{Sid: socket.SocketId(sess.SocketID), Pid: pid, Rooms: rooms},
	}, nil
}

// restore is a session being recovered: the events to replay once the
// socket is authenticated, and the hold on this node's delivery.
type restore struct {
	missed []adapter.Message
	done   func(taken bool)
}

// restores tracks the sessions being recovered, by socket id.
type restores struct {
	mu sync.Mutex
	m  map[string]*restore
}

func (r *restores) put(sid string, x *restore) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]*restore{}
	}
	if old := r.m[sid]; old != nil {
		old.done(false)
	}
	r.m[sid] = x
	r.mu.Unlock()
	// A handshake that never completes must not keep its entry.
	time.AfterFunc(30*time.Second, func() {
		if x := r.take(sid); x != nil {
			x.done(false)
		}
	})
}

func (r *restores) take(sid string) *restore {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := r.m[sid]
	delete(r.m, sid)
	return x
}

// abandonRestore gives back a session whose handshake failed, so that its
// owner can still recover it.
func (s *Server) abandonRestore(sid string) {
	if x := s.restoring.take(sid); x != nil {
		x.done(false)
	}
}

// finishRestore completes the recovery of a socket that passed
// authentication: it checks that the session belongs to the socket's user,
// replays the missed events, then lets this node deliver again. It reports
// false if the socket must not be kept.
func (s *Server) finishRestore(raw *socket.Socket, userID string) bool {
	x := s.restoring.take(string(raw.Id()))
	if x == nil {
		s.log.Warn("recovered socket without a pending restore; closing it so that it starts over", "sid", raw.Id())
		return false
	}
	own := UserRoom(userID)
	for _, r := range raw.Rooms().Keys() {
		if room := string(r); strings.HasPrefix(room, UserRoomPrefix) && room != own {
			s.log.Warn("recovered session belongs to another user; refused", "sid", raw.Id(), "user", userID)
			// Closing the socket would persist the session again, with
			// this connection's state: give back the original instead.
			s.refused.Store(string(raw.Id()), struct{}{})
			x.done(false)
			return false
		}
	}
	defer x.done(true)
	nsp := messageNamespace(raw.Nsp().Name())
	for _, m := range x.missed {
		if m.Namespace != nsp {
			continue // the log holds every namespace's messages
		}
		if err := raw.Emit(m.Event, eventArgs(m, true)...); err != nil {
			s.log.Warn("replaying a missed event failed", "sid", raw.Id(), "event", m.Event, "err", err)
			return false
		}
	}
	return true
}

// eventArgs returns m's arguments for upstream's emit, with its offset
// last when withOffset (socket.io-client reads it as the offset to recover
// from).
func eventArgs(m adapter.Message, withOffset bool) []any {
	args := make([]any, 0, len(m.Args)+1)
	for _, a := range m.Args {
		args = append(args, wireArg(a))
	}
	if withOffset && m.Offset != "" {
		args = append(args, m.Offset)
	}
	return args
}

// deliverWithOffset hands a logged message to this node's sockets with its
// offset as the last argument, through the namespace adapter (upstream's
// broadcast operator has no way to pass an offset).
func (s *Server) deliverWithOffset(m adapter.Message) {
	data := append([]any{m.Event}, eventArgs(m, true)...)
	opts := &socket.BroadcastOptions{
		Rooms:  types.NewSet(toRooms(m.Rooms)...),
		Except: types.NewSet(toRooms(m.Except)...),
		Flags:  &socket.BroadcastFlags{},
	}
	s.namespaces[m.Namespace].Adapter().Broadcast(&parser.Packet{Type: parser.EVENT, Data: data}, opts)
}
