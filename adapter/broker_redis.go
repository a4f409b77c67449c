package adapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisMode picks how a RedisBroker uses Redis.
type RedisMode string

const (
	// RedisPubSub is classic pub/sub (PUBLISH, PSUBSCRIBE), wire-compatible
	// with @socket.io/redis-adapter's createAdapter and
	// @socket.io/redis-emitter. It is the default.
	RedisPubSub RedisMode = "pubsub"
	// RedisSharded is sharded pub/sub (SPUBLISH, SSUBSCRIBE; Redis 7 or
	// newer), wire-compatible with @socket.io/redis-adapter's
	// createShardedAdapter in its default "dynamic" subscription mode: a
	// node subscribes to the channel of every room it has sockets in, so a
	// message to one user reaches only the nodes that hold that user.
	RedisSharded RedisMode = "sharded"
	// RedisStreams keeps every message in a Redis stream (XADD, XREAD),
	// wire-compatible with @socket.io/redis-streams-adapter. Nodes deliver
	// in stream order, a node that loses Redis for a while reads on from
	// where it stopped, and the stream is the log from which a client that
	// reconnects to any node recovers what it missed (Config.Recovery in
	// package socketio).
	RedisStreams RedisMode = "streams"
)

// Defaults of RedisBrokerConfig.
const (
	DefaultRedisPrefix    = "socket.io"
	DefaultPublishTimeout = 2 * time.Second
	DefaultLogInterval    = 30 * time.Second
	DefaultGapWindow      = time.Second
	// failFastFor is how long publishes fail at once after one failed,
	// before the next one tries Redis again.
	failFastFor = time.Second
	// healthInterval is how long the subscriber waits for traffic before it
	// pings Redis to find a dead connection.
	healthInterval = 5 * time.Second
	// maxRetryBackoff caps the pause between two attempts to subscribe (or
	// to read the stream) again while Redis is unreachable. It bounds how
	// long after Redis is back a node still misses pub/sub messages.
	maxRetryBackoff = 500 * time.Millisecond
)

// ErrRemoteUndelivered is returned by RedisBroker.Publish when a message
// reached this node's sockets but could not be handed to Redis, so the
// other nodes did not get it. The caller decides whether to retry (this
// node's sockets would then see the message twice).
var ErrRemoteUndelivered = errors.New("adapter: not delivered to other nodes: redis unreachable")

var errRecentFailure = errors.New("redis failed less than a second ago")

// ErrMaybeLost is returned, wrapped, by RedisBroker.Publish in the pub/sub
// and sharded modes for a message that Redis took but that some nodes may
// have missed because they were subscribing again: pub/sub does not keep
// a message for a subscriber that is not there. A node reports it for what
// it publishes while its own subscription is down and for GapWindow after
// it is back (a Redis restart or failover cuts every node's at once); a
// publish-only broker (an Emitter) in pub/sub mode when fewer nodes
// received the message than are registered. The message reached this
// node's sockets and the nodes that were subscribed. The streams mode has
// no such gap: nodes read on from where they stopped.
var ErrMaybeLost = errors.New("adapter: some nodes may have missed it: they were resubscribing to redis")

// RedisBrokerConfig configures a RedisBroker.
type RedisBrokerConfig struct {
	// Client is the caller's Redis client (standalone, Sentinel or
	// Cluster). Required. The broker never closes it.
	Client redis.UniversalClient
	// Mode is RedisPubSub (the default, for "") or RedisSharded.
	Mode RedisMode
	// Prefix starts every channel name; "" means DefaultRedisPrefix, the
	// default of the Node.js adapter and emitter, so that they interoperate.
	Prefix string
	// Stream names the stream of the streams mode; "" means DefaultStream.
	Stream string
	// StreamMaxLen caps the stream, approximately (MAXLEN ~); 0 means
	// DefaultStreamMaxLen. A client can only recover messages still in it.
	StreamMaxLen int64
	// SessionPrefix starts the keys of recoverable sessions; "" means
	// DefaultSessionPrefix.
	SessionPrefix string
	// PublishTimeout bounds one publish when the caller's context has no
	// earlier deadline; 0 means DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Logger receives the broker's logs; nil means none. While Redis is
	// unreachable a failure is logged at most once per LogInterval.
	Logger *slog.Logger
	// LogInterval rate-limits repeated failure logs; 0 means
	// DefaultLogInterval.
	LogInterval time.Duration
	// GapWindow is how long after this node's subscription is back its
	// publishes are still reported with ErrMaybeLost (pub/sub and sharded
	// modes): the other nodes resubscribe in about as long as it did, at
	// most maxRetryBackoff (500 ms) later. 0 means DefaultGapWindow.
	GapWindow time.Duration
	// SkipListenerCheck turns off a publish-only broker's check that some
	// node listens on its mode and prefix (ErrNoListeners,
	// ErrModeMismatch). The check finds herald nodes by their registration
	// and Node.js servers by their subscriptions; in streams mode, by a
	// heartbeat among the stream's last 1,000 entries of the last 15 s,
	// which a Node.js-only cluster busier than that may not show.
	SkipListenerCheck bool
}

// RedisBrokerMetrics counts what a RedisBroker did since it was created.
type RedisBrokerMetrics struct {
	Published      uint64 // messages handed to Redis
	PublishErrors  uint64 // publishes that failed (ErrRemoteUndelivered)
	Received       uint64 // messages from other nodes delivered here
	Dropped        uint64 // messages from Redis that were malformed or not deliverable
	Reconnects     uint64 // times a subscription was re-established after it was lost
	MaybeLost      uint64 // publishes reported with ErrMaybeLost (among Published)
	SubscriptionUp bool   // whether the subscription is currently established
}

// RedisBroker is a Broker over Redis pub/sub. It delivers a message to this
// node's sockets on the publishing goroutine, then publishes it for the
// other nodes; messages from other nodes are delivered on one goroutine, in
// the order Redis hands them over.
//
// It speaks the wire format of Socket.IO's Redis adapters (see wire.go):
// herald nodes, Node.js socket.io servers with @socket.io/redis-adapter and
// processes with @socket.io/redis-emitter can share one cluster. Unlike the
// upstream Go adapter it forwards room-less and multi-room messages, and
// delivers byte-identical JSON on every node.
//
// A RedisBroker whose Subscribe is never called is publish-only, for
// processes without sockets (see socketio.Emitter).
type RedisBroker struct {
	cfg     RedisBrokerConfig
	honours bool // the client ends commands at their deadline (deadline.go)
	uid     string
	base    string // "<prefix>#/#", the main namespace's channel
	log     *slog.Logger
	limited *rateLog

	mu      sync.Mutex
	deliver func(Message)
	closed  bool
	ctx     context.Context // ends at Close; the subscriptions' goroutines end with it
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{}            // wakes runRegistry to register again at once
	rooms   map[string]int           // sharded: room channel -> observers, for dynamic subscriptions
	nsps    map[string]bool          // sharded: namespaces whose main channel is subscribed
	subs    map[string]*subscription // by shard ("" outside Redis Cluster)
	stream  *streamLog               // streams mode, once subscribed
	pub     *publisher               // pub/sub and sharded modes

	published, publishErrors, received, dropped, reconnects, maybeLost atomic.Uint64

	failUntil       atomic.Int64 // unix ns: fail fast until then
	listenersUntil  atomic.Int64 // unix ns: publish-only, a node listens (registry.go)
	probing         atomic.Bool  // a publish is trying Redis again after failures
	gapUntil        atomic.Int64 // unix ns: publishes may miss resubscribing nodes until then
	registeredNodes atomic.Int64 // publish-only pub/sub: live herald nodes of this prefix (registry.go)
	registeredAt    atomic.Int64 // unix ns: when registeredNodes was read
	deliverFn       atomic.Pointer[func(Message)]
	isClosed        atomic.Bool // Publish reads these without b.mu
}

var (
	_ Broker    = (*RedisBroker)(nil)
	_ Recoverer = (*RedisBroker)(nil)
)

// NewRedisBroker validates cfg and returns a broker. It does no I/O:
// Subscribe starts the subscription.
func NewRedisBroker(cfg RedisBrokerConfig) (*RedisBroker, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("Client is required"))
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = RedisPubSub
	case RedisPubSub, RedisSharded, RedisStreams:
	default:
		errs = append(errs, fmt.Errorf("Mode %q: want %q, %q or %q", cfg.Mode, RedisPubSub, RedisSharded, RedisStreams))
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.StreamMaxLen == 0 {
		cfg.StreamMaxLen = DefaultStreamMaxLen
	}
	if cfg.StreamMaxLen < 0 {
		errs = append(errs, errors.New("StreamMaxLen must not be negative"))
	}
	if cfg.SessionPrefix == "" {
		cfg.SessionPrefix = DefaultSessionPrefix
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "#*?[]") {
		errs = append(errs, fmt.Errorf("Prefix %q: must not contain # * ? [ ]", cfg.Prefix))
	}
	if cfg.PublishTimeout < 0 || cfg.LogInterval < 0 || cfg.GapWindow < 0 {
		errs = append(errs, errors.New("PublishTimeout, LogInterval and GapWindow must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("adapter: invalid RedisBrokerConfig: %w", errors.Join(errs...))
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = DefaultLogInterval
	}
	if cfg.GapWindow == 0 {
		cfg.GapWindow = DefaultGapWindow
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	honours := honoursDeadlines(cfg.Client)
	return &RedisBroker{
		cfg:     cfg,
		honours: honours,
		uid:     "herald-" + hex.EncodeToString(id[:]),
		base:    cfg.Prefix + "#" + defaultNamespace + "#",
		log:     log,
		limited: newRateLog(log, cfg.LogInterval),
		kick:    make(chan struct{}, 1),
		rooms:   map[string]int{},
		nsps:    map[string]bool{"": true},
		subs:    map[string]*subscription{},
		pub:     &publisher{client: cfg.Client, timeout: cfg.PublishTimeout, honours: honours},
	}, nil
}

// ID returns the broker's server id, which tags the messages it publishes.
func (b *RedisBroker) ID() string { return b.uid }

// Metrics returns the broker's counters.
func (b *RedisBroker) Metrics() RedisBrokerMetrics {
	return RedisBrokerMetrics{
		Published:      b.published.Load(),
		PublishErrors:  b.publishErrors.Load(),
		Received:       b.received.Load(),
		Dropped:        b.dropped.Load(),
		Reconnects:     b.reconnects.Load(),
		MaybeLost:      b.maybeLost.Load(),
		SubscriptionUp: b.subscriptionsUp(),
	}
}

// subscriptionsUp reports whether every subscription is established.
func (b *RedisBroker) subscriptionsUp() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stream != nil {
		return b.stream.up.Load()
	}
	if len(b.subs) == 0 {
		return false
	}
	for _, sub := range b.subs {
		if !sub.up.Load() {
			return false
		}
	}
	return true
}

// Subscribe implements Broker. It starts the goroutine that receives other
// nodes' messages; Close stops it. It does not wait for Redis: until the
// subscription is up (see Metrics), other nodes' messages are not received.
func (b *RedisBroker) Subscribe(deliver func(Message)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkSubscribe(deliver, b.deliver, b.closed); err != nil {
		return err
	}
	b.deliver = deliver
	b.deliverFn.Store(&deliver)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.runRegistry(b.ctx)
	}()
	switch b.cfg.Mode {
	case RedisSharded:
		b.subscribeLocked(b.base)
	case RedisStreams:
		b.stream = newStreamLog(b)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.stream.run(b.ctx)
		}()
	default:
		b.startLocked("", nil)
	}
	return nil
}

// Publish implements Broker. In the pub/sub modes it delivers m to this
// node's sockets, then publishes it to the other nodes. In streams mode it
// appends m to the stream, from which every node, this one included,
// delivers it. It fails with ErrRemoteUndelivered (wrapping Redis's error)
// when Redis does not take the message; this node's sockets have it then.
func (b *RedisBroker) Publish(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.cfg.Mode == RedisStreams {
		return b.publishStream(ctx, m)
	}
	var payload []byte
	var err error
	switch {
	case b.cfg.Mode == RedisSharded:
		payload, err = encodeSharded(b.uid, m)
	case m.Disconnect:
		payload, err = encodeDisconnectRequest(b.uid, m)
	default:
		payload, err = encodeClassic(b.uid, m)
	}
	if err != nil {
		return err
	}
	if b.isClosed.Load() {
		return ErrClosed
	}
	if deliver := b.deliverFn.Load(); deliver != nil {
		(*deliver)(m)
	}
	fail, probe := b.failFast()
	if fail {
		b.publishErrors.Add(1)
		return fmt.Errorf("%w: %w", ErrRemoteUndelivered, errRecentFailure)
	}
	if probe {
		defer b.probing.Store(false)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	needCount := false
	if b.checksListeners() {
		_, needCount, err = b.checkListeners(ctx)
		if errors.Is(err, ErrNoListeners) || errors.Is(err, ErrModeMismatch) {
			return err
		}
	}
	var n int64
	if err == nil {
		switch {
		case b.cfg.Mode == RedisSharded && m.Disconnect:
			n, err = b.pub.publish(ctx, true, b.baseOf(m.Namespace), payload)
		case b.cfg.Mode == RedisSharded:
			n, err = b.pub.publish(ctx, true, shardedChannelFor(b.baseOf(m.Namespace), m.Rooms), payload)
		case m.Disconnect:
			n, err = b.pub.publish(ctx, false, requestChannel(b.cfg.Prefix, wireNamespace(m)), payload)
		default:
			n, err = b.pub.publish(ctx, false, channelFor(b.baseOf(m.Namespace), m.Rooms), payload)
		}
	}
	if errors.Is(err, ErrClosed) { // Close came after the check above
		return err
	}
	if err == nil && needCount && n == 0 {
		return b.noListenersNow(ctx)
	}
	if err != nil {
		b.publishErrors.Add(1)
		b.failUntil.Store(time.Now().Add(failFastFor).UnixNano())
		b.limited.Log(slog.LevelWarn, "publish", "redis publish failed", "err", err)
		return fmt.Errorf("%w: %w", ErrRemoteUndelivered, err)
	}
	if b.failUntil.Swap(0) != 0 {
		b.limited.Reset("publish")
		b.log.Info("redis publish recovered")
	}
	b.published.Add(1)
	if gap := b.gapReport(ctx, n); gap != nil {
		b.maybeLost.Add(1)
		return gap
	}
	return nil
}

// redisCall runs one Redis operation bounded by ctx's deadline whatever
// the client's options (deadline.go). ctx must have a deadline.
func redisCall[T any](b *RedisBroker, ctx context.Context, op func(ctx context.Context) (T, error)) (T, error) {
	return bounded(ctx, b.honours, op)
}

// gapReport returns an ErrMaybeLost error for a message Redis took (n
// clients received it) when some nodes may have missed it (see
// ErrMaybeLost), nil otherwise.
func (b *RedisBroker) gapReport(ctx context.Context, n int64) error {
	if until := b.gapUntil.Load(); until != 0 {
		if time.Now().UnixNano() < until {
			return fmt.Errorf("%w (this node's subscription was down or is back for less than %v)", ErrMaybeLost, b.cfg.GapWindow)
		}
		b.gapUntil.CompareAndSwap(until, 0)
	}
	if b.cfg.Mode != RedisPubSub || !b.checksListeners() {
		return nil
	}
	if want := b.liveNodes(ctx); n < want {
		return fmt.Errorf("%w (%d clients received it, %d nodes are registered)", ErrMaybeLost, n, want)
	}
	return nil
}

// failFast reports whether a publish fails at once, without waiting for
// Redis, because Redis failed recently (a circuit breaker): for
// failFastFor after a failure every publish does; after that one publish
// at a time, the probe, tries Redis again while the others still fail at
// once, until it answers. A stalled Redis thus holds up one publish per
// PublishTimeout + failFastFor, not every one.
func (b *RedisBroker) failFast() (fail, probe bool) {
	until := b.failUntil.Load()
	switch {
	case until == 0:
		return false, false
	case time.Now().UnixNano() < until:
		return true, false
	case b.probing.CompareAndSwap(false, true):
		return false, true
	}
	return true, false
}

// checksListeners reports whether Publish checks that a node listens: on a
// publish-only broker (Subscribe never called), unless SkipListenerCheck.
func (b *RedisBroker) checksListeners() bool {
	return !b.cfg.SkipListenerCheck && b.deliverFn.Load() == nil
}

// ObserveRoom is ObserveNamespaceRoom for the main namespace.
func (b *RedisBroker) ObserveRoom(room string, joined bool) { b.ObserveNamespaceRoom("", room, joined) }

// ObserveNamespaceRoom tells a sharded broker that this node has sockets in
// room of namespace nsp ("" for the main one) (joined true) or no longer
// has (joined false), so that it subscribes to the room's channel, and to
// the namespace's main channel when it first sees the namespace. Calls are
// counted: a room stays subscribed until it was left as often as it was
// joined. The other modes ignore it: they receive every namespace.
func (b *RedisBroker) ObserveNamespaceRoom(nsp, room string, joined bool) {
	if b.cfg.Mode != RedisSharded {
		return
	}
	base := b.baseOf(nsp)
	channel := shardedChannelFor(base, []string{room})
	b.mu.Lock()
	defer b.mu.Unlock()
	if joined && !b.nsps[nsp] && b.ctx != nil && !b.closed {
		b.nsps[nsp] = true
		b.subscribeLocked(base)
	}
	if channel == base {
		return // rooms with a socket id's length travel on the main channel
	}
	n := b.rooms[channel]
	switch {
	case joined:
		b.rooms[channel] = n + 1
	case n <= 1:
		delete(b.rooms, channel)
	default:
		b.rooms[channel] = n - 1
	}
	if b.ctx == nil || b.closed {
		return
	}
	switch {
	case joined && n == 0:
		b.subscribeLocked(channel)
	case !joined && n == 1:
		b.unsubscribeLocked(channel)
	}
}

// baseOf returns the main channel of namespace nsp ("" for "/").
func (b *RedisBroker) baseOf(nsp string) string {
	if nsp == "" {
		return b.base
	}
	return b.cfg.Prefix + "#" + nsp + "#"
}

// roomOf returns the room a channel is dedicated to, "" for a namespace's
// main channel, and false for a channel that is neither.
func (b *RedisBroker) roomOf(channel string) (string, bool) {
	rest, ok := strings.CutPrefix(channel, b.cfg.Prefix+"#")
	if !ok {
		return "", false
	}
	nsp, _, ok := strings.Cut(rest, "#")
	if !ok {
		return "", false
	}
	return roomOfChannel(b.cfg.Prefix+"#"+nsp+"#", channel)
}

// shardOf returns the shard whose node serves channel's slot on Redis
// Cluster (sharded pub/sub is per shard), "" on other deployments.
func (b *RedisBroker) shardOf(channel string) string {
	cc, ok := b.cfg.Client.(*redis.ClusterClient)
	if !ok {
		return ""
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.PublishTimeout)
	defer cancel()
	node, err := cc.MasterForKey(ctx, channel)
	if err != nil {
		b.limited.Log(slog.LevelWarn, "shard", "redis cluster: no master for a channel; subscribing through a random node", "err", err)
		return ""
	}
	return node.Options().Addr
}

// subscribeLocked adds channel to its shard's subscription, starting that
// subscription if it is the shard's first channel.
func (b *RedisBroker) subscribeLocked(channel string) {
	shard := b.shardOf(channel)
	sub := b.subs[shard]
	if sub == nil {
		b.startLocked(shard, []string{channel})
		return
	}
	sub.add(b.ctx, channel)
}

func (b *RedisBroker) unsubscribeLocked(channel string) {
	if sub := b.subs[b.shardOf(channel)]; sub != nil {
		sub.remove(b.ctx, channel)
	}
}

// startLocked starts a subscription and its goroutine.
func (b *RedisBroker) startLocked(shard string, channels []string) {
	sub := &subscription{b: b, shard: shard, channels: map[string]struct{}{}}
	for _, c := range channels {
		sub.channels[c] = struct{}{}
	}
	b.subs[shard] = sub
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		sub.run(b.ctx)
	}()
}

// Close implements Broker: it stops the subscriptions' goroutines and waits
// for them, and for the publishes in flight to be answered (see
// publisher.close), or for ctx to end.
func (b *RedisBroker) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.isClosed.Store(true)
	cancel := b.cancel
	subs := make([]*subscription, 0, len(b.subs))
	for _, sub := range b.subs {
		subs = append(subs, sub)
	}
	b.mu.Unlock()
	idle := b.pub.close()
	if cancel != nil {
		cancel()
		for _, sub := range subs {
			sub.interrupt()
		}
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		<-idle
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// subscription is one Redis subscription and the goroutine that reads it:
// the namespace's pattern in pub/sub mode; in sharded mode the channels of
// one shard (one for all of them outside Redis Cluster).
type subscription struct {
	b      *RedisBroker
	shard  string
	up     atomic.Bool
	everUp bool // only the goroutine of run touches it

	mu       sync.Mutex
	channels map[string]struct{} // sharded: what to (re)subscribe to
	ps       *redis.PubSub
}

func (s *subscription) add(ctx context.Context, channel string) {
	s.mu.Lock()
	s.channels[channel] = struct{}{}
	ps := s.ps
	s.mu.Unlock()
	if ps == nil {
		return // the next open subscribes to it
	}
	// A failure is repaired when the subscription is re-established, which
	// subscribes to every channel again.
	ctx, cancel := context.WithTimeout(ctx, s.b.cfg.PublishTimeout)
	defer cancel()
	if err := ps.SSubscribe(ctx, channel); err != nil {
		s.b.limited.Log(slog.LevelWarn, "ssubscribe", "redis room subscription failed", "err", err)
	}
}

func (s *subscription) remove(ctx context.Context, channel string) {
	s.mu.Lock()
	delete(s.channels, channel)
	ps := s.ps
	s.mu.Unlock()
	if ps == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.b.cfg.PublishTimeout)
	defer cancel()
	if err := ps.SUnsubscribe(ctx, channel); err != nil {
		s.b.limited.Log(slog.LevelWarn, "ssubscribe", "redis room unsubscription failed", "err", err)
	}
}

// interrupt closes the live PubSub, which unblocks a pending read.
func (s *subscription) interrupt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ps != nil {
		_ = s.ps.Close()
	}
}

// run keeps the subscription up until ctx ends, re-establishing it after
// errors with a capped backoff.
func (s *subscription) run(ctx context.Context) {
	defer s.up.Store(false)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		if s.once(ctx) {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
}

// once subscribes and delivers until the subscription fails. It reports
// whether the subscription was established.
func (s *subscription) once(ctx context.Context) (established bool) {
	b := s.b
	ps := s.open(ctx)
	defer func() {
		s.mu.Lock()
		if s.ps == ps {
			s.ps = nil
		}
		s.mu.Unlock()
		_ = ps.Close()
		if s.up.Swap(false) && ctx.Err() == nil {
			b.gapUntil.Store(math.MaxInt64) // until every subscription is back
			b.limited.Reset("subscribe")
			b.log.Warn("redis subscription lost; reconnecting", "shard", s.shard)
		}
	}()
	pinged := false
	for {
		raw, err := ps.ReceiveTimeout(ctx, healthInterval)
		if ctx.Err() != nil {
			return established
		}
		if err != nil {
			var netErr interface{ Timeout() bool }
			if errors.As(err, &netErr) && netErr.Timeout() && !pinged {
				// A quiet line: make sure it is alive.
				pinged = true
				if err := ps.Ping(ctx); err == nil {
					continue
				}
			}
			b.limited.Log(slog.LevelWarn, "subscribe", "redis subscription failed", "err", err)
			return established
		}
		pinged = false
		switch msg := raw.(type) {
		case *redis.Subscription:
			if !established {
				established = true
				if s.everUp {
					b.reconnects.Add(1)
					b.kickRegistry() // Redis may have lost the registration
					b.log.Info("redis subscription re-established", "shard", s.shard)
				}
				s.everUp = true
				s.up.Store(true)
				if b.gapUntil.Load() != 0 && b.subscriptionsUp() {
					b.gapUntil.Store(time.Now().Add(b.cfg.GapWindow).UnixNano())
				}
				b.failUntil.Store(0) // Redis answers again: publishes may try it
				b.limited.Reset("subscribe")
			}
		case *redis.Message:
			b.onMessage(msg)
		case *redis.Pong:
		}
	}
}

// open starts the PubSub: every namespace's pattern in pub/sub mode, the
// shard's channels in sharded mode.
func (s *subscription) open(ctx context.Context) *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.cfg.Mode != RedisSharded {
		// Every namespace's events, and the request channels for Node's
		// disconnectSockets (a pattern, which PUBSUB NUMSUB does not count:
		// Node servers do not wait for answers herald never sends).
		s.ps = s.b.cfg.Client.PSubscribe(ctx, s.b.cfg.Prefix+"#*", s.b.cfg.Prefix+"-request#*")
		return s.ps
	}
	channels := make([]string, 0, len(s.channels))
	for c := range s.channels {
		channels = append(channels, c)
	}
	if _, cluster := s.b.cfg.Client.(*redis.ClusterClient); cluster && len(channels) > 1 {
		// The connection goes to the node of channels[0]'s slot, which
		// serves every channel of this shard; one SSUBSCRIBE may only name
		// channels of one slot (CROSSSLOT), so subscribe one by one.
		s.ps = s.b.cfg.Client.SSubscribe(ctx, channels[0])
		for _, c := range channels[1:] {
			if err := s.ps.SSubscribe(ctx, c); err != nil {
				// The read loop sees the broken connection and starts over.
				s.b.limited.Log(slog.LevelWarn, "ssubscribe", "redis room subscription failed", "err", err)
				break
			}
		}
		return s.ps
	}
	s.ps = s.b.cfg.Client.SSubscribe(ctx, channels...)
	return s.ps
}

func (b *RedisBroker) onMessage(msg *redis.Message) {
	if rest, isRequest := strings.CutPrefix(msg.Channel, b.cfg.Prefix+"-request#"); isRequest {
		b.onRequest(msg, strings.TrimSuffix(rest, "#"))
		return
	}
	room, ok := b.roomOf(msg.Channel)
	if !ok {
		return
	}
	var (
		uid string
		m   Message
		err error
	)
	if b.cfg.Mode != RedisSharded && classicFrom(msg.Payload, b.uid) {
		return // this node's own message, delivered locally when published
	}
	if b.cfg.Mode == RedisSharded {
		uid, m, ok, err = decodeSharded([]byte(msg.Payload))
	} else {
		uid, m, ok, err = decodeClassic([]byte(msg.Payload))
	}
	if uid == b.uid {
		return
	}
	if err != nil {
		b.dropped.Add(1)
		b.limited.Log(slog.LevelWarn, "malformed", "dropped a malformed message from redis", "channel", msg.Channel, "err", err)
		return
	}
	if !ok {
		return // not an event for this namespace: requests, heartbeats, acks
	}
	if room != "" && len(m.Rooms) == 0 {
		m.Rooms = []string{room}
	}
	b.received.Add(1)
	if deliver := b.deliverFn.Load(); deliver != nil {
		(*deliver)(m)
	}
}

// onRequest handles a message of the classic adapter's request channel of
// namespace nsp: a disconnect request is delivered, the rest ignored.
func (b *RedisBroker) onRequest(msg *redis.Message, nsp string) {
	if strings.Contains(nsp, "#") {
		return // a response channel or another's: "<prefix>-request#<nsp>#<uid>#"
	}
	uid, m, ok, err := decodeRequest([]byte(msg.Payload), nsp)
	if err != nil {
		b.dropped.Add(1)
		b.limited.Log(slog.LevelWarn, "malformed", "dropped a malformed request from redis", "channel", msg.Channel, "err", err)
		return
	}
	if uid == b.uid || !ok {
		return
	}
	b.received.Add(1)
	if deliver := b.deliverFn.Load(); deliver != nil {
		(*deliver)(m)
	}
}
