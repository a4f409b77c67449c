package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisJobStoreConfig configures a RedisJobStore.
type RedisJobStoreConfig struct {
	// Client is the caller's Redis client; required, never closed.
	Client redis.UniversalClient
	// Prefix names the keys: "{<Prefix>}:jobs:<user>" (a hash: job key ->
	// state) and "{<Prefix>}:job-leases" (a sorted set of lease
	// deadlines), one hash slot so that the scripts also run on Redis
	// Cluster. "" means DefaultPresencePrefix ("herald").
	Prefix string
	// OpTimeout bounds one Redis operation when the caller's context has
	// no earlier deadline; 0 means DefaultOpTimeout.
	OpTimeout time.Duration
	JobStoreConfig
}

// RedisJobStore is the JobStore of a cluster: every node and every Emitter
// of the cluster share it. Each operation is one Lua script (one round
// trip): Record applies the job's rules and bounds atomically, so that two
// workers reporting one job cannot move it backwards, and ClaimExpired
// hands each expired lease to one caller. A user's jobs expire Retention
// after the last event recorded for any of them; a job older than that
// among newer ones is not returned. It starts no goroutines.
type RedisJobStore struct {
	cfg     RedisJobStoreConfig
	honours bool
	users   string // key prefix of the per-user hashes
	leases  string
	now     func() time.Time
}

var _ JobStore = (*RedisJobStore)(nil)

// NewRedisJobStore validates cfg and returns a store. It does no I/O.
func NewRedisJobStore(cfg RedisJobStoreConfig) (*RedisJobStore, error) {
	if cfg.Client == nil {
		return nil, errors.New("adapter: invalid RedisJobStoreConfig: Client is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPresencePrefix
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("adapter: invalid RedisJobStoreConfig: Prefix %q must not contain { or }", cfg.Prefix)
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	cfg.JobStoreConfig = cfg.JobStoreConfig.withDefaults()
	tag := "{" + cfg.Prefix + "}:"
	return &RedisJobStore{
		cfg: cfg, honours: honoursDeadlines(cfg.Client),
		users: tag + "jobs:", leases: tag + "job-leases", now: time.Now,
	}, nil
}

// eval runs a script, bounded by OpTimeout whatever the client's options.
func (s *RedisJobStore) eval(ctx context.Context, script *redis.Script, keys []string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	v, err := bounded(ctx, s.honours, func(ctx context.Context) (any, error) {
		return script.Run(ctx, s.cfg.Client, keys, args...).Result()
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("adapter: redis job store: %w", err)
	}
	return v, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Record implements JobStore.
func (s *RedisJobStore) Record(ctx context.Context, u JobUpdate) error {
	res, err := s.eval(ctx, scriptJobRecord, []string{s.users + u.UserID, s.leases},
		u.Key, u.Event, u.Progress, bit(u.Terminal), u.Lease.Milliseconds(), ms(u.At), string(u.Payload),
		s.cfg.MaxJobsPerUser, s.cfg.Retention.Milliseconds(), u.UserID)
	if err != nil {
		return err
	}
	if n, _ := res.(int64); n == 0 {
		return ErrStaleJobEvent
	}
	return nil
}

// States implements JobStore.
func (s *RedisJobStore) States(ctx context.Context, userID string) ([]JobState, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	key := s.users + userID
	all, err := bounded(ctx, s.honours, func(ctx context.Context) (map[string]string, error) {
		return s.cfg.Client.HGetAll(ctx, key).Result()
	})
	if err != nil {
		return nil, fmt.Errorf("adapter: redis job store: %w", err)
	}
	var out []JobState
	for k, v := range all {
		st, err := decodeJobState(k, v)
		if err == nil && !st.Terminal && s.now().Sub(st.UpdatedAt) <= s.cfg.Retention {
			out = append(out, st)
		}
	}
	sortStates(out)
	return out, nil
}

// TakePending implements JobStore.
func (s *RedisJobStore) TakePending(ctx context.Context, userID string) ([]JobState, error) {
	res, err := s.eval(ctx, scriptJobTakePending, []string{s.users + userID})
	if err != nil {
		return nil, err
	}
	list := toSlice(res)
	var out []JobState
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		v, _ := list[i+1].(string)
		if st, err := decodeJobState(k, v); err == nil && s.now().Sub(st.UpdatedAt) <= s.cfg.Retention {
			out = append(out, st)
		}
	}
	sortStates(out)
	return out, nil
}

// Delivered implements JobStore.
func (s *RedisJobStore) Delivered(ctx context.Context, userID, key string) error {
	_, err := s.eval(ctx, scriptJobDelivered, []string{s.users + userID}, key)
	return err
}

// ClaimExpired implements JobStore.
func (s *RedisJobStore) ClaimExpired(ctx context.Context, now time.Time, limit int) ([]ExpiredJob, error) {
	res, err := s.eval(ctx, scriptJobClaim, []string{s.leases}, ms(now), limit, s.users)
	if err != nil {
		return nil, err
	}
	list := toSlice(res)
	var out []ExpiredJob
	for i := 0; i+2 < len(list); i += 3 {
		user, _ := list[i].(string)
		k, _ := list[i+1].(string)
		v, _ := list[i+2].(string)
		if st, err := decodeJobState(k, v); err == nil {
			out = append(out, ExpiredJob{UserID: user, State: st})
		}
	}
	return out, nil
}

// A job's state in Redis is "<meta JSON>\n<payload>": the payload stays
// byte for byte as it was emitted; the scripts read and write the meta.
type jobMeta struct {
	Event    string `json:"e"`
	Progress int    `json:"p"`
	Terminal int    `json:"t"`
	Pending  int    `json:"n"`
	LeaseMS  int64  `json:"l"`
	Deadline int64  `json:"d"` // unix ms; 0: no lease
	Updated  int64  `json:"u"` // unix ms
}

func decodeJobState(key, v string) (JobState, error) {
	meta, payload, ok := strings.Cut(v, "\n")
	if !ok {
		return JobState{}, errors.New("adapter: redis job store: malformed state")
	}
	var m jobMeta
	if err := json.Unmarshal([]byte(meta), &m); err != nil {
		return JobState{}, fmt.Errorf("adapter: redis job store: %w", err)
	}
	st := JobState{
		Key: key, Event: m.Event, Payload: json.RawMessage(payload), Progress: m.Progress,
		Terminal: m.Terminal == 1, Pending: m.Pending == 1, Lease: time.Duration(m.LeaseMS) * time.Millisecond,
		UpdatedAt: time.UnixMilli(m.Updated).UTC(),
	}
	if m.Deadline > 0 {
		st.Deadline = time.UnixMilli(m.Deadline).UTC()
	}
	return st, nil
}

var (
	// KEYS: user hash, leases. ARGV: key, event, progress, terminal,
	// leaseMs, atMs, payload, maxJobs, retentionMs, user.
	// Returns 1, or 0 for a stale event (nothing written).
	scriptJobRecord = redis.NewScript(`
local function meta(v)
  local nl = string.find(v, '\n', 1, true)
  return cjson.decode(string.sub(v, 1, nl - 1)), string.sub(v, nl + 1)
end
local progress, terminal = tonumber(ARGV[3]), ARGV[4] == '1'
local lease, at = tonumber(ARGV[5]), tonumber(ARGV[6])
local member = ARGV[10] .. '\0' .. ARGV[1]
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local m = meta(old)
  if m.t == 1 or (progress >= 0 and progress < m.p) then return 0 end
  if progress < 0 then progress = m.p end
  if lease <= 0 then lease = m.l end
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[8]) then
  local all = redis.call('HGETALL', KEYS[1])
  local victim, vt, vu
  for i = 1, #all, 2 do
    local m = meta(all[i + 1])
    if not victim or (m.t == 1 and vt == 0) or (m.t == vt and m.u < vu) then
      victim, vt, vu = all[i], m.t, m.u
    end
  end
  redis.call('HDEL', KEYS[1], victim)
  redis.call('ZREM', KEYS[2], ARGV[10] .. '\0' .. victim)
end
local deadline = 0
if lease > 0 and not terminal then deadline = at + lease end
local t = 0
if terminal then t = 1 end
local m = cjson.encode({e = ARGV[2], p = progress, t = t, n = t, l = lease, d = deadline, u = at})
redis.call('HSET', KEYS[1], ARGV[1], m .. '\n' .. ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[9])
if deadline > 0 then
  redis.call('ZADD', KEYS[2], deadline, member)
else
  redis.call('ZREM', KEYS[2], member)
end
return 1`)

	// KEYS: user hash. Returns {key1, state1, ...} of the pending terminal
	// events, now marked delivered.
	scriptJobTakePending = redis.NewScript(`
local out = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local v = all[i + 1]
  local nl = string.find(v, '\n', 1, true)
  local m = cjson.decode(string.sub(v, 1, nl - 1))
  if m.n == 1 then
    m.n = 0
    redis.call('HSET', KEYS[1], all[i], cjson.encode(m) .. string.sub(v, nl))
    out[#out + 1] = all[i]
    out[#out + 1] = v
  end
end
return out`)

	// KEYS: user hash. ARGV: key.
	scriptJobDelivered = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local nl = string.find(v, '\n', 1, true)
local m = cjson.decode(string.sub(v, 1, nl - 1))
if m.n ~= 1 then return 0 end
m.n = 0
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(m) .. string.sub(v, nl))
return 1`)

	// KEYS: leases. ARGV: nowMs, limit, user hash prefix.
	// Returns {user1, key1, state1, ...}: the jobs whose lease ended,
	// removed from the leases, their deadline cleared.
	scriptJobClaim = redis.NewScript(`
local out = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, '\0', 1, true)
  local user, key = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  local hash = ARGV[3] .. user
  local v = redis.call('HGET', hash, key)
  if v then
    local nl = string.find(v, '\n', 1, true)
    local m = cjson.decode(string.sub(v, 1, nl - 1))
    if m.t ~= 1 then
      m.d = 0
      v = cjson.encode(m) .. string.sub(v, nl)
      redis.call('HSET', hash, key, v)
      out[#out + 1] = user
      out[#out + 1] = key
      out[#out + 1] = v
    end
  end
end
return out`)
)
