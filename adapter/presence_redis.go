package adapter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// PresenceWatcher is implemented by a Presence that discovers transitions on
// its own: a node of the cluster died, or the store came back after an
// outage. Watch sets the function that receives every transition, in order.
// A Presence with a watcher reports all its transitions through it, those
// of Add and Remove included (which then return false), so that their order
// is the store's order.
type PresenceWatcher interface {
	Watch(fn func(userID string, online bool))
}

// ClusterStats is a snapshot of the whole cluster.
type ClusterStats struct {
	Users   int // online users, many tabs and nodes counting once
	Sockets int // connected sockets on the live nodes
	Nodes   int // nodes that are registered and not yet expired
	// StaleNodes are the nodes among Nodes that missed their last
	// heartbeat: their sockets are still counted, but they may be dead and
	// will be removed when NodeTTL passes.
	StaleNodes int
}

// ClusterPresence is implemented by a Presence that spans several nodes.
type ClusterPresence interface {
	ClusterStats(ctx context.Context) (ClusterStats, error)
}

// Defaults of RedisPresenceConfig.
const (
	DefaultPresencePrefix = "herald"
	DefaultNodeTTL        = 15 * time.Second
	DefaultOpTimeout      = 2 * time.Second
)

// RedisPresenceConfig configures a RedisPresence.
type RedisPresenceConfig struct {
	// Client is the caller's Redis client. Required; never closed.
	Client redis.UniversalClient
	// Prefix names the keys: every key is "{<Prefix>}:...", one hash slot,
	// so that the atomic scripts also run on Redis Cluster. "" means
	// DefaultPresencePrefix.
	Prefix string
	// NodeTTL is how long a node that stopped refreshing its registration
	// (crashed, frozen, cut off) keeps its users online. It refreshes every
	// NodeTTL/3, and every node checks for expired ones as often, so a dead
	// node's users go offline within about 4/3 NodeTTL. After an outage
	// of Redis (a restart, a Sentinel failover), which also kept the other
	// nodes from refreshing, a node expires none of them for NodeTTL/3 +
	// OpTimeout, the time they need to refresh again. 0 means
	// DefaultNodeTTL; at least 300ms.
	NodeTTL time.Duration
	// OpTimeout bounds one Redis operation; 0 means DefaultOpTimeout.
	OpTimeout time.Duration
	// Logger receives logs; nil means none. Failures repeat at most once per
	// LogInterval (0 means DefaultLogInterval).
	Logger      *slog.Logger
	LogInterval time.Duration
}

// RedisPresence is a cluster-wide Presence in Redis. Each node keeps its
// own sockets in memory and writes per-user socket counts to Redis with
// atomic scripts, so a transition is seen by exactly one node. Nodes
// refresh a registration; when one stops, another removes its users after
// NodeTTL and reports them offline.
//
// While Redis is unreachable, Add and Remove still succeed locally, and
// reads answer this node's own view with ErrPartial; every Redis operation
// is bounded by OpTimeout and, once one failed, none waits for Redis until
// the heartbeat goroutine finds it back (its refresh and reconciliation
// do not hold the lock that Add and Remove take while they wait; only the
// expiry of dead nodes does, to keep transitions in order). The node then
// reconciles its state and reports the transitions that happened
// meanwhile. If Redis lost its data (a restart without
// persistence), every node re-registers its users without reporting them
// as new transitions.
//
// NewRedisPresence starts one goroutine; Close stops it.
type RedisPresence struct {
	cfg     RedisPresenceConfig
	honours bool // the client ends commands at their deadline (deadline.go)
	node    string
	keys    presenceKeys
	log     *slog.Logger
	limited *rateLog

	mu      sync.Mutex
	local   map[string]map[string]struct{} // user -> sockets on this node
	sockets int
	// digest sums up local (an XOR of one hash per user and count), so that
	// the heartbeat finds out in one comparison that Redis holds another
	// state for this node than its own: a snapshot from the past, lost
	// writes. Counts alone cannot tell alice's one socket from ghost's.
	digest uint64
	seed   maphash.Seed
	// version counts the changes to local: a heartbeat's snapshot older
	// than local when its answer comes does not put the node in step.
	version uint64
	epoch   string // the store's epoch this node registered in; "" before
	dirty   bool   // Redis may not match local: sync before the next write
	watch   func(userID string, online bool)
	closed  bool
	failed  bool      // a Redis operation failed since the last refresh
	lastOK  time.Time // when Redis last refreshed this node's registration
	reapAt  time.Time // expire no other node before then (see recoveredLocked)

	kick   chan struct{} // wakes the heartbeat goroutine to reconcile
	cancel context.CancelFunc
	done   chan struct{}
}

type presenceKeys struct {
	nodes, online, sockets, digests, epoch, nodePrefix string
}

var (
	_ Presence        = (*RedisPresence)(nil)
	_ PresenceWatcher = (*RedisPresence)(nil)
	_ ClusterPresence = (*RedisPresence)(nil)
)

// NewRedisPresence validates cfg and starts the node's heartbeat. The node
// registers on the first heartbeat, at once.
func NewRedisPresence(cfg RedisPresenceConfig) (*RedisPresence, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("Client is required"))
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPresencePrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		errs = append(errs, fmt.Errorf("Prefix %q: must not contain { or }", cfg.Prefix))
	}
	if cfg.NodeTTL == 0 {
		cfg.NodeTTL = DefaultNodeTTL
	}
	if cfg.NodeTTL < 300*time.Millisecond {
		errs = append(errs, fmt.Errorf("NodeTTL %v: at least 300ms", cfg.NodeTTL))
	}
	if cfg.OpTimeout < 0 || cfg.LogInterval < 0 {
		errs = append(errs, errors.New("OpTimeout and LogInterval must not be negative"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("adapter: invalid RedisPresenceConfig: %w", errors.Join(errs...))
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.LogInterval == 0 {
		cfg.LogInterval = DefaultLogInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tag := "{" + cfg.Prefix + "}:"
	p := &RedisPresence{
		cfg:     cfg,
		honours: honoursDeadlines(cfg.Client),
		node:    randomID(),
		keys: presenceKeys{
			nodes: tag + "nodes", online: tag + "online", sockets: tag + "sockets",
			digests: tag + "digests", epoch: tag + "epoch", nodePrefix: tag + "node:",
		},
		log:     log,
		limited: newRateLog(log, cfg.LogInterval),
		local:   map[string]map[string]struct{}{},
		seed:    maphash.MakeSeed(),
		dirty:   true,
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.run(ctx)
	return p, nil
}

func randomID() string {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// registered reports whether the node is registered and in step with the
// store (for tests).
func (p *RedisPresence) registered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.dirty
}

// NodeID returns this node's id in the store.
func (p *RedisPresence) NodeID() string { return p.node }

// Watch implements PresenceWatcher. fn is called under the presence's lock:
// it must not block or call back into the RedisPresence.
func (p *RedisPresence) Watch(fn func(userID string, online bool)) {
	p.mu.Lock()
	p.watch = fn
	p.mu.Unlock()
}

// Add implements Presence.
func (p *RedisPresence) Add(ctx context.Context, userID, socketID string) (bool, error) {
	return p.AddLimited(ctx, userID, socketID, -1)
}

// AddLimited implements UserSocketLimiter; a negative max means no limit.
// The user's sockets on every registered node are counted and the socket
// added in one script, so the limit holds across the cluster under
// concurrent handshakes. While Redis is unreachable (or this node not yet
// registered) only this node's sockets are counted: the limit then holds
// per node.
func (p *RedisPresence) AddLimited(ctx context.Context, userID, socketID string, max int) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, ErrClosed
	}
	socks := p.local[userID]
	if _, ok := socks[socketID]; ok {
		return false, nil
	}
	if max >= 0 && len(socks) >= max {
		return false, ErrUserLimit
	}
	if socks == nil {
		socks = map[string]struct{}{}
		p.local[userID] = socks
	}
	p.recount(userID, len(socks), len(socks)+1)
	socks[socketID] = struct{}{}
	p.sockets++
	first, refused := p.writeLocked(ctx, userID, max)
	if refused {
		p.recount(userID, len(socks), len(socks)-1)
		delete(socks, socketID)
		if len(socks) == 0 {
			delete(p.local, userID)
		}
		p.sockets--
		return false, ErrUserLimit
	}
	return first, nil
}

// Remove implements Presence.
func (p *RedisPresence) Remove(ctx context.Context, userID, socketID string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	socks := p.local[userID]
	if _, ok := socks[socketID]; !ok {
		return false, nil
	}
	p.recount(userID, len(socks), len(socks)-1)
	delete(socks, socketID)
	if len(socks) == 0 {
		delete(p.local, userID)
	}
	p.sockets--
	if p.closed {
		return false, nil
	}
	last, _ := p.writeLocked(ctx, userID, -1)
	return last, nil
}

// eval runs script s, bounded by OpTimeout whatever the client's options
// (deadline.go), and returns its reply.
func (p *RedisPresence) eval(ctx context.Context, s *redis.Script, keys []string, args ...any) (any, error) {
	ctx, cancel := p.opCtx(ctx)
	defer cancel()
	return bounded(ctx, p.honours, func(ctx context.Context) (any, error) {
		return s.Run(ctx, p.cfg.Client, keys, args...).Result()
	})
}

// call runs one command, bounded as eval.
func call[T any](p *RedisPresence, ctx context.Context, op func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := p.opCtx(ctx)
	defer cancel()
	return bounded(ctx, p.honours, op)
}

// recount updates the digest for userID's count going from old to new.
func (p *RedisPresence) recount(userID string, old, new int) {
	p.digest ^= p.term(userID, old) ^ p.term(userID, new)
	p.version++
}

// term is one user's share of the digest; a user without sockets has none.
func (p *RedisPresence) term(userID string, n int) uint64 {
	if n == 0 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(p.seed)
	h.WriteString(userID)
	h.WriteByte(0)
	h.WriteString(strconv.Itoa(n))
	return h.Sum64()
}

// digestArg is the digest as the scripts store it.
func (p *RedisPresence) digestArg() string { return strconv.FormatUint(p.digest, 16) }

// writeLocked stores userID's socket count on this node and reports
// whether it made the user come online or go offline (through the watcher
// if there is one, and then false). On failure the node is marked dirty
// and the heartbeat reconciles it later. For a count that grew, max >= 0
// makes the write conditional: refused reports that the user's sockets on
// every node would then be more than max, and nothing was written.
func (p *RedisPresence) writeLocked(ctx context.Context, userID string, max int) (transition, refused bool) {
	online := len(p.local[userID]) > 0
	if p.dirty {
		// Not registered yet, or Redis failed: the heartbeat goroutine
		// reconciles (and reports the transition), so that a connection
		// never waits for an unreachable Redis.
		p.kickLocked()
		return false, false
	}
	reply, err := p.eval(ctx, scriptSet,
		[]string{p.keys.nodes, p.keys.online, p.keys.sockets, p.keys.epoch, p.keys.nodePrefix + p.node, p.keys.digests},
		p.node, p.epoch, userID, len(p.local[userID]), p.sockets, max, p.keys.nodePrefix, p.digestArg())
	res, ok := reply.(int64)
	if err == nil && !ok {
		err = fmt.Errorf("unexpected reply %v", reply)
	}
	if err != nil {
		p.failLocked("presence write", err)
		return false, false
	}
	switch res {
	case -2:
		return false, true
	case -1: // this node was expired, or the store lost its data
		p.dirty = true
		p.kickLocked() // the heartbeat goroutine syncs, without this lock
		return false, false
	case 1, 2:
		return p.reportLocked(userID, res == 1, online), false
	}
	return false, false
}

// reportLocked hands a transition to the watcher, or returns it to the
// caller when there is none.
func (p *RedisPresence) reportLocked(userID string, online, want bool) bool {
	if p.watch != nil {
		p.watch(userID, online)
		return false
	}
	return online == want
}

// kickLocked asks the heartbeat goroutine to reconcile now.
func (p *RedisPresence) kickLocked() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *RedisPresence) failLocked(what string, err error) {
	p.failed = true
	if !p.dirty {
		p.log.Warn("redis presence unavailable; serving local sockets and reconciling later", "op", what, "err", err)
	} else {
		p.limited.Log(slog.LevelWarn, "presence", "redis presence still unavailable", "op", what, "err", err)
	}
	p.dirty = true
}

func (p *RedisPresence) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), p.cfg.OpTimeout)
}

// snapshot is what a heartbeat writes or checks, taken under p.mu and
// sent without it, so that Add and Remove never wait for Redis behind a
// heartbeat.
type snapshot struct {
	version uint64
	epoch   string
	sockets int
	digest  string
	users   []any // sync only: user1, count1, ...
}

func (p *RedisPresence) snapshotLocked(withUsers bool) snapshot {
	snap := snapshot{version: p.version, epoch: p.epoch, sockets: p.sockets, digest: p.digestArg()}
	if withUsers {
		snap.users = make([]any, 0, 2*len(p.local))
		for u, socks := range p.local {
			snap.users = append(snap.users, u, len(socks))
		}
	}
	return snap
}

// sync writes snap, this node's whole state, registering the node, and
// reports the transitions it causes (none if the store lost its data:
// those users never went offline). If local changed meanwhile, the node
// stays dirty and syncs again at once.
func (p *RedisPresence) sync(ctx context.Context, snap snapshot) {
	args := make([]any, 0, 5+len(snap.users))
	args = append(args, p.node, snap.epoch, randomID(), snap.sockets, snap.digest)
	args = append(args, snap.users...)
	reply, err := p.eval(ctx, scriptSync,
		[]string{p.keys.nodes, p.keys.online, p.keys.sockets, p.keys.epoch, p.keys.nodePrefix + p.node, p.keys.digests},
		args...)
	res, _ := reply.([]any)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if err != nil {
		p.failLocked("presence sync", err)
		return
	}
	if len(res) != 4 {
		p.failLocked("presence sync", fmt.Errorf("unexpected reply %v", res))
		return
	}
	epoch, _ := res[0].(string)
	silent, _ := res[1].(int64)
	if p.epoch != "" {
		p.log.Info("redis presence reconciled", "node", p.node, "storeReset", silent == 1)
	}
	p.epoch = epoch
	if p.version == snap.version {
		p.dirty = false
	} else {
		p.kickLocked()
	}
	p.recoveredLocked()
	p.limited.Reset("presence")
	if silent == 1 {
		return
	}
	for _, u := range toStrings(res[2]) {
		p.reportLocked(u, true, true)
	}
	for _, u := range toStrings(res[3]) {
		p.reportLocked(u, false, false)
	}
}

// beat refreshes the registration of a node in step with the store, and
// finds out when it no longer is (its entry expired, or the store holds
// another state for it: see scriptBeat).
func (p *RedisPresence) beat(ctx context.Context, snap snapshot) {
	reply, err := p.eval(ctx, scriptBeat, []string{p.keys.nodes, p.keys.epoch, p.keys.sockets, p.keys.digests},
		p.node, snap.epoch, snap.sockets, snap.digest)
	ok, isInt := reply.(int64)
	if err == nil && !isInt {
		err = fmt.Errorf("unexpected reply %v", reply)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
	case err != nil:
		p.failLocked("presence heartbeat", err)
	case ok == 1:
		p.recoveredLocked()
	case p.version != snap.version || p.dirty:
		// Add or Remove wrote meanwhile (the mismatch may be theirs), or
		// failed: the next heartbeat checks again.
	default:
		p.log.Warn("this node's registration in redis presence is gone or out of date (expired while paused or cut off, writes lost in a failover, or data restored from the past); re-registering", "node", p.node)
		p.dirty = true
		p.kickLocked()
	}
}

// recoveredLocked is called when Redis has refreshed this node's
// registration (heartbeat or sync). If an operation failed since the last
// refresh, or this one comes late (more than NodeTTL/2 after it: the
// client retried through an outage), this node was cut off from Redis, and
// most likely so were the others (Redis restarted, or Sentinel failed it
// over): their registrations went stale because they could not refresh
// them, not because they died. Each refreshes it at its next heartbeat, at
// most NodeTTL/3 after Redis is back, plus an operation that was failing
// then; until that has passed, expiring them would report their users
// offline, and online again when they re-register, for an outage of Redis.
func (p *RedisPresence) recoveredLocked() {
	now := time.Now()
	late := !p.lastOK.IsZero() && now.Sub(p.lastOK) > p.cfg.NodeTTL/2
	if p.failed || late {
		p.reapAt = now.Add(p.cfg.NodeTTL/3 + p.cfg.OpTimeout)
	}
	p.failed, p.lastOK = false, now
}

func toSlice(v any) []any {
	list, _ := v.([]any)
	return list
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// run refreshes the registration and expires dead nodes every NodeTTL/3,
// and reconciles when kicked, at most every minRetry while Redis fails.
func (p *RedisPresence) run(ctx context.Context) {
	defer close(p.done)
	const minRetry = 250 * time.Millisecond
	tick := time.NewTicker(p.cfg.NodeTTL / 3)
	defer tick.Stop()
	for {
		last := time.Now()
		p.heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-p.kick:
			if wait := minRetry - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
	}
}

func (p *RedisPresence) heartbeat(ctx context.Context) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	dirty := p.dirty
	snap := p.snapshotLocked(dirty)
	p.mu.Unlock()
	if dirty {
		p.sync(ctx, snap)
	} else {
		p.beat(ctx, snap)
	}
	p.mu.Lock()
	reap := !p.dirty && !p.closed && !time.Now().Before(p.reapAt)
	p.mu.Unlock()
	if reap {
		p.reap(ctx, p.cfg.NodeTTL)
	}
}

// reap removes the other nodes that have not refreshed their registration
// for ttl and reports their users who went offline.
func (p *RedisPresence) reap(ctx context.Context, ttl time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	reply, err := p.eval(ctx, scriptReap,
		[]string{p.keys.nodes, p.keys.online, p.keys.sockets, p.keys.digests},
		p.keys.nodePrefix, ttl.Milliseconds(), p.node)
	res, _ := reply.([]any)
	if err != nil {
		p.failLocked("presence expiry check", err)
		return
	}
	if len(res) != 2 {
		return
	}
	if dead := toStrings(res[0]); len(dead) > 0 {
		p.log.Warn("expired dead nodes from redis presence", "nodes", dead)
	}
	for _, u := range toStrings(res[1]) {
		p.reportLocked(u, false, false)
	}
}

var (
	_ UserSocketCounter = (*RedisPresence)(nil)
	_ UserSocketLimiter = (*RedisPresence)(nil)
)

// down reports whether Redis failed and has not answered since: reads
// then answer from this node's own sockets at once (ErrPartial), and the
// heartbeat goroutine finds out when Redis is back.
func (p *RedisPresence) down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// errDown is the cause of a partial answer given without asking Redis.
var errDown = errors.New("redis failed and has not answered since")

// partial marks a read's failure (err, or errDown when Redis was not
// asked) and returns the error that goes with a partial answer.
func (p *RedisPresence) partial(op string, err error) error {
	if err == nil {
		err = errDown
	} else {
		p.mu.Lock()
		p.failLocked(op, err)
		p.mu.Unlock()
	}
	return fmt.Errorf("%w: %w", ErrPartial, err)
}

// UserSockets implements UserSocketCounter: the user's sockets on every
// registered node, a node that died included until it is expired. Without
// Redis, this node's sockets of the user, and ErrPartial.
func (p *RedisPresence) UserSockets(ctx context.Context, userID string) (int, error) {
	if !p.down() {
		reply, err := p.eval(ctx, scriptUserSockets, []string{p.keys.nodes}, p.keys.nodePrefix, userID)
		if n, ok := reply.(int64); err == nil && ok {
			return int(n), nil
		}
		if err == nil {
			err = fmt.Errorf("unexpected reply %v", reply)
		}
		err = p.partial("presence read", err)
		return p.localSockets(userID), err
	}
	return p.localSockets(userID), p.partial("", nil)
}

func (p *RedisPresence) localSockets(userID string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.local[userID])
}

// IsOnline implements Presence. Without Redis it answers true, certainly,
// for a user with a socket on this node, and false with ErrPartial for the
// others.
func (p *RedisPresence) IsOnline(ctx context.Context, userID string) (bool, error) {
	if p.localSockets(userID) > 0 {
		return true, nil
	}
	if p.down() {
		return false, p.partial("", nil)
	}
	key := p.keys.online
	ok, err := call(p, ctx, func(ctx context.Context) (bool, error) {
		return p.cfg.Client.HExists(ctx, key, userID).Result()
	})
	if err != nil {
		return false, p.partial("presence read", err)
	}
	return ok, nil
}

// Users implements Presence. Without Redis it returns this node's users
// and ErrPartial.
func (p *RedisPresence) Users(ctx context.Context) ([]string, error) {
	if p.down() {
		return p.localUsers(), p.partial("", nil)
	}
	key := p.keys.online
	users, err := call(p, ctx, func(ctx context.Context) ([]string, error) {
		return p.cfg.Client.HKeys(ctx, key).Result()
	})
	if err != nil {
		return p.localUsers(), p.partial("presence read", err)
	}
	slices.Sort(users)
	return users, nil
}

func (p *RedisPresence) localUsers() []string {
	p.mu.Lock()
	users := make([]string, 0, len(p.local))
	for u := range p.local {
		users = append(users, u)
	}
	p.mu.Unlock()
	slices.Sort(users)
	return users
}

// Counts implements Presence. Without Redis it returns this node's counts
// and ErrPartial.
func (p *RedisPresence) Counts(ctx context.Context) (users, sockets int, err error) {
	st, err := p.ClusterStats(ctx)
	if err != nil {
		users, sockets = p.LocalCounts()
		return users, sockets, err
	}
	return st.Users, st.Sockets, nil
}

// ClusterStats implements ClusterPresence. A node is stale when it missed
// its last two heartbeats. Without Redis it fails at once with ErrPartial.
func (p *RedisPresence) ClusterStats(ctx context.Context) (ClusterStats, error) {
	if p.down() {
		return ClusterStats{}, p.partial("", nil)
	}
	reply, err := p.eval(ctx, scriptStats,
		[]string{p.keys.nodes, p.keys.online, p.keys.sockets},
		(2 * p.cfg.NodeTTL / 3).Milliseconds())
	if err != nil {
		return ClusterStats{}, p.partial("presence read", err)
	}
	var res []int64
	for _, v := range toSlice(reply) {
		n, _ := v.(int64)
		res = append(res, n)
	}
	if len(res) != 4 {
		return ClusterStats{}, fmt.Errorf("adapter: redis presence: unexpected reply %v", res)
	}
	return ClusterStats{Users: int(res[0]), Sockets: int(res[1]), Nodes: int(res[2]), StaleNodes: int(res[3])}, nil
}

// LocalCounts returns this node's own users and sockets, known without
// Redis.
func (p *RedisPresence) LocalCounts() (users, sockets int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.local), p.sockets
}

// Close stops the heartbeat and removes this node from the store,
// reporting its users that go offline. The node's sockets should be gone by
// then (Server.Shutdown first). Close is idempotent.
func (p *RedisPresence) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	reply, err := p.eval(ctx, scriptLeave,
		[]string{p.keys.nodes, p.keys.online, p.keys.sockets, p.keys.nodePrefix + p.node, p.keys.digests}, p.node)
	if err != nil {
		return fmt.Errorf("adapter: redis presence: leave: %w", err)
	}
	for _, u := range toStrings(reply) {
		p.reportLocked(u, false, false)
	}
	return nil
}

// The scripts. Every key shares the "{prefix}" hash tag; the per-node hash
// of an expired node is derived from the prefix passed in ARGV, which is in
// the same slot.
var (
	// KEYS: nodes, online, sockets, epoch, nodekey, digests
	// ARGV: node, epoch, user, count, nodeSockets, max, nodeKeyPrefix, digest
	// Returns -2 (the count grows and the user's sockets on every node would
	// pass max >= 0: nothing written), -1 (node unknown: sync), 0, 1 (user
	// came online), 2 (went offline).
	// scriptUserSockets sums a user's sockets over the registered nodes
	// (keys share the hash tag of KEYS[1]).
	// KEYS: nodes. ARGV: node key prefix, user.
	scriptUserSockets = redis.NewScript(`
local n = 0
for _, node in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + tonumber(redis.call('HGET', ARGV[1] .. node, ARGV[2]) or '0')
end
return n
`)
	scriptSet = redis.NewScript(`
if redis.call('GET', KEYS[4]) ~= ARGV[2] or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
local old = tonumber(redis.call('HGET', KEYS[5], ARGV[3]) or '0')
local new = tonumber(ARGV[4])
local max = tonumber(ARGV[6])
if max >= 0 and new > old then
  local total = new - old
  for _, node in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    total = total + tonumber(redis.call('HGET', ARGV[7] .. node, ARGV[3]) or '0')
  end
  if total > max then return -2 end
end
if new > 0 then redis.call('HSET', KEYS[5], ARGV[3], new) else redis.call('HDEL', KEYS[5], ARGV[3]) end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[8])
if old == 0 and new > 0 then
  if redis.call('HINCRBY', KEYS[2], ARGV[3], 1) == 1 then return 1 end
elseif old > 0 and new == 0 then
  if redis.call('HINCRBY', KEYS[2], ARGV[3], -1) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[3])
    return 2
  end
end
return 0`)

	// KEYS: nodes, online, sockets, epoch, nodekey, digests
	// ARGV: node, knownEpoch, candidateEpoch, nodeSockets, digest, user1, count1, ...
	// Returns {epoch, silent, onlineUsers, offlineUsers}.
	scriptSync = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[4], epoch)
end
local silent = 0
if ARGV[2] ~= '' and ARGV[2] ~= epoch then silent = 1 end
local want = {}
for i = 6, #ARGV, 2 do want[ARGV[i]] = ARGV[i + 1] end
local have = {}
local old = redis.call('HGETALL', KEYS[5])
for i = 1, #old, 2 do have[old[i]] = true end
local on, off = {}, {}
for u, _ in pairs(have) do
  if not want[u] then
    if redis.call('HINCRBY', KEYS[2], u, -1) <= 0 then
      redis.call('HDEL', KEYS[2], u)
      off[#off + 1] = u
    end
  end
end
for u, _ in pairs(want) do
  if not have[u] then
    if redis.call('HINCRBY', KEYS[2], u, 1) == 1 then on[#on + 1] = u end
  end
end
redis.call('DEL', KEYS[5])
for i = 6, #ARGV, 2 do redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[5])
return {epoch, silent, on, off}`)

	// KEYS: nodes, epoch, sockets, digests. ARGV: node, epoch, nodeSockets,
	// digest. Returns 1, or 0 if the node must sync: it was expired, or the
	// store holds another state for it than its own (writes lost in a
	// failover: replication is asynchronous; data restored from the past),
	// seen as a socket count or a digest that is not the node's own.
	scriptBeat = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
if tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '-1') ~= tonumber(ARGV[3]) then return 0 end
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[4] then return 0 end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
return 1`)

	// KEYS: nodes, online, sockets, digests. ARGV: nodeKeyPrefix, ttlMillis, self.
	// Returns {deadNodes, usersWhoWentOffline}.
	scriptReap = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2])))
local gone, off = {}, {}
for _, n in ipairs(dead) do
  if n ~= ARGV[3] then
    local nk = ARGV[1] .. n
    for _, u in ipairs(redis.call('HKEYS', nk)) do
      if redis.call('HINCRBY', KEYS[2], u, -1) <= 0 then
        redis.call('HDEL', KEYS[2], u)
        off[#off + 1] = u
      end
    end
    redis.call('DEL', nk)
    redis.call('HDEL', KEYS[3], n)
    redis.call('HDEL', KEYS[4], n)
    redis.call('ZREM', KEYS[1], n)
    gone[#gone + 1] = n
  end
end
return {gone, off}`)

	// KEYS: nodes, online, sockets, nodekey, digests. ARGV: node. Returns
	// users who went offline.
	scriptLeave = redis.NewScript(`
local off = {}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  for _, u in ipairs(redis.call('HKEYS', KEYS[4])) do
    if redis.call('HINCRBY', KEYS[2], u, -1) <= 0 then
      redis.call('HDEL', KEYS[2], u)
      off[#off + 1] = u
    end
  end
end
redis.call('DEL', KEYS[4])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return off`)

	// KEYS: nodes, online, sockets. ARGV: staleMillis.
	// Returns {users, sockets, nodes, staleNodes}.
	scriptStats = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sockets = 0
for _, v in ipairs(redis.call('HVALS', KEYS[3])) do sockets = sockets + tonumber(v) end
return {redis.call('HLEN', KEYS[2]), sockets, redis.call('ZCARD', KEYS[1]),
  redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))}`)
)
