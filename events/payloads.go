package events

import (
	"errors"
	"fmt"
	"time"
)

// The events herald's product speaks. Each name is bound to its payload type;
// services define their own events the same way with Define or New.
var (
	// JobProgress reports how far a background job has come.
	JobProgress = Define[JobProgressPayload]("job_progress")
	// JobCompleted reports that a job finished successfully.
	JobCompleted = Define[JobCompletedPayload]("job_completed")
	// JobFailed reports that a job failed.
	JobFailed = Define[JobFailedPayload]("job_failed")

	// AnalysisStarted reports that the analysis of an interview started.
	AnalysisStarted = Define[AnalysisPayload]("analysis:started")
	// AnalysisCompleted reports that the analysis of an interview completed.
	AnalysisCompleted = Define[AnalysisPayload]("analysis:completed")
	// AnalysisFailed reports that the analysis of an interview failed.
	AnalysisFailed = Define[AnalysisPayload]("analysis:failed")

	// UserOnline reports that a user's first socket connected.
	UserOnline = Define[PresencePayload]("user_online")
	// UserOffline reports that a user's last socket disconnected.
	UserOffline = Define[PresencePayload]("user_offline")

	// Authenticated is sent to a socket once its handshake is accepted.
	Authenticated = Define[AuthenticatedPayload]("authenticated")
	// AuthExpired warns a socket that its token expires at ExpiresAt, when
	// the server disconnects it unless it re-authenticates first.
	AuthExpired = Define[AuthExpiredPayload]("auth_expired")
	// ServerDisconnect tells a socket why the server is about to disconnect
	// it (Server.DisconnectUser); the client then sees "io server
	// disconnect" and does not reconnect by itself.
	ServerDisconnect = Define[ServerDisconnectPayload]("server_disconnect")
	// Reauthenticate is sent by a client with a fresh token, before its
	// token expires, to stay connected; the server acknowledges it with a
	// ReauthenticatedPayload or an {error: {code, message}}.
	Reauthenticate = Define[ReauthenticatePayload]("reauthenticate")
)

// Limits on the fields of the built-in payloads.
const (
	MaxIDLength      = 256      // jobId, interviewId, userId
	MaxMessageLength = 16 << 10 // message, error
	MaxProgress      = 100      // progress is a percentage
	maxStatusLength  = 64       // analysis status
	MaxTokenLength   = 16 << 10 // reauthenticate's token
)

var errEmptyID = errors.New("id is empty")

func checkID(field, v string) error {
	switch {
	case v == "":
		return fmt.Errorf("%s: %w", field, errEmptyID)
	case len(v) > MaxIDLength:
		return fmt.Errorf("%s: longer than %d bytes", field, MaxIDLength)
	}
	return nil
}

func checkText(field, v string, limit int) error {
	if len(v) > limit {
		return fmt.Errorf("%s: longer than %d bytes", field, limit)
	}
	return nil
}

// JobProgressPayload is the payload of job_progress.
type JobProgressPayload struct {
	JobID    string `json:"jobId"`
	Progress int    `json:"progress"` // 0..100
	Message  string `json:"message,omitempty"`
	// Lease, when positive and the server keeps job state
	// (socketio.Config.Jobs), fails the job with job_failed (code
	// "job_stalled") if no event about it follows within Lease; later
	// events without a Lease keep this one. It is not sent to clients.
	Lease time.Duration `json:"-"`
	Meta
}

// Validate implements Validator.
func (p JobProgressPayload) Validate() error {
	if p.Progress < 0 || p.Progress > MaxProgress {
		return fmt.Errorf("progress: %d is outside 0..%d", p.Progress, MaxProgress)
	}
	return errors.Join(checkID("jobId", p.JobID), checkText("message", p.Message, MaxMessageLength))
}

// JobCompletedPayload is the payload of job_completed. Result is any JSON
// value the job produced; it is omitted when nil.
type JobCompletedPayload struct {
	JobID  string `json:"jobId"`
	Result any    `json:"result,omitempty"`
	Meta
}

// Validate implements Validator.
func (p JobCompletedPayload) Validate() error { return checkID("jobId", p.JobID) }

// JobFailedPayload is the payload of job_failed. Error is the message shown
// to the user: never put internal error text in it.
type JobFailedPayload struct {
	JobID string `json:"jobId"`
	Error string `json:"error"`
	// Code says why, for programs: CodeJobStalled when the server failed
	// the job because its lease ended; empty otherwise (omitted).
	Code string `json:"code,omitempty"`
	Meta
}

// CodeJobStalled is JobFailedPayload.Code (and AnalysisPayload.Code) of a
// job the server failed because no event about it came within its lease.
const CodeJobStalled = "job_stalled"

// Validate implements Validator.
func (p JobFailedPayload) Validate() error {
	return errors.Join(checkID("jobId", p.JobID), checkText("error", p.Error, MaxMessageLength))
}

// AnalysisPayload is the payload of analysis:started, analysis:completed and
// analysis:failed.
type AnalysisPayload struct {
	InterviewID string `json:"interviewId"`
	Message     string `json:"message"`
	Status      string `json:"status"`
	// Code is CodeJobStalled on an analysis:failed the server sent
	// because the analysis's lease ended; empty otherwise (omitted).
	Code string `json:"code,omitempty"`
	// Lease is JobProgressPayload.Lease for analysis:started. It is not
	// sent to clients.
	Lease time.Duration `json:"-"`
	Meta
}

// Analysis statuses used by the built-in events.
const (
	StatusStarted   = "started"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Validate implements Validator.
func (p AnalysisPayload) Validate() error {
	return errors.Join(
		checkID("interviewId", p.InterviewID),
		checkText("message", p.Message, MaxMessageLength),
		checkText("status", p.Status, maxStatusLength),
	)
}

// PresencePayload is the payload of user_online and user_offline.
type PresencePayload struct {
	UserID string `json:"userId"`
	Meta
}

// Validate implements Validator.
func (p PresencePayload) Validate() error { return checkID("userId", p.UserID) }

// AuthenticatedPayload is the payload of authenticated.
type AuthenticatedPayload struct {
	UserID string `json:"userId"`
	Meta
}

// Validate implements Validator.
func (p AuthenticatedPayload) Validate() error { return checkID("userId", p.UserID) }

// AuthExpiredPayload is the payload of auth_expired.
type AuthExpiredPayload struct {
	// ExpiresAt is when the socket's token expires and the server
	// disconnects it (RFC 3339, UTC).
	ExpiresAt time.Time `json:"expiresAt"`
	Meta
}

// ReauthenticatePayload is the payload of reauthenticate.
type ReauthenticatePayload struct {
	Token string `json:"token"`
}

// Validate implements Validator.
func (p ReauthenticatePayload) Validate() error {
	switch {
	case p.Token == "":
		return errors.New("token: empty")
	case len(p.Token) > MaxTokenLength:
		return fmt.Errorf("token: longer than %d bytes", MaxTokenLength)
	}
	return nil
}

// ReauthenticatedPayload acknowledges a reauthenticate that was accepted:
// the socket's new deadline.
type ReauthenticatedPayload struct {
	ExpiresAt time.Time `json:"expiresAt"`
}

// ServerDisconnectPayload is the payload of server_disconnect.
type ServerDisconnectPayload struct {
	Reason string `json:"reason"`
	Meta
}

// Validate implements Validator.
func (p ServerDisconnectPayload) Validate() error {
	return checkText("reason", p.Reason, MaxMessageLength)
}
