package socketio

// ConnWrites returns how many writes the WebSocket of s's connection has
// made, for the tests that check batching.
func ConnWrites(s *Socket) uint64 { return s.client.conn.Writes() }
