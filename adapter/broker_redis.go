package adapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
)

// Defaults of RedisBrokerConfig.
const (
	DefaultRedisPrefix    = "socket.io"
	DefaultPublishTimeout = 2 * time.Second
	DefaultLogInterval    = 30 * time.Second
	// failFastFor is how long publishes fail at once after one failed,
	// before the next one tries Redis again.
	failFastFor = time.Second
	// healthInterval is how long the subscriber waits for traffic before it
	// pings Redis to find a dead connection.
	healthInterval = 5 * time.Second
)

// ErrRemoteUndelivered is returned by RedisBroker.Publish when a message
// reached this node's sockets but could not be handed to Redis, so the
// other nodes did not get it. The caller decides whether to retry (this
// node's sockets would then see the message twice).
var ErrRemoteUndelivered = errors.New("adapter: not delivered to other nodes: redis unreachable")

var errRecentFailure = errors.New("redis failed less than a second ago")

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
	// PublishTimeout bounds one publish when the caller's context has no
	// earlier deadline; 0 means DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Logger receives the broker's logs; nil means none. While Redis is
	// unreachable a failure is logged at most once per LogInterval.
	Logger *slog.Logger
	// LogInterval rate-limits repeated failure logs; 0 means
	// DefaultLogInterval.
	LogInterval time.Duration
}

// RedisBrokerMetrics counts what a RedisBroker did since it was created.
type RedisBrokerMetrics struct {
	Published      uint64 // messages handed to Redis
	PublishErrors  uint64 // publishes that failed (ErrRemoteUndelivered)
	Received       uint64 // messages from other nodes delivered here
	Dropped        uint64 // messages from Redis that were malformed or not deliverable
	Reconnects     uint64 // times the subscription was re-established
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
	uid     string
	base    string // "<prefix>#/#"
	log     *slog.Logger
	limited *rateLog

	mu      sync.Mutex
	deliver func(Message)
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
	rooms   map[string]int // sharded: room -> observers, for dynamic subscriptions
	pubsub  *redis.PubSub  // the live subscription

	published, publishErrors, received, dropped, reconnects atomic.Uint64
	up                                                      atomic.Bool
	failUntil                                               atomic.Int64 // unix ns: fail fast until then
}

var _ Broker = (*RedisBroker)(nil)

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
	case RedisPubSub, RedisSharded:
	default:
		errs = append(errs, fmt.Errorf("Mode %q: want %q or %q", cfg.Mode, RedisPubSub, RedisSharded))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultRedisPrefix
	}
	if strings.ContainsAny(cfg.Prefix, "#*?[]") {
		errs = append(errs, fmt.Errorf("Prefix %q: must not contain # * ? [ ]", cfg.Prefix))
	}
	if cfg.PublishTimeout < 0 || cfg.LogInterval < 0 {
		errs = append(errs, errors.New("PublishTimeout and LogInterval must not be negative"))
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &RedisBroker{
		cfg:     cfg,
		uid:     "herald-" + hex.EncodeToString(id[:]),
		base:    cfg.Prefix + "#" + defaultNamespace + "#",
		log:     log,
		limited: newRateLog(log, cfg.LogInterval),
		rooms:   map[string]int{},
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
		SubscriptionUp: b.up.Load(),
	}
}

// Subscribe implements Broker. It starts the goroutine that receives other
// nodes' messages; Close stops it. It does not wait for Redis: until the
// subscription is up (see Metrics), other nodes' messages are not received.
func (b *RedisBroker) Subscribe(deliver func(Message)) error {
	if deliver == nil {
		return errors.New("adapter: nil deliver function")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return ErrClosed
	case b.deliver != nil:
		return errors.New("adapter: broker already has a subscriber")
	}
	b.deliver = deliver
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.done = make(chan struct{})
	go b.receive(ctx)
	return nil
}

// Publish implements Broker: it delivers m to this node's sockets, then
// publishes it to the other nodes. It fails with ErrRemoteUndelivered
// (wrapping Redis's error) when Redis does not take the message.
func (b *RedisBroker) Publish(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var payload []byte
	var err error
	if b.cfg.Mode == RedisSharded {
		payload, err = encodeSharded(b.uid, m)
	} else {
		payload, err = encodeClassic(b.uid, m)
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	deliver, closed := b.deliver, b.closed
	b.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if deliver != nil {
		deliver(m)
	}
	if until := b.failUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		// Redis just failed: do not make every emit wait for it.
		b.publishErrors.Add(1)
		return fmt.Errorf("%w: %w", ErrRemoteUndelivered, errRecentFailure)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	if b.cfg.Mode == RedisSharded {
		err = b.cfg.Client.SPublish(ctx, shardedChannelFor(b.base, m.Rooms), payload).Err()
	} else {
		err = b.cfg.Client.Publish(ctx, channelFor(b.base, m.Rooms), payload).Err()
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
	return nil
}

// ObserveRoom tells a sharded broker that this node has sockets in room
// (joined true) or no longer has (joined false), so that it subscribes to
// the room's channel. Calls are counted: a room stays subscribed until it
// was left as often as it was joined. The pub/sub mode ignores it.
func (b *RedisBroker) ObserveRoom(room string, joined bool) {
	if b.cfg.Mode != RedisSharded {
		return
	}
	b.mu.Lock()
	n := b.rooms[room]
	if joined {
		b.rooms[room] = n + 1
	} else if n <= 1 {
		delete(b.rooms, room)
	} else {
		b.rooms[room] = n - 1
	}
	ps := b.pubsub
	change := (joined && n == 0) || (!joined && n == 1)
	b.mu.Unlock()
	if !change || ps == nil {
		return
	}
	// A failure here is repaired when the subscription is re-established,
	// which subscribes to every room again.
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.PublishTimeout)
	defer cancel()
	var err error
	if joined {
		err = ps.SSubscribe(ctx, channelFor(b.base, []string{room}))
	} else {
		err = ps.SUnsubscribe(ctx, channelFor(b.base, []string{room}))
	}
	if err != nil {
		b.limited.Log(slog.LevelWarn, "ssubscribe", "redis room subscription failed", "room", room, "err", err)
	}
}

// Close implements Broker: it stops the subscription goroutine and waits
// for it, or for ctx to end.
func (b *RedisBroker) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	b.mu.Lock()
	if b.pubsub != nil {
		_ = b.pubsub.Close() // interrupts a blocked read
	}
	b.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// receive runs the subscription until ctx ends, re-establishing it after
// errors with a capped backoff.
func (b *RedisBroker) receive(ctx context.Context) {
	defer close(b.done)
	defer b.up.Store(false)
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		healthy := b.subscribeOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if healthy {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// subscribeOnce subscribes and delivers until the subscription fails. It
// reports whether the subscription was established.
func (b *RedisBroker) subscribeOnce(ctx context.Context) (established bool) {
	ps := b.open(ctx)
	defer func() {
		b.mu.Lock()
		if b.pubsub == ps {
			b.pubsub = nil
		}
		b.mu.Unlock()
		_ = ps.Close()
		if b.up.Swap(false) {
			b.limited.Reset("subscribe")
			b.log.Warn("redis subscription lost; reconnecting")
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
				// Quiet line: make sure it is alive.
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
				if b.reconnects.Add(1) > 1 {
					b.log.Info("redis subscription re-established")
				}
				b.up.Store(true)
				b.limited.Reset("subscribe")
			}
		case *redis.Message:
			b.onMessage(msg)
		case *redis.Pong:
		}
	}
}

// open starts the subscription: the namespace's pattern in pub/sub mode;
// the main channel and one per observed room in sharded mode.
func (b *RedisBroker) open(ctx context.Context) *redis.PubSub {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.Mode != RedisSharded {
		b.pubsub = b.cfg.Client.PSubscribe(ctx, b.base+"*")
		return b.pubsub
	}
	channels := make([]string, 0, 1+len(b.rooms))
	channels = append(channels, b.base)
	for room := range b.rooms {
		channels = append(channels, channelFor(b.base, []string{room}))
	}
	b.pubsub = b.cfg.Client.SSubscribe(ctx, channels...)
	return b.pubsub
}

func (b *RedisBroker) onMessage(msg *redis.Message) {
	room, ok := roomOfChannel(b.base, msg.Channel)
	if !ok {
		return
	}
	var (
		uid string
		m   Message
		err error
	)
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
	b.mu.Lock()
	deliver := b.deliver
	b.mu.Unlock()
	deliver(m)
}
