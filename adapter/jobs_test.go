package adapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/redistest"
)

// jobStoreContract runs the rules every JobStore follows against store,
// whose clock is now.
func jobStoreContract(t *testing.T, store JobStore, now *time.Time) {
	ctx := context.Background()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	rec := func(u JobUpdate) error {
		t.Helper()
		if u.Payload == nil {
			u.Payload = json.RawMessage(`{}`)
		}
		return store.Record(ctx, u)
	}
	mustRec := func(u JobUpdate) {
		t.Helper()
		if err := rec(u); err != nil {
			t.Fatalf("Record(%+v): %v", u, err)
		}
	}
	mustRec(JobUpdate{UserID: "u", Key: "job:a", Event: "job_progress", Progress: 10, At: at(0)})
	mustRec(JobUpdate{UserID: "u", Key: "job:a", Event: "job_progress", Progress: 40, At: at(time.Millisecond), Payload: json.RawMessage(`{"jobId":"a","progress":40}`)})
	if err := rec(JobUpdate{UserID: "u", Key: "job:a", Event: "job_progress", Progress: 30, At: at(2 * time.Millisecond)}); !errors.Is(err, ErrStaleJobEvent) {
		t.Errorf("lower progress = %v, want ErrStaleJobEvent", err)
	}
	mustRec(JobUpdate{UserID: "u", Key: "analysis:i", Event: "analysis:started", Progress: -1, At: at(3 * time.Millisecond), Lease: time.Second})
	states, err := store.States(ctx, "u")
	if err != nil || len(states) != 2 || states[0].Key != "job:a" || string(states[0].Payload) != `{"jobId":"a","progress":40}` || states[1].Key != "analysis:i" {
		t.Fatalf("States = %+v, %v", states, err)
	}
	if states[1].Deadline.IsZero() || states[1].Lease != time.Second {
		t.Errorf("analysis lease not kept: %+v", states[1])
	}
	// Terminal: pending until taken or delivered, then nothing after it.
	mustRec(JobUpdate{UserID: "u", Key: "job:a", Event: "job_completed", Progress: 100, Terminal: true, At: at(4 * time.Millisecond)})
	if err := rec(JobUpdate{UserID: "u", Key: "job:a", Event: "job_progress", Progress: 100, At: at(5 * time.Millisecond)}); !errors.Is(err, ErrStaleJobEvent) {
		t.Errorf("event after terminal = %v, want ErrStaleJobEvent", err)
	}
	mustRec(JobUpdate{UserID: "u", Key: "job:b", Event: "job_failed", Progress: -1, Terminal: true, At: at(6 * time.Millisecond)})
	if err := store.Delivered(ctx, "u", "job:b"); err != nil {
		t.Fatal(err)
	}
	pending, err := store.TakePending(ctx, "u")
	if err != nil || len(pending) != 1 || pending[0].Key != "job:a" || pending[0].Event != "job_completed" {
		t.Errorf("TakePending = %+v, %v; want job:a's job_completed alone", pending, err)
	}
	if again, err := store.TakePending(ctx, "u"); err != nil || len(again) != 0 {
		t.Errorf("TakePending again = %+v, %v; want nothing", again, err)
	}
	// Leases: claimed once, after the deadline only.
	if got, err := store.ClaimExpired(ctx, at(500*time.Millisecond), 10); err != nil || len(got) != 0 {
		t.Errorf("ClaimExpired before the deadline = %+v, %v", got, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var claimed []ExpiredJob
	for range 8 {
		wg.Go(func() {
			got, err := store.ClaimExpired(ctx, at(2*time.Second), 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			claimed = append(claimed, got...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(claimed) != 1 || claimed[0].UserID != "u" || claimed[0].State.Key != "analysis:i" {
		t.Errorf("8 concurrent ClaimExpired claimed %+v, want analysis:i once", claimed)
	}
	// Bounded per user: the oldest ended job goes first.
	for i := range 120 {
		mustRec(JobUpdate{UserID: "many", Key: fmt.Sprintf("job:%03d", i), Event: "job_progress", Progress: 1, At: at(time.Duration(i) * time.Millisecond)})
	}
	states, err = store.States(ctx, "many")
	if err != nil || len(states) != 10 || states[0].Key != "job:110" {
		t.Errorf("after 120 jobs with MaxJobsPerUser 10: %d states from %v, %v; want the last 10", len(states), keyOf(states), err)
	}
}

func keyOf(states []JobState) string {
	if len(states) == 0 {
		return "none"
	}
	return states[0].Key
}

func TestMemoryJobStore(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s := NewMemoryJobStore(JobStoreConfig{MaxJobsPerUser: 10, Retention: time.Hour})
	s.now = func() time.Time { return now }
	jobStoreContract(t, s, &now)
	// Retention: a job not updated for longer is forgotten.
	now = now.Add(2 * time.Hour)
	if states, err := s.States(context.Background(), "many"); err != nil || len(states) != 0 {
		t.Errorf("States after the retention = %d, %v; want none", len(states), err)
	}
}

func TestRedisJobStore(t *testing.T) {
	srv := redistest.Start(t)
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	s, err := NewRedisJobStore(RedisJobStoreConfig{Client: srv.Client(t), JobStoreConfig: JobStoreConfig{MaxJobsPerUser: 10, Retention: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	jobStoreContract(t, s, &now)
	// The payload comes back byte for byte, whatever JSON it holds.
	ctx := context.Background()
	payload := json.RawMessage(`{"jobId":"x","progress":5,"message":"\u003c\u0026 ünïcode\n","timestamp":"2026-12-07T12:00:00Z","big":1e400}`)
	if err := s.Record(ctx, JobUpdate{UserID: "bytes", Key: "job:x", Event: "job_progress", Progress: 5, At: now, Payload: payload}); err != nil {
		t.Fatal(err)
	}
	states, err := s.States(ctx, "bytes")
	if err != nil || len(states) != 1 || string(states[0].Payload) != string(payload) {
		t.Errorf("payload round trip = %+v, %v", states, err)
	}
	// Retention: the user's hash expires in Redis.
	if ttl, err := srv.Client(t).PTTL(ctx, "{herald}:jobs:bytes").Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Errorf("PTTL of a user's jobs = %v, %v; want up to the retention", ttl, err)
	}
}

// Job states live as long as Redis keeps its data: with appendfsync always
// a crash of Redis loses none; without persistence a restart loses them
// all (documented: the leases then fail nothing either, and pages show
// their jobs as lost).
func TestRedisJobStoreRedisRestart(t *testing.T) {
	for _, persist := range []bool{true, false} {
		t.Run(fmt.Sprintf("persistence=%v", persist), func(t *testing.T) {
			var opts []redistest.Option
			if persist {
				opts = append(opts, redistest.WithArgs("--appendonly", "yes", "--appendfsync", "always"))
			}
			srv := redistest.Start(t, opts...)
			s, err := NewRedisJobStore(RedisJobStoreConfig{Client: srv.Client(t)})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			u := JobUpdate{UserID: "alice", Key: "job:j", Event: "job_progress", Progress: 40, Lease: time.Minute, At: time.Now(), Payload: json.RawMessage(`{"jobId":"j","progress":40}`)}
			if err := s.Record(ctx, u); err != nil {
				t.Fatal(err)
			}
			srv.Kill()
			srv.Restart(t)
			var states []JobState
			eventually(t, "Redis answers", func() bool {
				states, err = s.States(ctx, "alice")
				return err == nil
			})
			switch {
			case persist && (len(states) != 1 || states[0].Progress != 40 || states[0].Deadline.IsZero()):
				t.Errorf("after a crash of a persistent Redis: %+v, want the job at 40%% with its lease", states)
			case !persist && len(states) != 0:
				t.Errorf("after a restart of a Redis without persistence: %+v, want nothing", states)
			}
		})
	}
}
