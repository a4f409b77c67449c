package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio/engineio"
)

// Job state (Config.Jobs): the built-in job and analysis events emitted
// to a user (EmitToUser, Emitter.EmitToUser) are recorded before they are
// sent, so that
//   - a socket that connects to "/" receives the latest event of each of
//     its user's jobs still running, as the events the frontend already
//     listens for (after a reload, on a new tab, on any node);
//   - a terminal event (job_completed, job_failed, analysis:completed,
//     analysis:failed) that reached none of the user's sockets is delivered
//     once, to the next socket that connects;
//   - progress never goes backwards and nothing follows a terminal event:
//     such an event is dropped, and EmitToUser returns an error wrapping
//     ErrStaleJobEvent;
//   - a job given a lease (events.JobProgressPayload.Lease) and not updated
//     within it is failed (code events.CodeJobStalled), once across the
//     cluster.

// ErrStaleJobEvent is returned, wrapped, by EmitToUser for a job event
// that was dropped: a lower progress than the job's last one, or an event
// after its terminal event (adapter.ErrStaleJobEvent).
var ErrStaleJobEvent = adapter.ErrStaleJobEvent

// jobLeaseCheck is how often a Server claims the jobs whose lease ended.
const jobLeaseCheck = time.Second

// jobOpTimeout bounds one job store operation on a local path.
const jobOpTimeout = 2 * time.Second

// jobUpdate describes ev with payload, encoded as data, for the job store;
// ok is false for events that are not about a job.
func jobUpdate(userID string, ev events.Event, payload any, data json.RawMessage, at time.Time) (adapter.JobUpdate, bool) {
	u := adapter.JobUpdate{UserID: userID, Event: ev.Name(), Payload: data, Progress: -1, At: at}
	switch p := payload.(type) {
	case events.JobProgressPayload:
		u.Key, u.Progress, u.Lease = "job:"+p.JobID, p.Progress, p.Lease
	case events.JobCompletedPayload:
		u.Key, u.Terminal, u.Progress = "job:"+p.JobID, true, events.MaxProgress
	case events.JobFailedPayload:
		u.Key, u.Terminal = "job:"+p.JobID, true
	case events.AnalysisPayload:
		u.Key, u.Lease = "analysis:"+p.InterviewID, p.Lease
		switch ev.Name() {
		case events.AnalysisStarted.Name():
		case events.AnalysisCompleted.Name(), events.AnalysisFailed.Name():
			u.Terminal = true
		default:
			return u, false
		}
	default:
		return u, false
	}
	return u, true
}

// gateJob records in store a job event ev, encoded as data, emitted to
// userID at at, before it is sent. drop is the error to return instead of
// sending it (a stale event, ErrStaleJobEvent); failed is the store's own
// failure, after which the event is sent anyway: it matters more than its
// record. Events that are not about a job pass.
func gateJob(ctx context.Context, store adapter.JobStore, userID string, ev events.Event, payload any, data json.RawMessage, at time.Time) (drop, failed error) {
	u, ok := jobUpdate(userID, ev, payload, data, at)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobOpTimeout)
	defer cancel()
	switch err := store.Record(ctx, u); {
	case errors.Is(err, adapter.ErrStaleJobEvent):
		return fmt.Errorf("socketio: emit %s: %w", ev.Name(), err), nil
	case err != nil:
		return nil, fmt.Errorf("socketio: emit %s: job state of %s not recorded: %w", ev.Name(), u.Key, err)
	}
	return nil, nil
}

// JobStates returns the latest state of each of userID's jobs still
// running (Config.Jobs), oldest first. It fails with ErrNoJobStore when
// the Server keeps no job state.
func (s *Server) JobStates(ctx context.Context, userID string) ([]adapter.JobState, error) {
	if err := validateUserID(userID); err != nil {
		return nil, err
	}
	if s.cfg.Jobs == nil {
		return nil, ErrNoJobStore
	}
	return s.cfg.Jobs.States(ctx, userID)
}

// ErrNoJobStore is returned by JobStates when Config.Jobs is nil.
var ErrNoJobStore = errors.New("socketio: no job store (Config.Jobs)")

// JobEventsDropped returns how many job events this node dropped because
// they were stale (ErrStaleJobEvent).
func (s *Server) JobEventsDropped() int64 { return s.jobsDropped.Load() }

// jobSnapshot returns what a socket of userID that joins "/" is told about
// the user's jobs: the latest event of each job still running (unless the
// socket recovered its session, whose missed events cover them) and the
// terminal events no socket received, but those among missed.
func (s *Server) jobSnapshot(nsp, userID string, recovered bool, missed []adapter.Message) []*engineio.Message {
	if s.cfg.Jobs == nil || nsp != "/" {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, jobOpTimeout)
	defer cancel()
	var states []adapter.JobState
	if !recovered {
		var err error
		if states, err = s.cfg.Jobs.States(ctx, userID); err != nil {
			s.log.Warn("job states not sent", "user", userID, "err", err)
		}
	}
	pending, err := s.cfg.Jobs.TakePending(ctx, userID)
	if err != nil {
		s.log.Warn("pending job events not sent", "user", userID, "err", err)
	}
	seen := map[string]bool{}
	for _, m := range missed {
		if key, ok := jobKeyOf(m.Event, m.Args); ok {
			seen[m.Event+"\x00"+key] = true
		}
	}
	var out []*engineio.Message
	for _, st := range append(states, pending...) {
		if seen[st.Event+"\x00"+st.Key] {
			continue
		}
		msgs, err := s.encodeEvent(nsp, st.Event, []json.RawMessage{st.Payload}, "")
		if err != nil {
			s.log.Warn("job state not sent", "user", userID, "job", st.Key, "err", err)
			continue
		}
		out = append(out, msgs...)
	}
	return out
}

// terminalEvents are the events that end a job.
var terminalEvents = map[string]string{
	events.JobCompleted.Name():      "job:",
	events.JobFailed.Name():         "job:",
	events.AnalysisCompleted.Name(): "analysis:",
	events.AnalysisFailed.Name():    "analysis:",
}

// jobKeyOf returns the job key of a job event's arguments.
func jobKeyOf(event string, args []json.RawMessage) (string, bool) {
	prefix := "job:"
	switch event {
	case events.JobProgress.Name(), events.JobCompleted.Name(), events.JobFailed.Name():
	case events.AnalysisStarted.Name(), events.AnalysisCompleted.Name(), events.AnalysisFailed.Name():
		prefix = "analysis:"
	default:
		return "", false
	}
	if len(args) != 1 {
		return "", false
	}
	var ids struct {
		JobID       string `json:"jobId"`
		InterviewID string `json:"interviewId"`
	}
	if json.Unmarshal(args[0], &ids) != nil {
		return "", false
	}
	if prefix == "job:" {
		return prefix + ids.JobID, ids.JobID != ""
	}
	return prefix + ids.InterviewID, ids.InterviewID != ""
}

// markDelivered records that m, a terminal job event, reached a socket of
// its user on this node, so that it is not delivered again on connect.
func (s *Server) markDelivered(m adapter.Message) {
	if s.cfg.Jobs == nil || len(m.Rooms) != 1 || terminalEvents[m.Event] == "" {
		return
	}
	userID, ok := strings.CutPrefix(m.Rooms[0], userRoomPrefix)
	if !ok {
		return
	}
	key, ok := jobKeyOf(m.Event, m.Args)
	if !ok {
		return
	}
	s.goroutine(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, jobOpTimeout)
		defer cancel()
		if err := s.cfg.Jobs.Delivered(ctx, userID, key); err != nil {
			s.log.Warn("job event delivery not recorded", "user", userID, "job", key, "err", err)
		}
	})
}

// runJobLeases fails, every jobLeaseCheck, the jobs whose lease ended.
func (s *Server) runJobLeases(ctx context.Context) {
	t := time.NewTicker(jobLeaseCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.leasesStop:
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, jobOpTimeout)
		expired, err := s.cfg.Jobs.ClaimExpired(cctx, s.cfg.Now(), 100)
		cancel()
		if err != nil {
			s.log.Warn("job leases not checked", "err", err)
			continue
		}
		for _, x := range expired {
			s.failStalled(ctx, x)
		}
	}
}

// failStalled sends the terminal event of a job whose lease ended.
func (s *Server) failStalled(ctx context.Context, x adapter.ExpiredJob) {
	const msg = "the job stopped reporting: no update within its lease"
	var err error
	switch id, isJob := strings.CutPrefix(x.State.Key, "job:"); {
	case isJob:
		err = s.EmitToUser(ctx, x.UserID, events.JobFailed, events.JobFailedPayload{JobID: id, Error: msg, Code: events.CodeJobStalled})
	default:
		id = strings.TrimPrefix(x.State.Key, "analysis:")
		err = s.EmitToUser(ctx, x.UserID, events.AnalysisFailed, events.AnalysisPayload{
			InterviewID: id, Message: msg, Status: events.StatusFailed, Code: events.CodeJobStalled,
		})
	}
	s.log.Info("job stalled: failed", "user", x.UserID, "job", x.State.Key, "lease", x.State.Lease, "err", err)
}

// userRoomPrefix starts every user's room name (UserRoom).
var userRoomPrefix = UserRoom("")
