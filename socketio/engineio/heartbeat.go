package engineio

// Heartbeat, protocol v4: the server pings every PingInterval and closes
// the session when the pong does not come within PingTimeout. Each session
// has one timer on the Server's heap, armed for the next ping or for the
// pong's deadline. As in Node, any other packet that arrives while the
// pong is awaited extends its deadline once, and a pong re-arms the next
// ping a full interval later.

// schedulePing arms the first ping.
func (s *Session) schedulePing() {
	s.srv.timers.Schedule(&s.heartbeat, s.srv.cfg.PingInterval, s.onHeartbeat)
}

// onHeartbeat runs on the timer goroutine: it sends a ping, or closes a
// session whose pong is overdue.
func (s *Session) onHeartbeat() {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return
	}
	if s.awaitingPong {
		s.mu.Unlock()
		s.closeNow(ReasonPingTimeout)
		return
	}
	s.awaitingPong = true
	s.refreshed = false
	s.srv.timers.Schedule(&s.heartbeat, s.srv.cfg.PingTimeout, s.onHeartbeat)
	s.enqueueLocked(pingPacket)
	s.mu.Unlock()
}

// onPacketLocked updates the heartbeat for a received packet of type typ.
// s.mu is held.
func (s *Session) onPacketLocked(typ byte) {
	switch {
	case typ == typePong:
		s.awaitingPong = false
		s.srv.timers.Schedule(&s.heartbeat, s.srv.cfg.PingInterval, s.onHeartbeat)
	case s.awaitingPong && !s.refreshed:
		s.refreshed = true
		s.srv.timers.Schedule(&s.heartbeat, s.srv.cfg.PingTimeout, s.onHeartbeat)
	}
}
