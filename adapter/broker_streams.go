package adapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The streams mode of RedisBroker: every message is an entry of one Redis
// stream, and every node, the publishing one included, delivers the entries
// in stream order from its own reader. The stream is the log that
// connection-state recovery replays from, on any node.

// Defaults of the streams mode.
const (
	DefaultStream        = "socket.io"
	DefaultStreamMaxLen  = 10_000
	DefaultSessionPrefix = "sio:session:"
	// streamBlock bounds one blocking XREAD; Close waits at most this long.
	streamBlock = time.Second
	// restoreHold bounds how long a restore holds this node's delivery.
	restoreHold = 3 * time.Second
)

var offsetPattern = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// streamLog reads the stream and delivers its entries.
type streamLog struct {
	b     *RedisBroker
	up    atomic.Bool
	wasUp bool // only run's goroutine touches it

	mu    sync.Mutex // held while an entry is delivered
	cond  *sync.Cond // on mu: signalled when holds drops or last moves
	holds int        // restores in progress: delivery waits
	last  string     // id of the last entry read; "" before the first read
}

func newStreamLog(b *RedisBroker) *streamLog {
	l := &streamLog{b: b}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// publishStream appends m to the stream. This node delivers it from its
// reader, like every other node. If Redis fails, m is delivered to this
// node's sockets at once (without an offset) and the error returned.
func (b *RedisBroker) publishStream(ctx context.Context, m Message) error {
	data, err := encodeStreamData(m)
	if err != nil {
		return err
	}
	if b.isClosed.Load() {
		return ErrClosed
	}
	fail := func(err error) error {
		b.publishErrors.Add(1)
		if deliver := b.deliverFn.Load(); deliver != nil {
			(*deliver)(m)
		}
		return fmt.Errorf("%w: %w", ErrRemoteUndelivered, err)
	}
	failNow, probe := b.failFast()
	if failNow {
		return fail(errRecentFailure)
	}
	if probe {
		defer b.probing.Store(false)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	if b.checksListeners() {
		_, _, err = b.checkListeners(ctx)
		if errors.Is(err, ErrNoListeners) || errors.Is(err, ErrModeMismatch) {
			return err
		}
	}
	if err == nil {
		args := &redis.XAddArgs{
			Stream: b.cfg.Stream, MaxLen: b.cfg.StreamMaxLen, Approx: true, ID: "*",
			Values: []any{"uid", b.uid, "nsp", wireNamespace(m), "type", streamType(m), "data", data},
		}
		_, err = redisCall(b, ctx, func(ctx context.Context) (string, error) {
			return b.cfg.Client.XAdd(ctx, args).Result()
		})
	}
	if err != nil {
		b.failUntil.Store(time.Now().Add(failFastFor).UnixNano())
		b.limited.Log(slog.LevelWarn, "publish", "redis XADD failed", "err", err)
		return fail(err)
	}
	if b.failUntil.Swap(0) != 0 {
		b.limited.Reset("publish")
		b.log.Info("redis publish recovered")
	}
	b.published.Add(1)
	return nil
}

// run reads the stream until ctx ends.
func (l *streamLog) run(ctx context.Context) {
	b := l.b
	defer l.up.Store(false)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := l.readOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			backoff = 50 * time.Millisecond
			l.markUp()
			continue
		}
		if l.up.Swap(false) {
			b.log.Warn("redis stream reading lost; reconnecting", "err", err)
		} else {
			b.limited.Log(slog.LevelWarn, "subscribe", "redis stream reading failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
}

// markUp records that Redis answers the reader.
func (l *streamLog) markUp() {
	b := l.b
	if l.up.Swap(true) {
		return
	}
	b.failUntil.Store(0)
	b.limited.Reset("subscribe")
	if l.wasUp {
		b.reconnects.Add(1)
		b.kickRegistry() // Redis may have lost the registration
		b.log.Info("redis stream reading re-established")
	}
	l.wasUp = true
}

// readOnce reads and delivers one batch of entries (or none, after
// blocking for streamBlock).
func (l *streamLog) readOnce(ctx context.Context) error {
	b := l.b
	l.mu.Lock()
	last := l.last
	l.mu.Unlock()
	if last == "" {
		// Start after the newest entry: history is for recovery only.
		res, err := b.cfg.Client.XRevRangeN(ctx, b.cfg.Stream, "+", "-", 1).Result()
		if err != nil {
			return err
		}
		last = "0-0"
		if len(res) > 0 {
			last = res[0].ID
		}
		l.mu.Lock()
		l.last = last
		l.cond.Broadcast()
		l.mu.Unlock()
		l.markUp()
	}
	res, err := b.cfg.Client.XRead(ctx, &redis.XReadArgs{
		Streams: []string{b.cfg.Stream, last}, Count: 100, Block: streamBlock,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range res {
		for _, e := range s.Messages {
			l.deliver(e)
		}
	}
	return nil
}

// deliver hands one entry to this node's sockets, once no restore holds
// delivery.
func (l *streamLog) deliver(e redis.XMessage) {
	b := l.b
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.holds > 0 {
		l.cond.Wait()
	}
	defer func() {
		l.last = e.ID
		l.cond.Broadcast()
	}()
	uid, m, ok, err := decodeStreamEntry(e.Values)
	if err != nil {
		b.dropped.Add(1)
		b.limited.Log(slog.LevelWarn, "malformed", "dropped a malformed stream entry", "id", e.ID, "err", err)
		return
	}
	if !ok {
		return
	}
	if uid != b.uid {
		b.received.Add(1)
	}
	m.Offset = e.ID
	if deliver := b.deliverFn.Load(); deliver != nil {
		(*deliver)(m)
	}
}

// SaveSession implements Recoverer (streams mode only): the session is
// stored as @socket.io/redis-streams-adapter stores it, for ttl.
func (b *RedisBroker) SaveSession(ctx context.Context, s Session, ttl time.Duration) error {
	if b.cfg.Mode != RedisStreams {
		return fmt.Errorf("adapter: sessions need the streams mode")
	}
	if s.PID == "" || s.SocketID == "" || ttl <= 0 {
		return errors.New("adapter: SaveSession: empty session or ttl")
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	key, value := b.cfg.SessionPrefix+s.PID, encodeSession(s)
	if _, err := redisCall(b, ctx, func(ctx context.Context) (string, error) {
		return b.cfg.Client.Set(ctx, key, value, ttl).Result()
	}); err != nil {
		b.limited.Log(slog.LevelWarn, "session", "redis: saving a session failed", "err", err)
		return fmt.Errorf("adapter: save session: %w", err)
	}
	return nil
}

// RestoreSession implements Recoverer (streams mode only).
func (b *RedisBroker) RestoreSession(ctx context.Context, pid, offset string) (Session, []Message, func(bool), error) {
	noop := func(bool) {}
	l := b.streamReader()
	if l == nil {
		return Session{}, nil, noop, fmt.Errorf("adapter: sessions need the streams mode and Subscribe")
	}
	if pid == "" || !offsetPattern.MatchString(offset) {
		return Session{}, nil, noop, fmt.Errorf("%w: bad pid or offset", ErrNoSession)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*b.cfg.PublishTimeout)
	defer cancel()
	key := b.cfg.SessionPrefix + pid
	res, err := redisCall(b, ctx, func(ctx context.Context) ([]any, error) {
		return scriptTakeSession.Run(ctx, b.cfg.Client, []string{key}).Slice()
	})
	if errors.Is(err, redis.Nil) {
		return Session{}, nil, noop, ErrNoSession
	}
	if err != nil {
		return Session{}, nil, noop, fmt.Errorf("adapter: restore session: %w", err)
	}
	raw, _ := res[0].(string)
	ttl, _ := res[1].(int64)
	putBack := func() {
		if ttl <= 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.PublishTimeout)
		defer cancel()
		if _, err := redisCall(b, ctx, func(ctx context.Context) (bool, error) {
			return b.cfg.Client.SetNX(ctx, key, raw, time.Duration(ttl)*time.Millisecond).Result()
		}); err != nil {
			b.limited.Log(slog.LevelWarn, "session", "redis: putting a session back failed", "err", err)
		}
	}
	s, err := decodeSession(raw)
	if err != nil {
		return Session{}, nil, noop, err
	}
	if s.PID != pid {
		return Session{}, nil, noop, fmt.Errorf("%w: session key holds another pid", ErrNoSession)
	}
	if at, err := redisCall(b, ctx, func(ctx context.Context) ([]redis.XMessage, error) {
		return b.cfg.Client.XRangeN(ctx, b.cfg.Stream, offset, offset, 1).Result()
	}); err != nil {
		return Session{}, nil, noop, fmt.Errorf("adapter: restore session: %w", err)
	} else if len(at) == 0 {
		return Session{}, nil, noop, fmt.Errorf("%w: offset %s is no longer in the stream", ErrNoSession, offset)
	}
	pos, release, err := l.hold(ctx, offset)
	if err != nil {
		putBack()
		return Session{}, nil, noop, err
	}
	missed, err := b.missed(ctx, s, offset, pos)
	if err != nil {
		release()
		putBack()
		return Session{}, nil, noop, err
	}
	var once sync.Once
	done := func(taken bool) {
		once.Do(func() {
			release()
			if !taken {
				putBack()
			}
		})
	}
	return s, missed, done, nil
}

// scriptTakeSession gets and deletes a session, with its remaining
// lifetime in milliseconds.
var scriptTakeSession = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return {v, ttl}`)

func (b *RedisBroker) streamReader() *streamLog {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stream
}

// hold stops this node's delivery once it has delivered offset (the client
// saw it, so this node must not deliver it again) and returns the position
// it stopped at. release resumes delivery; it runs by itself after
// restoreHold.
func (l *streamLog) hold(ctx context.Context, offset string) (string, func(), error) {
	for {
		l.mu.Lock()
		if l.last != "" && compareIDs(l.last, offset) >= 0 {
			break
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("adapter: restore session: this node's reader is behind the client: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	l.holds++
	pos := l.last
	l.mu.Unlock()
	var once sync.Once
	timer := make(chan *time.Timer, 1)
	release := func() {
		once.Do(func() {
			stopTimer(timer)
			l.mu.Lock()
			l.holds--
			l.cond.Broadcast()
			l.mu.Unlock()
		})
	}
	timer <- time.AfterFunc(restoreHold, release)
	return pos, release, nil
}

// stopTimer stops the timer sent on ch, if it was sent (the channel orders
// the timer's creation before its use by its own callback).
func stopTimer(ch chan *time.Timer) {
	select {
	case t := <-ch:
		t.Stop()
	default:
	}
}

// missed returns the broadcasts in (offset, pos] that the session's rooms
// would have received.
func (b *RedisBroker) missed(ctx context.Context, s Session, offset, pos string) ([]Message, error) {
	var out []Message
	from := "(" + offset
	for range 100 {
		if compareIDs(strings.TrimPrefix(from, "("), pos) >= 0 {
			break
		}
		entries, err := redisCall(b, ctx, func(ctx context.Context) ([]redis.XMessage, error) {
			return b.cfg.Client.XRangeN(ctx, b.cfg.Stream, from, pos, 1000).Result()
		})
		if err != nil {
			return nil, fmt.Errorf("adapter: restore session: %w", err)
		}
		for _, e := range entries {
			_, m, ok, err := decodeStreamEntry(e.Values)
			if err != nil || !ok || m.Disconnect || !includes(s.Rooms, m) {
				continue
			}
			m.Offset = e.ID
			out = append(out, m)
		}
		if len(entries) < 1000 {
			break
		}
		from = "(" + entries[len(entries)-1].ID
	}
	return out, nil
}

// includes reports whether a socket in rooms receives m, as Socket.IO's
// adapters decide it.
func includes(rooms []string, m Message) bool {
	in := len(m.Rooms) == 0 || slices.ContainsFunc(rooms, func(r string) bool { return slices.Contains(m.Rooms, r) })
	return in && !slices.ContainsFunc(rooms, func(r string) bool { return slices.Contains(m.Except, r) })
}

// compareIDs compares two stream ids ("ms-seq").
func compareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	if am != bm {
		if am < bm {
			return -1
		}
		return 1
	}
	switch {
	case as < bs:
		return -1
	case as > bs:
		return 1
	}
	return 0
}

func splitID(id string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	s, _ := strconv.ParseUint(seq, 10, 64)
	return m, s
}
