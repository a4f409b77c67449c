package adapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// RecoveringMemoryBroker is the single-node Broker with a log: it keeps the
// last messages and the sessions of disconnected sockets in memory, so that
// a client that reconnects to this node recovers what it missed
// (socketio.Config.Recovery). Messages are delivered on the publishing
// goroutine, one at a time, in the order of their offsets.
type RecoveringMemoryBroker struct {
	maxLen int

	mu      sync.Mutex
	cond    *sync.Cond // on mu: signalled when holds drops
	holds   int        // restores in progress: publishing waits
	deliver func(Message)
	closed  bool
	seq     uint64
	log     []Message // ring of the last maxLen messages, oldest at start
	start   int

	// sessMu guards sessions. It is taken after mu, never before: a
	// delivery (under mu) can close a socket, which saves its session.
	sessMu   sync.Mutex
	sessions map[string]memSession
}

type memSession struct {
	s       Session
	expires time.Time
}

var (
	_ Broker    = (*RecoveringMemoryBroker)(nil)
	_ Recoverer = (*RecoveringMemoryBroker)(nil)
)

// NewRecoveringMemoryBroker returns a single-node Broker that keeps the last
// maxLen messages for recovery; maxLen <= 0 means DefaultStreamMaxLen.
func NewRecoveringMemoryBroker(maxLen int) *RecoveringMemoryBroker {
	if maxLen <= 0 {
		maxLen = DefaultStreamMaxLen
	}
	b := &RecoveringMemoryBroker{maxLen: maxLen, sessions: map[string]memSession{}}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Subscribe implements Broker.
func (b *RecoveringMemoryBroker) Subscribe(deliver func(Message)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkSubscribe(deliver, b.deliver, b.closed); err != nil {
		return err
	}
	b.deliver = deliver
	return nil
}

// Publish implements Broker: it gives m the next offset, logs it and
// delivers it, unless a restore holds delivery, which it then waits for.
func (b *RecoveringMemoryBroker) Publish(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.holds > 0 && !b.closed {
		b.cond.Wait()
	}
	switch {
	case b.closed:
		return ErrClosed
	case b.deliver == nil:
		return errors.New("adapter: publish before subscribe")
	}
	if m.Disconnect {
		b.deliver(m) // a request, not an event: nothing to replay
		return nil
	}
	b.seq++
	m.Offset = "0-" + strconv.FormatUint(b.seq, 10)
	if len(b.log) < b.maxLen {
		b.log = append(b.log, m)
	} else {
		b.log[b.start] = m
		b.start = (b.start + 1) % b.maxLen
	}
	// Delivery happens under the lock so that offsets and delivery share
	// one order; deliver only queues writes to sockets.
	b.deliver(m)
	return nil
}

// Close implements Broker.
func (b *RecoveringMemoryBroker) Close(context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	return nil
}

// SaveSession implements Recoverer.
func (b *RecoveringMemoryBroker) SaveSession(_ context.Context, s Session, ttl time.Duration) error {
	if s.PID == "" || s.SocketID == "" || ttl <= 0 {
		return errors.New("adapter: SaveSession: empty session or ttl")
	}
	b.sessMu.Lock()
	defer b.sessMu.Unlock()
	now := time.Now()
	for pid, x := range b.sessions {
		if now.After(x.expires) {
			delete(b.sessions, pid)
		}
	}
	b.sessions[s.PID] = memSession{s: s, expires: now.Add(ttl)}
	return nil
}

// RestoreSession implements Recoverer.
func (b *RecoveringMemoryBroker) RestoreSession(_ context.Context, pid, offset string) (Session, []Message, func(bool), error) {
	noop := func(bool) {}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sessMu.Lock()
	x, ok := b.sessions[pid]
	if !ok || time.Now().After(x.expires) {
		delete(b.sessions, pid)
		b.sessMu.Unlock()
		return Session{}, nil, noop, ErrNoSession
	}
	seq, ok := memOffset(offset)
	oldest := b.seq - uint64(len(b.log)) + 1
	if !ok || seq < oldest || seq > b.seq {
		b.sessMu.Unlock()
		return Session{}, nil, noop, fmt.Errorf("%w: offset %q is not in the log", ErrNoSession, offset)
	}
	delete(b.sessions, pid)
	b.sessMu.Unlock()
	var missed []Message
	for i := seq - oldest + 1; i < uint64(len(b.log)); i++ {
		m := b.log[(b.start+int(i))%len(b.log)]
		if includes(x.s.Rooms, m) {
			missed = append(missed, m)
		}
	}
	b.holds++
	var once sync.Once
	timer := make(chan *time.Timer, 1)
	done := func(taken bool) {
		once.Do(func() {
			stopTimer(timer)
			b.mu.Lock()
			b.holds--
			b.cond.Broadcast()
			b.mu.Unlock()
			if !taken && time.Now().Before(x.expires) {
				b.sessMu.Lock()
				if _, exists := b.sessions[pid]; !exists {
					b.sessions[pid] = x
				}
				b.sessMu.Unlock()
			}
		})
	}
	timer <- time.AfterFunc(restoreHold, func() { done(false) })
	return x.s, missed, done, nil
}

// memOffset parses an offset of this broker ("0-<seq>").
func memOffset(offset string) (uint64, bool) {
	if len(offset) < 3 || offset[:2] != "0-" {
		return 0, false
	}
	n, err := strconv.ParseUint(offset[2:], 10, 64)
	return n, err == nil && n > 0
}
