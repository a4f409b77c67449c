package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The cluster registry: every subscribed RedisBroker (a node) announces its
// mode and cluster name (its Prefix, or its Stream in streams mode) in one
// Redis hash, RegistryKey, refreshed every few seconds. With it a node
// started in another mode than the running nodes of its cluster, and a
// publish-only broker (an Emitter's) whose mode or prefix no node listens
// on, fail loudly, instead of publishing into a channel nobody reads.

// ErrModeMismatch is returned when live nodes of the same cluster name (the
// prefix, or the stream in streams mode) use another Redis mode than this
// broker: their messages and this broker's never meet.
var ErrModeMismatch = errors.New("adapter: redis mode mismatch")

// ErrNoListeners is returned by a publish-only broker's Publish (and
// CheckCluster) when no node listens on its mode and cluster name: no herald
// node is registered there, and Redis shows no other subscriber (a Node.js
// socket.io server) either. The message reached nobody.
var ErrNoListeners = errors.New("adapter: no node listens on this redis mode and prefix")

// RegistryKey is the Redis hash in which nodes register. It is not under
// Prefix, so that nodes and emitters of every prefix and mode see each
// other.
const RegistryKey = "herald#brokers"

const (
	// registryTTL is how long a registration lives without a refresh: a
	// node killed without Close stops counting after it.
	registryTTL = 15 * time.Second
	// registryRefresh is how often a node refreshes its registration.
	registryRefresh = 5 * time.Second
	// listenersFor is how long a publish-only broker trusts a positive
	// check before it asks Redis again.
	listenersFor = 5 * time.Second
	// heartbeatScan bounds the stream entries read to find a Node.js
	// streams adapter's heartbeat.
	heartbeatScan = 1000
)

// registration is one node's entry in RegistryKey.
type registration struct {
	Mode    RedisMode `json:"mode"`
	Name    string    `json:"name"` // prefix, or stream in streams mode
	Expires int64     `json:"exp"`  // unix milliseconds
}

// clusterName is what must match, with the mode, between the brokers of
// one cluster.
func (b *RedisBroker) clusterName() string {
	if b.cfg.Mode == RedisStreams {
		return b.cfg.Stream
	}
	return b.cfg.Prefix
}

func (b *RedisBroker) register(ctx context.Context) error {
	data, err := json.Marshal(registration{
		Mode: b.cfg.Mode, Name: b.clusterName(), Expires: time.Now().Add(registryTTL).UnixMilli(),
	})
	if err != nil {
		return err
	}
	_, err = redisCall(b, ctx, func(ctx context.Context) ([]redis.Cmder, error) {
		return b.cfg.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, RegistryKey, b.uid, data)
			p.PExpire(ctx, RegistryKey, registryTTL) // gone once every node is
			return nil
		})
	})
	return err
}

// registered returns the live registrations of the other nodes, and
// removes the expired ones it sees.
func (b *RedisBroker) registered(ctx context.Context) (map[string]registration, error) {
	all, err := redisCall(b, ctx, func(ctx context.Context) (map[string]string, error) {
		return b.cfg.Client.HGetAll(ctx, RegistryKey).Result()
	})
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	live := make(map[string]registration, len(all))
	var stale []string
	for uid, v := range all {
		var r registration
		switch {
		case uid == b.uid:
		case json.Unmarshal([]byte(v), &r) != nil || r.Expires < now:
			stale = append(stale, uid)
		default:
			live[uid] = r
		}
	}
	if len(stale) > 0 {
		_, _ = redisCall(b, ctx, func(ctx context.Context) (int64, error) { // best effort
			return b.cfg.Client.HDel(ctx, RegistryKey, stale...).Result()
		})
	}
	return live, nil
}

// conflict returns an ErrModeMismatch error when a live node of this
// broker's cluster name uses another mode.
func (b *RedisBroker) conflict(others map[string]registration) error {
	modes := map[RedisMode]int{}
	for _, r := range others {
		if r.Name == b.clusterName() && r.Mode != b.cfg.Mode {
			modes[r.Mode]++
		}
	}
	if len(modes) == 0 {
		return nil
	}
	return fmt.Errorf("%w: this broker uses %s on %q, but live nodes there use %s: give every node and emitter of a cluster the same mode",
		ErrModeMismatch, b.cfg.Mode, b.clusterName(), describeModes(modes))
}

// noListeners explains why nobody listens on this broker's mode and name.
func (b *RedisBroker) noListeners(others map[string]registration) error {
	if err := b.conflict(others); err != nil {
		return err
	}
	if len(others) == 0 {
		return fmt.Errorf("%w: %s on %q: no herald node is registered and Redis shows no other subscriber (are the nodes running, on this Redis?)",
			ErrNoListeners, b.cfg.Mode, b.clusterName())
	}
	elsewhere := map[string]int{}
	for _, r := range others {
		elsewhere[fmt.Sprintf("%s on %q", r.Mode, r.Name)]++
	}
	return fmt.Errorf("%w: %s on %q; live herald nodes use %s: check the prefix (or stream) and the mode",
		ErrNoListeners, b.cfg.Mode, b.clusterName(), describe(elsewhere))
}

func describeModes(modes map[RedisMode]int) string {
	m := make(map[string]int, len(modes))
	for mode, n := range modes {
		m[string(mode)] = n
	}
	return describe(m)
}

// describe lists "key (n node(s))" in a stable order.
func describe(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s (%d node(s))", k, counts[k])
	}
	return strings.Join(keys, ", ")
}

// CheckCluster checks this broker against the nodes registered on its
// Redis. For a node (Subscribe was called) it registers the node at once
// and fails with ErrModeMismatch when live nodes of the same cluster name
// use another mode; call it at start, after socketio.New, and refuse to
// run on an error. For a publish-only broker (an Emitter's) it fails with
// ErrModeMismatch or ErrNoListeners as Publish would. Redis's own errors
// are returned as they are.
//
// Nodes also check while they run: a node that finds a conflicting node
// logs it at Error level at each refresh.
func (b *RedisBroker) CheckCluster(ctx context.Context) error {
	if b.deliverFn.Load() == nil {
		_, needCount, err := b.checkListeners(ctx)
		if err != nil || !needCount {
			return err
		}
		return b.patternListens(ctx)
	}
	if err := b.register(ctx); err != nil {
		return fmt.Errorf("adapter: cluster check: %w", err)
	}
	others, err := b.registered(ctx)
	if err != nil {
		return fmt.Errorf("adapter: cluster check: %w", err)
	}
	return b.conflict(others)
}

// patternListens is CheckCluster's answer in pub/sub mode, where Publish
// has Redis's count of receivers: a registered herald node of this prefix,
// or any pattern subscription (the Node.js adapter's "<prefix>#*"; Redis
// does not tell whose).
func (b *RedisBroker) patternListens(ctx context.Context) error {
	others, err := b.registered(ctx)
	if err != nil {
		return err
	}
	for _, r := range others {
		if r.Mode == b.cfg.Mode && r.Name == b.clusterName() {
			return nil
		}
	}
	n, err := b.cfg.Client.PubSubNumPat(ctx).Result()
	if err != nil {
		return err
	}
	if n > 0 && b.conflict(others) == nil {
		return nil
	}
	return b.noListeners(others)
}

// kickRegistry makes runRegistry register this node at once: after Redis
// came back, it may have lost the registration, and Emitters would find no
// node until the next refresh.
func (b *RedisBroker) kickRegistry() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// runRegistry keeps this node registered until ctx ends, then removes the
// registration. It logs conflicts at Error level.
func (b *RedisBroker) runRegistry(ctx context.Context) {
	t := time.NewTicker(registryRefresh)
	defer t.Stop()
	for {
		// Not cut short by Close: a registration still on its way to Redis
		// (deadline.go) would land after Close's removal.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.PublishTimeout)
		err := b.register(rctx)
		var others map[string]registration
		if err == nil {
			others, err = b.registered(rctx)
		}
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			b.limited.Log(slog.LevelWarn, "registry", "redis: node registration failed", "err", err)
		case err == nil:
			if cerr := b.conflict(others); cerr != nil {
				b.limited.Log(slog.LevelError, "mismatch", "redis: nodes of this cluster use different modes; their messages do not reach each other", "err", cerr)
			}
		}
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = redisCall(b, dctx, func(ctx context.Context) (int64, error) {
				return b.cfg.Client.HDel(ctx, RegistryKey, b.uid).Result()
			})
			cancel()
			return
		case <-t.C:
		case <-b.kick:
		}
	}
}

// checkListeners tells a publish-only broker whether a node listens on its
// mode and cluster name. needCount means the answer is Redis's count of
// receivers of the publish itself (pub/sub mode): the caller publishes,
// then fails with b.noListenersNow if nobody received the message. In the
// other modes a positive answer holds for listenersFor.
func (b *RedisBroker) checkListeners(ctx context.Context) (others map[string]registration, needCount bool, err error) {
	if b.cfg.Mode == RedisPubSub {
		// PUBLISH's answer is the truth, and free: no cache, no registry
		// read unless it says nobody listened.
		return nil, true, nil
	}
	if time.Now().UnixNano() < b.listenersUntil.Load() {
		return nil, false, nil
	}
	others, err = b.registered(ctx)
	if err != nil {
		return nil, false, err
	}
	for _, r := range others {
		if r.Mode == b.cfg.Mode && r.Name == b.clusterName() {
			b.listenersOK()
			return others, false, nil
		}
	}
	// No herald node: Node.js servers do not register, so ask Redis
	// whether anything else listens.
	switch b.cfg.Mode {
	case RedisSharded:
		counts, err := redisCall(b, ctx, func(ctx context.Context) (map[string]int64, error) {
			return b.cfg.Client.PubSubShardNumSub(ctx, b.base).Result()
		})
		if err != nil {
			return nil, false, err
		}
		if counts[b.base] > 0 {
			b.listenersOK()
			return others, false, nil
		}
	case RedisStreams:
		ok, err := b.nodeStreamsListens(ctx)
		if err != nil {
			return nil, false, err
		}
		if ok {
			b.listenersOK()
			return others, false, nil
		}
	}
	return others, false, b.noListeners(others)
}

// noListenersNow is noListeners with the registrations read now; ctx
// bounds the read.
func (b *RedisBroker) noListenersNow(ctx context.Context) error {
	others, err := b.registered(ctx)
	if err != nil {
		others = nil // the error still says nobody listened
	}
	return b.noListeners(others)
}

// liveNodes returns how many live herald nodes of this broker's mode and
// name are registered, read from the registry at most every
// listenersFor (0 when it cannot be read).
func (b *RedisBroker) liveNodes(ctx context.Context) int64 {
	if at := b.registeredAt.Load(); at != 0 && time.Now().UnixNano() < at {
		return b.registeredNodes.Load()
	}
	others, err := b.registered(ctx)
	if err != nil {
		return 0
	}
	var n int64
	for _, r := range others {
		if r.Mode == b.cfg.Mode && r.Name == b.clusterName() {
			n++
		}
	}
	b.registeredNodes.Store(n)
	b.registeredAt.Store(time.Now().Add(listenersFor).UnixNano())
	return n
}

func (b *RedisBroker) listenersOK() {
	b.listenersUntil.Store(time.Now().Add(listenersFor).UnixNano())
}

// nodeStreamsListens reports whether a Node.js streams adapter reads the
// stream: @socket.io/redis-streams-adapter subscribes to "<prefix>#/#" for
// its ephemeral messages (0.3), and its later releases write heartbeats
// (message types 1 and 2 of socket.io-adapter's cluster adapter, every 5 s
// by default) to the stream, of which it looks for one within registryTTL
// among the last heartbeatScan entries.
func (b *RedisBroker) nodeStreamsListens(ctx context.Context) (bool, error) {
	subs, err := redisCall(b, ctx, func(ctx context.Context) (map[string]int64, error) {
		return b.cfg.Client.PubSubNumSub(ctx, b.base).Result()
	})
	if err != nil {
		return false, err
	}
	if subs[b.base] > 0 {
		return true, nil
	}
	since := strconv.FormatInt(time.Now().Add(-registryTTL).UnixMilli(), 10)
	entries, err := redisCall(b, ctx, func(ctx context.Context) ([]redis.XMessage, error) {
		return b.cfg.Client.XRevRangeN(ctx, b.cfg.Stream, "+", since, heartbeatScan).Result()
	})
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		if t, _ := e.Values["type"].(string); t == "1" || t == "2" {
			return true, nil
		}
	}
	return false, nil
}
