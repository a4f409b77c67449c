package socketio

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Stats is a snapshot of the Server's load.
type Stats struct {
	// Connected is the number of connected sockets.
	Connected int `json:"connected"`
	// Users is the number of online users; many tabs of one user count once.
	Users int `json:"users"`
	// Timestamp is when the snapshot was taken (RFC 3339, UTC).
	Timestamp time.Time `json:"timestamp"`
}

// Stats returns a snapshot of the connected sockets and online users.
func (s *Server) Stats(ctx context.Context) (Stats, error) {
	users, sockets, err := s.cfg.Presence.Counts(ctx)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Connected: sockets, Users: users, Timestamp: s.cfg.Now().UTC()}, nil
}

// StatsHandler serves GET requests (mount it at /api/v1/websocket/stats)
// with {"success":true,"data":{"connected":N,"users":M,"timestamp":"..."}}.
// Other methods get 405; a failing Presence backend gets 503 with
// {"success":false,"error":{"code":"stats_unavailable","message":...}}.
func (s *Server) StatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		st, err := s.Stats(ctx)
		if err != nil {
			s.log.Warn("stats unavailable", "err", err)
			writeJSONError(w, http.StatusServiceUnavailable, "stats_unavailable", "stats unavailable")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "data": st})
	})
}
