package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// JobStore keeps, for each user, the latest state of every job and
// analysis the user's events describe, so that a socket that connects
// (after a reload, on another tab or node, after the recovery window) is
// told where they stand, and a terminal event that reached none of the
// user's sockets is not lost. MemoryJobStore serves one node;
// RedisJobStore a cluster, nodes and Emitters alike.
//
// A job is named by a key ("job:<jobId>", "analysis:<interviewId>"). Its
// state is the last event recorded for it, kept as delivered (the encoded
// payload). Every method is safe for concurrent use.
type JobStore interface {
	// Record applies u. It fails with ErrStaleJobEvent, and changes
	// nothing, for a progress lower than the job's last one and for any
	// event after the job's terminal event. A terminal event is kept as
	// pending (see TakePending) until Delivered or the retention ends.
	Record(ctx context.Context, u JobUpdate) error
	// States returns the user's jobs that have not ended, oldest first.
	States(ctx context.Context, userID string) ([]JobState, error)
	// TakePending returns the user's terminal events that no socket
	// received yet and marks them delivered: one caller gets each.
	TakePending(ctx context.Context, userID string) ([]JobState, error)
	// Delivered marks the terminal event of key as received by a socket.
	Delivered(ctx context.Context, userID, key string) error
	// ClaimExpired returns the jobs whose lease ended before now, at most
	// limit, each to exactly one caller across the cluster, and forgets
	// their leases: the caller fails them (a terminal event).
	ClaimExpired(ctx context.Context, now time.Time, limit int) ([]ExpiredJob, error)
}

// ErrStaleJobEvent is returned by JobStore.Record for an event that would
// move a job backwards: a lower progress than the last one recorded, or an
// event after the job's terminal event. The event is dropped, not sent.
var ErrStaleJobEvent = errors.New("adapter: stale job event: the job is further along or has ended")

// JobUpdate is one event about a job.
type JobUpdate struct {
	UserID string
	Key    string // "job:<jobId>" or "analysis:<interviewId>"
	Event  string // the event's name, as delivered
	// Payload is the event's argument as delivered to clients.
	Payload json.RawMessage
	// Progress is the job's progress (0..100), or -1 when the event does
	// not carry one.
	Progress int
	// Terminal marks the job's last event (completed or failed).
	Terminal bool
	// Lease, when positive, fails the job if no event follows within it
	// (ClaimExpired); a later event without a lease keeps the last one's.
	Lease time.Duration
	// At is when the event was emitted.
	At time.Time
}

// JobState is the latest state of one job.
type JobState struct {
	Key       string          `json:"key"`
	Event     string          `json:"event"`
	Payload   json.RawMessage `json:"payload"`
	Progress  int             `json:"progress"` // -1: none yet
	Terminal  bool            `json:"terminal"`
	Pending   bool            `json:"pending,omitempty"` // terminal, not yet received by a socket
	Lease     time.Duration   `json:"lease,omitempty"`
	Deadline  time.Time       `json:"deadline,omitzero"` // when the lease ends; zero: no lease
	UpdatedAt time.Time       `json:"updatedAt"`
}

// ExpiredJob is a job whose lease ended, claimed by ClaimExpired.
type ExpiredJob struct {
	UserID string
	State  JobState
}

// JobStoreConfig bounds a job store; the zero value of each field is its
// default.
type JobStoreConfig struct {
	// MaxJobsPerUser bounds the jobs kept per user; beyond, the oldest
	// ended job is forgotten, or the oldest job at all if none has ended.
	// 0 means DefaultMaxJobsPerUser.
	MaxJobsPerUser int
	// Retention is how long a job is kept after its last event, and a
	// pending terminal event waits for its user. 0 means
	// DefaultJobRetention.
	Retention time.Duration
}

// Defaults of JobStoreConfig.
const (
	DefaultMaxJobsPerUser = 100
	DefaultJobRetention   = 24 * time.Hour
)

func (c JobStoreConfig) withDefaults() JobStoreConfig {
	if c.MaxJobsPerUser <= 0 {
		c.MaxJobsPerUser = DefaultMaxJobsPerUser
	}
	if c.Retention <= 0 {
		c.Retention = DefaultJobRetention
	}
	return c
}

// apply is the rule both stores follow: the state of a job after u, or
// ErrStaleJobEvent. old is nil for a job not seen before.
func apply(old *JobState, u JobUpdate) (JobState, error) {
	next := JobState{
		Key: u.Key, Event: u.Event, Payload: u.Payload, Progress: u.Progress,
		Terminal: u.Terminal, Pending: u.Terminal, Lease: u.Lease, UpdatedAt: u.At,
	}
	if old != nil {
		if old.Terminal || u.Progress >= 0 && u.Progress < old.Progress {
			return JobState{}, ErrStaleJobEvent
		}
		if u.Progress < 0 {
			next.Progress = old.Progress
		}
		if u.Lease <= 0 {
			next.Lease = old.Lease
		}
	}
	if next.Lease > 0 && !next.Terminal {
		next.Deadline = u.At.Add(next.Lease)
	}
	return next, nil
}
