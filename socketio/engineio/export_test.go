package engineio

// Hooks for the tests of package engineio_test: they wait on these states
// instead of sleeping.

// Parked reports whether the session sid has a long-polling GET waiting for
// packets.
func (s *Server) Parked(sid string) bool {
	sess := s.session(sid)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.waiting != nil
}

// Posting reports whether a long-polling POST of the session sid is reading
// its body.
func (s *Server) Posting(sid string) bool {
	sess := s.session(sid)
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.posting != nil
}

// Upgrading reports whether the session sid has a WebSocket being upgraded
// to, and whether it has answered the probe.
func (s *Server) Upgrading(sid string) (upgrading, probed bool) {
	sess := s.session(sid)
	if sess == nil {
		return false, false
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.probe != nil, sess.probed
}

// Queued returns the bytes waiting to be written to the session sid.
func (s *Server) Queued(sid string) int64 {
	sess := s.session(sid)
	if sess == nil {
		return 0
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.queued
}
