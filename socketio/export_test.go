package socketio

import "time"

// DirectWrites returns how many room deliveries s has written to WebSocket
// connections through its own write path (wire.go), for the tests that
// must know that path was taken.
func DirectWrites(s *Server) uint64 { return s.directWrites.Load() }

// WireWrites returns how many writes the WebSocket connection of s has
// handed to the kernel through herald's write path, or -1 when s has no
// such connection (long-polling).
func WireWrites(s *Socket) int {
	wc := s.srv.wireOf(s.raw)
	if wc == nil {
		return -1
	}
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.writes
}

// SetWireHoldMax sets how long a WebSocket connection's handshake may hold
// its writes (wireHoldMax), before s has any connection.
func SetWireHoldMax(s *Server, d time.Duration) { s.holdMax.Store(int64(d)) }
