package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio/engineio"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// The handshake of a socket: a client's CONNECT packet for a namespace.
// Everything that can refuse it runs before anything of the socket exists
// or reaches the client: the namespace, the shutdown, the address's rate,
// the token, the user's connection count, and, for a client that asks to
// recover a session, whether the session is its user's. A refusal is a
// CONNECT_ERROR {message, data: {code}}; the connection stays open, as in
// Node. An accepted socket is registered (rooms, presence) before the
// CONNECT answer is queued, so a packet the client sends as soon as it
// reads the answer finds its socket.

// CodeRecoveryRefused answers a CONNECT that asks to recover another
// user's session.
const CodeRecoveryRefused = "recovery_refused"

// connect handles a CONNECT packet for a namespace c has not joined.
func (s *Server) connect(c *client, p *parser.Packet) {
	nsp := s.nsps[p.Nsp]
	if nsp == nil {
		c.connectError(p.Nsp, "Invalid namespace", "")
		return
	}
	var authObj map[string]any
	if p.Data != nil {
		_ = json.Unmarshal(p.Data, &authObj) // the parser checked it is an object
	}
	if s.closing.Load() {
		c.connectError(p.Nsp, "server shutting down", CodeServerShuttingDown)
		return
	}
	if !s.handshakes.allow(c.ip, time.Now()) {
		s.log.Debug("handshake over Config.HandshakeRate", "remote", c.ip)
		c.connectError(p.Nsp, "too many connections", CodeRateLimited)
		return
	}
	principal, err := s.authenticate(c.conn, authObj)
	if err != nil {
		code := auth.Code(err)
		s.log.Info("handshake rejected", "code", code, "reason", err.Error(), "remote", c.conn.RemoteAddr())
		c.connectError(p.Nsp, "unauthorized", code)
		return
	}
	if _, atomic := s.cfg.Presence.(adapter.UserSocketLimiter); !atomic && s.tooManyConnections(principal.UserID) {
		s.log.Info("handshake rejected: too many connections", "user", principal.UserID, "max", s.cfg.MaxConnectionsPerUser)
		c.connectError(p.Nsp, "too many connections", CodeTooManyConnections)
		return
	}
	id, pid := engineio.NewID(), ""
	rooms := []string{UserRoom(principal.UserID)}
	var rest *restore
	var missed []*engineio.Message
	if s.recoverer != nil {
		var refused bool
		if rest, refused = s.restore(authObj, principal.UserID); refused {
			c.connectError(p.Nsp, "unauthorized", CodeRecoveryRefused)
			return
		}
		if rest != nil {
			if missed, err = s.encodeMissed(nsp, rest.missed); err != nil {
				// More than the connection could take at once, or
				// unencodable: a new session, as for one that expired.
				s.log.Warn("session not recovered", "sid", rest.session.SocketID, "err", err)
				rest.done(true)
				rest, missed = nil, nil
			}
		}
		if rest != nil {
			id, pid = rest.session.SocketID, rest.session.PID
			for _, r := range rest.session.Rooms {
				if r != id && r != rooms[0] {
					rooms = append(rooms, r)
				}
			}
		} else {
			pid = engineio.NewID()
		}
	}

	// Registered step by step, each step found by what may disconnect the
	// socket meanwhile (DisconnectUser, Shutdown, the connection's close):
	// Socket.onClose cancels the socket's context first, and every step
	// refuses a cancelled socket, so nothing is left behind.
	sock := newSocket(s, c, nsp, id, pid, principal)
	s.mu.Lock()
	s.sockets[id] = sock
	s.mu.Unlock()
	nsp.add(sock, rooms)
	s.presenceMu.Lock()
	overLimit := false
	if sock.Connected() {
		ctx, cancel := context.WithTimeout(s.ctx, presenceTimeout)
		var first bool
		if limiter, ok := s.cfg.Presence.(adapter.UserSocketLimiter); ok && s.cfg.MaxConnectionsPerUser >= 0 {
			// The count and the add in one step: concurrent handshakes
			// of one user cannot pass the limit together.
			first, err = limiter.AddLimited(ctx, sock.userID, sock.id, s.cfg.MaxConnectionsPerUser)
		} else {
			first, err = s.cfg.Presence.Add(ctx, sock.userID, sock.id)
		}
		cancel()
		if first {
			s.notes.push(PresenceEvent{UserID: sock.userID, Online: true, Time: s.cfg.Now()})
		}
		overLimit = errors.Is(err, adapter.ErrUserLimit)
		if err != nil && !overLimit {
			s.log.Error("presence add failed", "user", sock.userID, "err", err)
		}
	}
	s.presenceMu.Unlock()
	if overLimit {
		// Registered but never answered: undone as a socket the server
		// disconnects (not kept for recovery), then refused.
		if rest != nil {
			rest.done(false)
		}
		sock.onClose(reasonServerNamespaceDisconnect)
		s.log.Info("handshake rejected: too many connections", "user", principal.UserID, "max", s.cfg.MaxConnectionsPerUser)
		c.connectError(p.Nsp, "too many connections", CodeTooManyConnections)
		return
	}
	if !c.addSocket(sock) || !sock.Connected() || s.closing.Load() {
		// The connection closed, the socket was disconnected, or Shutdown
		// began (and may have missed this socket) meanwhile.
		if rest != nil {
			rest.done(false)
		}
		c.removeSocket(sock)
		sock.onClose(engineio.ReasonTransportClose)
		if s.closing.Load() {
			c.conn.Close()
		}
		return
	}
	// The CONNECT answer, the missed events of a recovered session and
	// the greeting leave together (one write on a WebSocket).
	answer, _ := json.Marshal(struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}{id, pid})
	msgs, err := s.parser.Encode(&parser.Packet{Type: parser.Connect, Nsp: nsp.name, Data: answer})
	out := append(engineMessages(msgs), missed...)
	var recovered []adapter.Message
	if rest != nil {
		recovered = rest.missed
	}
	jobs := s.jobSnapshot(nsp.name, sock.userID, rest != nil, recovered)
	if err == nil {
		var greeting json.RawMessage
		if greeting, err = events.Authenticated.Encode(events.AuthenticatedPayload{UserID: sock.userID}, s.cfg.Now()); err == nil {
			var g []*engineio.Message
			g, err = s.encodeEvent(nsp.name, events.Authenticated.Name(), []json.RawMessage{greeting}, "")
			out = append(out, g...)
			out = append(out, jobs...) // after the greeting: the page knows its user
		}
	}
	if err == nil {
		err = c.conn.Send(out...)
	}
	if rest != nil {
		rest.done(err == nil)
	}
	if err != nil {
		// The connection is gone (OnClose disconnects the socket).
		s.log.Debug("handshake not answered", "sid", sock.id, "err", err)
		c.close()
		return
	}
	s.scheduleExpiry(sock, principal.ExpiresAt)
	s.log.Debug("socket connected", "sid", sock.id, "user", sock.userID, "transport", sock.Transport(), "recovered", rest != nil)
}

// presenceTimeout bounds one call to the Presence store.
const presenceTimeout = 5 * time.Second

// authenticate finds the token of a CONNECT (its auth object, the
// handshake's Authorization header, or Config.TokenQueryParam) and
// verifies it.
func (s *Server) authenticate(conn *engineio.Session, authObj map[string]any) (auth.Principal, error) {
	h := auth.Handshake{Auth: authObj, Header: conn.Header()}
	if s.cfg.TokenQueryParam != "" { // parsed only when it may be read
		h.Query = conn.Query()
	}
	token, err := auth.ExtractToken(h, auth.ExtractOptions{QueryParam: s.cfg.TokenQueryParam})
	if err != nil {
		return auth.Principal{}, err
	}
	var p auth.Principal
	if _, local := s.cfg.Verifier.(*auth.Verifier); local {
		p, err = s.cfg.Verifier.Verify(s.ctx, token) // no I/O: no deadline to set
	} else {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		p, err = s.cfg.Verifier.Verify(ctx, token)
		cancel()
	}
	if err != nil {
		return auth.Principal{}, err
	}
	if err := validateUserID(p.UserID); err != nil {
		return auth.Principal{}, fmt.Errorf("%w: %w", auth.ErrTokenInvalid, err)
	}
	return p, nil
}

// connectError answers a CONNECT with CONNECT_ERROR {message, data: {code}}
// (no data when code is empty).
func (c *client) connectError(nsp, message, code string) {
	type codeOnly struct {
		Code string `json:"code"`
	}
	body := struct {
		Message string    `json:"message"`
		Data    *codeOnly `json:"data,omitempty"`
	}{Message: message}
	if code != "" {
		body.Data = &codeOnly{Code: code}
	}
	data, _ := json.Marshal(body)
	_ = c.send(&parser.Packet{Type: parser.ConnectError, Nsp: nsp, Data: data})
}

// restore is a session being recovered: the session, the events to replay,
// and the hold on this node's delivery that done releases.
type restore struct {
	session adapter.Session
	missed  []adapter.Message
	done    func(taken bool)
}

// restore takes up the session a CONNECT asks to recover (auth.pid and
// auth.offset, sent by socket.io-client), after the token was verified.
// It returns nil for a new session (none asked, or none to recover), and
// refused when the session is another user's: it is given back untouched.
func (s *Server) restore(authObj map[string]any, userID string) (rest *restore, refused bool) {
	pid, _ := authObj["pid"].(string)
	offset, _ := authObj["offset"].(string)
	if pid == "" || offset == "" {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	sess, missed, done, err := s.recoverer.RestoreSession(ctx, pid, offset)
	if err != nil {
		if errors.Is(err, adapter.ErrNoSession) {
			s.log.Debug("session not recovered", "err", err)
		} else {
			s.log.Warn("session not recovered", "err", err)
		}
		return nil, false
	}
	own := UserRoom(userID)
	for _, r := range sess.Rooms {
		if strings.HasPrefix(r, UserRoomPrefix) && r != own {
			s.log.Warn("recovery of another user's session refused", "sid", sess.SocketID, "user", userID)
			done(false)
			return nil, true
		}
	}
	sess.PID = pid
	return &restore{session: sess, missed: missed, done: done}, false
}

// errTooManyMissed: a session's missed events would take more than half
// of Config.MaxBufferedBytes.
var errTooManyMissed = errors.New("socketio: too many missed events to replay")

// encodeMissed encodes the events a recovered socket missed in namespace
// nsp, in order, each with its offset as the last argument. It fails when
// they would not fit in the connection's buffer.
func (s *Server) encodeMissed(nsp *nspState, missed []adapter.Message) ([]*engineio.Message, error) {
	var out []*engineio.Message
	size, budget := 0, s.cfg.MaxBufferedBytes/2
	for _, m := range missed {
		if m.Namespace != nsp.key {
			continue // the log holds every namespace's messages
		}
		msgs, err := s.encodeEvent(nsp.name, m.Event, m.Args, m.Offset)
		if err != nil {
			return nil, fmt.Errorf("socketio: missed event %s: %w", m.Event, err)
		}
		for _, e := range msgs {
			size += len(e.Data()) + 16
		}
		if int64(size) > budget {
			return nil, fmt.Errorf("%w (%d events)", errTooManyMissed, len(missed))
		}
		out = append(out, msgs...)
	}
	return out, nil
}
