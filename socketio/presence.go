package socketio

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
)

// IsOnline reports whether userID has at least one connected socket. When
// a cluster Presence's store does not answer, a user with a socket on this
// node is online (nil error) and any other is reported offline with an
// error wrapping adapter.ErrPartial: the answer of this node alone.
func (s *Server) IsOnline(ctx context.Context, userID string) (bool, error) {
	if err := validateUserID(userID); err != nil {
		return false, err
	}
	return s.cfg.Presence.IsOnline(ctx, userID)
}

// OnlineUsers returns the ids of the online users, sorted. When a cluster
// Presence's store does not answer, it returns this node's users and an
// error wrapping adapter.ErrPartial, at once: check errors.Is(err,
// adapter.ErrPartial) to use them.
func (s *Server) OnlineUsers(ctx context.Context) ([]string, error) {
	return s.cfg.Presence.Users(ctx)
}

// OnlineCount returns how many users are online; many tabs of one user
// count once.
func (s *Server) OnlineCount(ctx context.Context) (int, error) {
	users, _, err := s.cfg.Presence.Counts(ctx)
	return users, err
}

// maxNotes bounds the presence transitions waiting for OnPresence and the
// broadcast; beyond, transitions are dropped (and counted) rather than
// held: an OnPresence that cannot keep up must not grow the heap.
const maxNotes = 100_000

// noteQueue is a FIFO of presence transitions, so that the connection path
// never waits for a slow OnPresence callback. It holds at most maxNotes.
type noteQueue struct {
	mu      sync.Mutex
	items   []PresenceEvent
	closed  bool
	dropped int64
	signal  chan struct{}
}

func newNoteQueue() *noteQueue { return &noteQueue{signal: make(chan struct{}, 1)} }

func (q *noteQueue) push(ev PresenceEvent) {
	q.mu.Lock()
	switch {
	case q.closed:
	case len(q.items) >= maxNotes:
		q.dropped++
	default:
		q.items = append(q.items, ev)
	}
	q.mu.Unlock()
	q.wake()
}

func (q *noteQueue) droppedCount() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

func (q *noteQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *noteQueue) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take returns the queued items, and whether the queue is closed.
func (q *noteQueue) take() ([]PresenceEvent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items, q.closed
}

// runNotes delivers presence transitions in order until the queue is closed
// and drained, or ctx ends.
func (s *Server) runNotes(ctx context.Context) {
	var reported int64
	for {
		items, closed := s.notes.take()
		if d := s.notes.droppedCount(); d > reported {
			s.log.Warn("presence transitions dropped: OnPresence or the broadcast cannot keep up", "dropped", d-reported)
			reported = d
		}
		for _, ev := range items {
			if ctx.Err() != nil {
				return
			}
			s.notify(ctx, ev)
		}
		if closed && len(items) == 0 {
			return
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-s.notes.signal:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) notify(ctx context.Context, ev PresenceEvent) {
	s.log.Info("presence", "user", ev.UserID, "online", ev.Online)
	if cb := s.cfg.OnPresence; cb != nil {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.log.Error("OnPresence panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
			}()
			cb(ctx, ev)
		}()
	}
	if !s.cfg.BroadcastPresence {
		return
	}
	if err := s.broadcastPresence(ctx, ev); err != nil {
		s.log.Warn("presence broadcast failed", "user", ev.UserID, "err", err)
	}
}

func (s *Server) broadcastPresence(ctx context.Context, ev PresenceEvent) error {
	def := events.UserOffline
	if ev.Online {
		def = events.UserOnline
	}
	p := events.PresencePayload{UserID: ev.UserID, Meta: events.Meta{Timestamp: ev.Time}}
	subject := UserRoom(ev.UserID)
	visible := s.cfg.PresenceVisible
	if visible == nil {
		return s.publishTo(ctx, "", "", nil, []string{subject}, def, p)
	}
	viewers, err := s.cfg.Presence.Users(ctx)
	if err != nil && !errors.Is(err, adapter.ErrPartial) {
		return err // with a partial answer, this node's viewers are told
	}
	var rooms []string
	for _, v := range viewers {
		if v != ev.UserID && visible(v, ev.UserID) {
			rooms = append(rooms, UserRoom(v))
		}
	}
	if len(rooms) == 0 {
		return nil
	}
	return s.publishTo(ctx, "", "", rooms, nil, def, p)
}
