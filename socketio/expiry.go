package socketio

import (
	"context"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/timers"
)

// Token lifetime while connected. A socket's token expires at some point
// (auth.Principal.ExpiresAt); Config.ExpiryWarning before that, the socket
// receives auth_expired with the deadline, and at the deadline the Server
// closes the socket's connection, so that socket.io-client reconnects by
// itself, with a fresh token when its auth option is a callback. A client
// that sends reauthenticate with a fresh token of the same user before the
// deadline stays connected, with the new token's deadline.

// minExpiryGrace is the least time a socket is given after its handshake: a
// token accepted within the Verifier's leeway of its expiry is warned at
// once and disconnected this long after.
const minExpiryGrace = time.Second

// CodeUserMismatch answers a reauthenticate whose token is another user's.
const CodeUserMismatch = "user_mismatch"

// expiry holds a socket's deadline and the timers that enforce it, on
// the Server's timer heap.
type expiry struct {
	deadline time.Time
	warn     timers.Timer
	expire   timers.Timer
}

// scheduleExpiry (re)arms sock's timers for the token that expires at
// expiresAt. A zero expiresAt (a TokenVerifier that sets none) arms none.
func (s *Server) scheduleExpiry(sock *Socket, expiresAt time.Time) time.Time {
	sock.authMu.Lock()
	defer sock.authMu.Unlock()
	sock.stopExpiryLocked()
	// A socket that disconnected meanwhile gets no timers (onDisconnect
	// cancels its context, then stops them under authMu).
	if expiresAt.IsZero() || sock.ctx.Err() != nil {
		return time.Time{}
	}
	now := s.cfg.Now()
	deadline := expiresAt
	if d := deadline.Sub(now); d < minExpiryGrace {
		deadline = now.Add(minExpiryGrace)
	}
	x := &expiry{deadline: deadline}
	warnIn := deadline.Sub(now) - s.cfg.ExpiryWarning
	s.timers.Schedule(&x.warn, max(warnIn, 0), func() { s.warnExpiry(sock, x) })
	s.timers.Schedule(&x.expire, deadline.Sub(now), func() { s.expire(sock, x) })
	sock.expiry = x
	return deadline
}

// stopExpiryLocked stops sock's timers; sock.authMu is held.
func (sock *Socket) stopExpiryLocked() {
	if x := sock.expiry; x != nil {
		sock.srv.timers.Stop(&x.warn)
		sock.srv.timers.Stop(&x.expire)
		sock.expiry = nil
	}
}

func (sock *Socket) stopExpiry() {
	sock.authMu.Lock()
	defer sock.authMu.Unlock()
	sock.stopExpiryLocked()
}

// current reports whether x is still sock's expiry (not replaced by a
// reauthenticate, nor stopped by a disconnect).
func (sock *Socket) current(x *expiry) bool {
	sock.authMu.Lock()
	defer sock.authMu.Unlock()
	return sock.expiry == x
}

func (s *Server) warnExpiry(sock *Socket, x *expiry) {
	if !sock.current(x) {
		return
	}
	err := Emit(sock.ctx, sock, events.AuthExpired, events.AuthExpiredPayload{ExpiresAt: x.deadline.UTC()})
	if err != nil {
		s.log.Debug("auth_expired not sent", "sid", sock.id, "err", err)
	}
}

func (s *Server) expire(sock *Socket, x *expiry) {
	if !sock.current(x) || !sock.Connected() {
		return
	}
	s.log.Info("token expired: closing the connection", "sid", sock.id, "user", sock.userID)
	sock.client.conn.Close()
}

// reauthenticate is the built-in handler of events.Reauthenticate.
func (s *Server) reauthenticate(ctx context.Context, sock *Socket, p events.ReauthenticatePayload) (events.ReauthenticatedPayload, error) {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pr, err := s.cfg.Verifier.Verify(vctx, p.Token)
	if err == nil {
		err = validateUserID(pr.UserID)
	}
	if err != nil {
		code := auth.Code(err)
		s.log.Info("reauthenticate rejected", "sid", sock.id, "code", code, "reason", err.Error())
		return events.ReauthenticatedPayload{}, &Error{Code: code, Message: "token rejected"}
	}
	if pr.UserID != sock.userID {
		s.log.Warn("reauthenticate with another user's token", "sid", sock.id, "user", sock.userID)
		return events.ReauthenticatedPayload{}, &Error{Code: CodeUserMismatch, Message: "the token is another user's"}
	}
	sock.setPrincipal(pr)
	deadline := s.scheduleExpiry(sock, pr.ExpiresAt)
	return events.ReauthenticatedPayload{ExpiresAt: deadline.UTC()}, nil
}
