// Package events names the events herald delivers and binds each name to its
// payload type, so that a service cannot send a job_progress event with a
// job_failed payload, or a payload its frontends cannot read.
//
// Built-in events cover the job and analysis lifecycle (JobProgress,
// JobCompleted, JobFailed, AnalysisStarted, AnalysisCompleted,
// AnalysisFailed) and presence (UserOnline, UserOffline). A service defines
// its own the same way:
//
//	type ChatMessage struct {
//		Room string `json:"room"`
//		Text string `json:"text"`
//		events.Meta // optional: lets receivers read the timestamp
//	}
//
//	var Chat = events.Define[ChatMessage]("chat:message")
//
// Payloads are JSON objects with camelCase field names. Every payload that
// herald delivers carries a "timestamp" member (RFC 3339, UTC) that the
// server adds when the payload does not set one. A payload type may implement
// Validator; invalid payloads are neither sent nor handed to handlers.
//
// The package uses only the standard library. Everything in it is immutable
// after package initialisation and safe for concurrent use.
package events
