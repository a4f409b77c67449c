package adapter

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// rateLog logs at most one record per key per interval and says how many it
// held back, so that an outage (Redis down: every operation fails) costs a
// few lines a minute instead of thousands a second.
type rateLog struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int
}

func newRateLog(log *slog.Logger, interval time.Duration) *rateLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &rateLog{log: log, interval: interval, now: time.Now, last: map[string]time.Time{}, held: map[string]int{}}
}

// Log logs msg at level unless a record with the same key was logged less
// than interval ago.
func (r *rateLog) Log(level slog.Level, key, msg string, args ...any) {
	r.mu.Lock()
	now := r.now()
	if last, ok := r.last[key]; ok && now.Sub(last) < r.interval {
		r.held[key]++
		r.mu.Unlock()
		return
	}
	held := r.held[key]
	r.last[key] = now
	r.held[key] = 0
	r.mu.Unlock()
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	r.log.Log(context.Background(), level, msg, args...)
}

// Reset forgets key, so that its next record is logged at once (used when
// a condition ends, so that its next start is seen).
func (r *rateLog) Reset(key string) {
	r.mu.Lock()
	delete(r.last, key)
	delete(r.held, key)
	r.mu.Unlock()
}
