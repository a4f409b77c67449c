package socketio

import (
	"context"
	"time"

	"github.com/herald-rt/herald/adapter"
)

// Connection-state recovery (Config.Recovery). A socket that disconnects
// for a recoverable reason (a transport that failed or closed, a ping
// timeout, the server shutting down: Node's list) leaves its session with
// the Broker's Recoverer, readable by every node: its id, its private
// session id (pid, sent to the client in the CONNECT answer) and its
// rooms. A client that reconnects within Config.Recovery sends back the pid
// and the offset of the last event it received; the CONNECT is
// authenticated first, the session must be its user's (connect.go), and
// then the socket gets its id and rooms back and the events it missed,
// each with its offset, before any newer one.

// persist saves sock's session, with its rooms, for recovery.
func (s *Server) persist(sock *Socket, rooms []string) {
	if sock.pid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 2*time.Second)
	defer cancel()
	sess := adapter.Session{SocketID: sock.id, PID: sock.pid, Rooms: rooms}
	if err := s.recoverer.SaveSession(ctx, sess, s.cfg.Recovery); err != nil {
		s.log.Warn("session not saved: the client will start a new one", "sid", sock.id, "err", err)
	}
}
