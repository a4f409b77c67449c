package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/herald-rt/herald/adapter"
)

// Stats is a snapshot of the load of the Server's cluster.
type Stats struct {
	// Connected is the number of connected sockets.
	Connected int `json:"connected"`
	// Users is the number of online users; many tabs of one user count once.
	Users int `json:"users"`
	// Nodes is the number of live nodes counted.
	Nodes int `json:"nodes"`
	// StaleNodes are the nodes among Nodes that missed their last
	// heartbeat: they may have died, and are removed from the counts when
	// their registration expires.
	StaleNodes int `json:"staleNodes"`
	// Scope is "cluster" when the counts cover every node (a cluster
	// Presence, or a single node), "node" when they cover this node only
	// because the cluster store did not answer.
	Scope string `json:"scope"`
	// Partial is true when the counts may be wrong: Scope is "node" in a
	// cluster, or some nodes are stale.
	Partial bool `json:"partial"`
	// Node counts this node alone, known without asking the cluster.
	Node NodeStats `json:"node"`
	// Timestamp is when the snapshot was taken (RFC 3339, UTC).
	Timestamp time.Time `json:"timestamp"`
}

// NodeStats is the load of one node.
type NodeStats struct {
	Connected int `json:"connected"` // sockets on this node
	Users     int `json:"users"`     // their distinct users
}

// SlowConsumers returns how many connections this node has closed since
// it started because their client did not read what was sent to it
// (Config.MaxBufferedBytes).
func (s *Server) SlowConsumers() int64 { return s.engine.SlowConsumers() }

// Stats returns a snapshot of the connected sockets and online users. With
// a cluster Presence (adapter.RedisPresence) the counts cover every node;
// if the store does not answer, Stats falls back to this node's own counts
// and says so (Scope "node", Partial true) rather than failing.
func (s *Server) Stats(ctx context.Context) (Stats, error) {
	now := s.cfg.Now().UTC()
	localUsers, localSockets := s.localCounts()
	node := NodeStats{Connected: localSockets, Users: localUsers}
	if cp, ok := s.cfg.Presence.(adapter.ClusterPresence); ok {
		st, err := cp.ClusterStats(ctx)
		if err == nil {
			return Stats{
				Connected: st.Sockets, Users: st.Users, Nodes: st.Nodes, StaleNodes: st.StaleNodes,
				Scope: "cluster", Partial: st.StaleNodes > 0, Node: node, Timestamp: now,
			}, nil
		}
		if errors.Is(err, adapter.ErrPartial) {
			s.log.Debug("cluster stats unavailable; reporting this node only", "err", err) // the Presence logs the outage
		} else {
			s.log.Warn("cluster stats unavailable; reporting this node only", "err", err)
		}
		return Stats{Connected: localSockets, Users: localUsers, Nodes: 1, Scope: "node", Partial: true, Node: node, Timestamp: now}, nil
	}
	users, sockets, err := s.cfg.Presence.Counts(ctx)
	if err != nil {
		return Stats{}, err
	}
	return Stats{Connected: sockets, Users: users, Nodes: 1, Scope: "cluster", Node: node, Timestamp: now}, nil
}

// localCounts counts this node's sockets and their distinct users.
func (s *Server) localCounts() (users, sockets int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := make(map[string]struct{}, len(s.sockets))
	for _, sock := range s.sockets {
		seen[sock.userID] = struct{}{}
	}
	return len(seen), len(s.sockets)
}

// StatsHandler serves GET requests (mount it at /api/v1/websocket/stats)
// with {"success":true,"data":{"connected":N,"users":M,"nodes":K,
// "staleNodes":0,"scope":"cluster","partial":false,
// "node":{"connected":n,"users":m},"timestamp":"..."}}.
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
