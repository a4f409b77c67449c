package socketio

// DirectWrites returns how many room deliveries s has written to WebSocket
// connections through its own write path (wire.go), for the tests that
// must know that path was taken.
func DirectWrites(s *Server) uint64 { return s.directWrites.Load() }
