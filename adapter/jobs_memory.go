package adapter

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// MemoryJobStore is the JobStore of a single node. It holds at most
// MaxJobsPerUser jobs per user and forgets a job Retention after its last
// event (swept as the store is used).
type MemoryJobStore struct {
	cfg JobStoreConfig
	now func() time.Time

	mu        sync.Mutex
	users     map[string]map[string]*JobState // user -> key -> state
	lastSweep time.Time
}

var _ JobStore = (*MemoryJobStore)(nil)

// NewMemoryJobStore returns an empty store.
func NewMemoryJobStore(cfg JobStoreConfig) *MemoryJobStore {
	return &MemoryJobStore{cfg: cfg.withDefaults(), now: time.Now, users: map[string]map[string]*JobState{}}
}

// Record implements JobStore.
func (s *MemoryJobStore) Record(ctx context.Context, u JobUpdate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	jobs := s.users[u.UserID]
	next, err := apply(jobs[u.Key], u)
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = map[string]*JobState{}
		s.users[u.UserID] = jobs
	}
	if _, ok := jobs[u.Key]; !ok && len(jobs) >= s.cfg.MaxJobsPerUser {
		delete(jobs, evictee(jobs))
	}
	jobs[u.Key] = &next
	return nil
}

// evictee is the key to forget to make room: the oldest ended job, or the
// oldest job.
func evictee(jobs map[string]*JobState) string {
	var key string
	var oldest *JobState
	for k, st := range jobs {
		better := oldest == nil ||
			st.Terminal && !oldest.Terminal ||
			st.Terminal == oldest.Terminal && st.UpdatedAt.Before(oldest.UpdatedAt)
		if better {
			key, oldest = k, st
		}
	}
	return key
}

// sweepLocked forgets jobs past their retention, at most once a minute.
func (s *MemoryJobStore) sweepLocked() {
	now := s.now()
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	for user, jobs := range s.users {
		for k, st := range jobs {
			if now.Sub(st.UpdatedAt) > s.cfg.Retention {
				delete(jobs, k)
			}
		}
		if len(jobs) == 0 {
			delete(s.users, user)
		}
	}
}

// States implements JobStore.
func (s *MemoryJobStore) States(ctx context.Context, userID string) ([]JobState, error) {
	return s.collect(ctx, userID, func(st *JobState) bool { return !st.Terminal })
}

// TakePending implements JobStore.
func (s *MemoryJobStore) TakePending(ctx context.Context, userID string) ([]JobState, error) {
	return s.collect(ctx, userID, func(st *JobState) bool {
		if !st.Pending {
			return false
		}
		st.Pending = false
		return true
	})
}

// collect returns copies of the user's states that keep accepts (which
// may change them), oldest first.
func (s *MemoryJobStore) collect(ctx context.Context, userID string, keep func(*JobState) bool) ([]JobState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []JobState
	for _, st := range s.users[userID] {
		if s.now().Sub(st.UpdatedAt) <= s.cfg.Retention && keep(st) {
			out = append(out, *st)
		}
	}
	sortStates(out)
	return out, nil
}

func sortStates(states []JobState) {
	slices.SortFunc(states, func(a, b JobState) int {
		return cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), cmp.Compare(a.Key, b.Key))
	})
}

// Delivered implements JobStore.
func (s *MemoryJobStore) Delivered(ctx context.Context, userID, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.users[userID][key]; st != nil {
		st.Pending = false
	}
	return nil
}

// ClaimExpired implements JobStore.
func (s *MemoryJobStore) ClaimExpired(ctx context.Context, now time.Time, limit int) ([]ExpiredJob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ExpiredJob
	for user, jobs := range s.users {
		for _, st := range jobs {
			if len(out) >= limit {
				return out, nil
			}
			if !st.Deadline.IsZero() && st.Deadline.Before(now) {
				st.Deadline = time.Time{} // claimed: the caller fails the job
				out = append(out, ExpiredJob{UserID: user, State: *st})
			}
		}
	}
	return out, nil
}
