package socketio_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/socketio"
)

// jobEventsOf returns the job and analysis events c received, as
// "event key detail" strings, in order.
func jobEventsOf(t *testing.T, c *nodeclient.Client) []string {
	t.Helper()
	var out []string
	for _, m := range c.Events() {
		if len(m.Args) == 0 { // a second argument is a recovery offset
			continue
		}
		var p struct {
			JobID       string `json:"jobId"`
			InterviewID string `json:"interviewId"`
			Progress    *int   `json:"progress"`
			Code        string `json:"code"`
		}
		if json.Unmarshal(m.Args[0], &p) != nil || p.JobID == "" && p.InterviewID == "" {
			continue
		}
		s := m.Event + " " + p.JobID + p.InterviewID
		if p.Progress != nil {
			s += fmt.Sprintf(" %d", *p.Progress)
		}
		if p.Code != "" {
			s += " " + p.Code
		}
		out = append(out, s)
	}
	return out
}

// settle waits until c has received want job events (and a moment more,
// for any that should not come), and returns them.
func settle(t *testing.T, c *nodeclient.Client, want int) []string {
	t.Helper()
	eventually(t, fmt.Sprintf("%d job events", want), func() bool { return len(jobEventsOf(t, c)) >= want })
	// A marker emitted after the fact arrives after anything else queued.
	return jobEventsOf(t, c)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestJobStateOnConnect: a tab opened (or reloaded) mid-job is told where
// every running job and analysis stands, as the events it listens for,
// right after "authenticated"; a second tab too; finished jobs are not
// replayed.
func TestJobStateOnConnect(t *testing.T) {
	ts := startServer(t, socketio.Config{Jobs: adapter.NewMemoryJobStore(adapter.JobStoreConfig{})})
	ctx := testCtx(t, 30*time.Second)
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j1", Progress: 10}))
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j1", Progress: 40, Message: "resizing"}))
	must(t, ts.EmitToUser(ctx, "alice", events.AnalysisStarted, events.AnalysisPayload{InterviewID: "i1", Status: events.StatusStarted}))
	must(t, ts.EmitToUser(ctx, "bob", events.JobProgress, events.JobProgressPayload{JobID: "b1", Progress: 70}))

	tab := ts.connect(t, "alice")
	want := []string{"job_progress j1 40", "analysis:started i1"}
	if got := settle(t, tab, 2); !equalStrings(got, want) {
		t.Errorf("a tab opened mid-job got %v, want %v", got, want)
	}
	// The state comes after the greeting: the page knows its user first.
	evs := tab.Events()
	if len(evs) < 1 || evs[0].Event != "authenticated" {
		t.Errorf("first event %v, want authenticated", evs)
	}
	// Live progress, then a second tab joins mid-job.
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j1", Progress: 60}))
	settle(t, tab, 3)
	second := ts.connect(t, "alice")
	if got := settle(t, second, 2); !equalStrings(got, []string{"analysis:started i1", "job_progress j1 60"}) {
		t.Errorf("a second tab got %v", got)
	}
	// j1 ends while both tabs are open: a tab opened later hears nothing
	// of it.
	must(t, ts.EmitToUser(ctx, "alice", events.JobCompleted, events.JobCompletedPayload{JobID: "j1"}))
	settle(t, tab, 4)
	settle(t, second, 3)
	third := ts.connect(t, "alice")
	if got := settle(t, third, 1); !equalStrings(got, []string{"analysis:started i1"}) {
		t.Errorf("a tab opened after j1 completed got %v, want only the analysis", got)
	}
	states, err := ts.JobStates(ctx, "alice")
	if err != nil || len(states) != 1 || states[0].Key != "analysis:i1" {
		t.Errorf("JobStates = %+v, %v; want the analysis alone", states, err)
	}
}

// TestJobTerminalForOfflineUser: a job_completed that reached no socket of
// its user is delivered once, to the next socket that connects; a reload
// after that does not repeat it.
func TestJobTerminalForOfflineUser(t *testing.T) {
	ts := startServer(t, socketio.Config{Jobs: adapter.NewMemoryJobStore(adapter.JobStoreConfig{})})
	ctx := testCtx(t, 30*time.Second)
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j1", Progress: 90}))
	must(t, ts.EmitToUser(ctx, "alice", events.JobCompleted, events.JobCompletedPayload{JobID: "j1", Result: 42}))
	must(t, ts.EmitToUser(ctx, "alice", events.AnalysisFailed, events.AnalysisPayload{InterviewID: "i1", Status: events.StatusFailed}))

	first := ts.connect(t, "alice")
	want := []string{"job_completed j1", "analysis:failed i1"}
	if got := settle(t, first, 2); !equalStrings(got, want) {
		t.Fatalf("first connect after the user was offline got %v, want %v", got, want)
	}
	first.Close()
	reload := ts.connect(t, "alice")
	// Something live, to know the reload's queue has drained.
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 1}))
	if got := settle(t, reload, 1); !equalStrings(got, []string{"job_progress marker 1"}) {
		t.Errorf("a reload after the terminal events were delivered got %v, want only the live marker", got)
	}
}

// TestJobProgressNeverBackwards: two workers report one job out of order:
// a lower progress is dropped (ErrStaleJobEvent), and nothing follows a
// terminal event.
func TestJobProgressNeverBackwards(t *testing.T) {
	ts := startServer(t, socketio.Config{Jobs: adapter.NewMemoryJobStore(adapter.JobStoreConfig{})})
	ctx := testCtx(t, 30*time.Second)
	tab := ts.connect(t, "alice")
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 50}))
	err := ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 30})
	if !errors.Is(err, socketio.ErrStaleJobEvent) {
		t.Errorf("progress 30 after 50 = %v, want ErrStaleJobEvent", err)
	}
	// Of("/").EmitToUser is EmitToUser: the same rules.
	root, err := ts.Of("/")
	must(t, err)
	if err := root.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 40}); !errors.Is(err, socketio.ErrStaleJobEvent) {
		t.Errorf(`Of("/").EmitToUser of progress 40 after 50 = %v, want ErrStaleJobEvent`, err)
	}
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 50, Message: "same progress, new message"}))
	must(t, ts.EmitToUser(ctx, "alice", events.JobFailed, events.JobFailedPayload{JobID: "j", Error: "boom"}))
	for _, late := range []struct {
		ev events.Event
		p  any
	}{
		{events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 100}},
		{events.JobCompleted, events.JobCompletedPayload{JobID: "j"}},
		{events.JobFailed, events.JobFailedPayload{JobID: "j", Error: "again"}},
	} {
		if err := ts.EmitToUser(ctx, "alice", late.ev, late.p); !errors.Is(err, socketio.ErrStaleJobEvent) {
			t.Errorf("%s after job_failed = %v, want ErrStaleJobEvent", late.ev.Name(), err)
		}
	}
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 1}))
	want := []string{"job_progress j 50", "job_progress j 50", "job_failed j", "job_progress marker 1"}
	if got := settle(t, tab, len(want)); !equalStrings(got, want) {
		t.Errorf("the tab got %v, want %v", got, want)
	}
	if n := ts.JobEventsDropped(); n != 5 {
		t.Errorf("JobEventsDropped = %d, want 5", n)
	}
}

// TestJobLeaseStalled: a job whose producer stops reporting within its
// lease is failed with code job_stalled, once; an analysis too.
func TestJobLeaseStalled(t *testing.T) {
	ts := startServer(t, socketio.Config{Jobs: adapter.NewMemoryJobStore(adapter.JobStoreConfig{})})
	ctx := testCtx(t, 30*time.Second)
	tab := ts.connect(t, "alice")
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 16, Lease: 500 * time.Millisecond}))
	must(t, ts.EmitToUser(ctx, "alice", events.AnalysisStarted, events.AnalysisPayload{InterviewID: "i", Status: events.StatusStarted, Lease: 500 * time.Millisecond}))
	// A job that keeps reporting within its lease is not failed.
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "alive", Progress: 1, Lease: time.Hour}))
	want := []string{"job_progress j 16", "analysis:started i", "job_progress alive 1", "job_failed j job_stalled", "analysis:failed i job_stalled"}
	got := settle(t, tab, len(want))
	// Order between the two failures is the store's; compare as sets.
	if len(got) != len(want) || !sameSet(got, want) {
		t.Fatalf("the tab got %v, want %v", got, want)
	}
	// Once: a few more lease checks pass without another failure.
	time.Sleep(2500 * time.Millisecond)
	if got := jobEventsOf(t, tab); len(got) != len(want) {
		t.Errorf("after more lease checks the tab has %v, want no more", got)
	}
	// The stalled job has ended: its producer's late event is dropped.
	err := ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 20})
	if !errors.Is(err, socketio.ErrStaleJobEvent) {
		t.Errorf("progress after the stall = %v, want ErrStaleJobEvent", err)
	}
}

func sameSet(a, b []string) bool {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestJobStateRecoveredSession: a socket that recovers its session gets
// what it missed once: no state snapshot on top of the replay, and a
// terminal event emitted while it was away not twice.
func TestJobStateRecoveredSession(t *testing.T) {
	ts := startServer(t, socketio.Config{Recovery: time.Minute, Jobs: adapter.NewMemoryJobStore(adapter.JobStoreConfig{})})
	ctx := testCtx(t, 30*time.Second)
	c := nodeclient.Start(t, nodeclient.Options{
		URL: ts.URL, Transports: []string{"websocket"}, Reconnection: true,
		Auth:  map[string]any{"token": ts.token(t, "alice")},
		Extra: map[string]any{"reconnectionDelay": 300, "reconnectionDelayMax": 300, "randomizationFactor": 0},
	})
	_, err := c.WaitType(ctx, "connect")
	must(t, err)
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 10}))
	settle(t, c, 1)
	must(t, c.Send(map[string]any{"cmd": "drop"}))
	_, err = c.WaitType(ctx, "disconnect")
	must(t, err)
	eventually(t, "socket gone", func() bool { return ts.SocketCount() == 0 })
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 70}))
	must(t, ts.EmitToUser(ctx, "alice", events.JobCompleted, events.JobCompletedPayload{JobID: "j"}))
	m, err := c.WaitFor(ctx, func(m nodeclient.Message) bool { return m.Type == "connect" && m.Recovered })
	must(t, err)
	_ = m
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "marker", Progress: 1}))
	want := []string{"job_progress j 10", "job_progress j 70", "job_completed j", "job_progress marker 1"}
	if got := settle(t, c, len(want)); !equalStrings(got, want) {
		t.Errorf("the recovered socket got %v, want %v", got, want)
	}
	// Nobody gets job_completed again.
	other := ts.connect(t, "alice")
	must(t, ts.EmitToUser(ctx, "alice", events.JobProgress, events.JobProgressPayload{JobID: "marker2", Progress: 1}))
	// marker is a job still running: the new tab is told of it.
	if got := settle(t, other, 2); !equalStrings(got, []string{"job_progress marker 1", "job_progress marker2 1"}) {
		t.Errorf("a new tab got %v, want the running marker jobs alone", got)
	}
}
