package engineio

import (
	"net/http"
	"time"
)

// The upgrade from long-polling to WebSocket, as engine.io-client does it:
// the client opens a WebSocket with the session's sid and sends "2probe";
// the server answers "3probe", and from then on answers polls with a noop
// at once, so that the client's last poll returns and it can pause
// polling; the client then sends "5" (upgrade) over the WebSocket, and the
// session moves to it: what is queued is written there, and a GET with the
// sid now gets 400 (the session's transport is no longer polling). Until
// "5", the session goes on over long-polling; an upgrade that does not
// finish within UpgradeTimeout, or a WebSocket that sends anything else,
// is dropped and the session stays on polling.

// upgradeSession serves a WebSocket request carrying the sid of sess.
func (s *Server) upgradeSession(sess *Session, w http.ResponseWriter, r *http.Request) {
	ws := s.accept(w, r, false)
	if ws == nil {
		return
	}
	sess.mu.Lock()
	if sess.state != stateOpen || sess.transport != transportPolling || sess.probe != nil {
		// Closed, upgraded, or upgrading already: Node completes the
		// WebSocket handshake, then closes it.
		sess.mu.Unlock()
		ws.close(0)
		return
	}
	sess.probe = ws
	s.timers.Schedule(&sess.upgradeTimer, s.cfg.UpgradeTimeout, func() {
		sess.mu.Lock()
		if sess.probe == ws {
			s.log.Debug("engineio: upgrade timed out", "sid", sess.id)
			sess.abandonUpgradeLocked()
		}
		sess.mu.Unlock()
	})
	sess.mu.Unlock()
	s.startReading(sess, ws)
}

// abandonUpgradeLocked drops the WebSocket being upgraded to; the session
// stays on long-polling. s.mu is held.
func (s *Session) abandonUpgradeLocked() {
	ws := s.probe
	if ws == nil {
		return
	}
	s.probe = nil
	s.probed = false
	s.srv.timers.Stop(&s.upgradeTimer)
	s.srv.timers.Stop(&s.probeTimer) // a poll waiting for its noop now waits for packets
	ws.closeLater(0)                 // not under the lock, nor on the timer heap
}

// onWebSocketPacket handles a packet read from ws, the session's WebSocket
// or the one it is upgrading to. The reader goes on until the connection
// closes (a closing session's close frame bounds it).
func (s *Session) onWebSocketPacket(ws *wsConn, p packet) {
	s.mu.Lock()
	if s.ws == ws {
		s.mu.Unlock()
		s.deliver(p)
		return
	}
	if s.probe != ws {
		s.mu.Unlock()
		ws.close(0) // an abandoned upgrade: drained until the client closes
		return
	}
	switch {
	case p.typ == typePing && string(p.data) == "probe":
		// Probed before the answer leaves: a poll the client sends once
		// it has read the answer must find the upgrade under way.
		s.probed = true
		if s.waiting != nil {
			s.answerLocked(s.waiting, noopPacket) // the client's last poll returns
		}
		s.mu.Unlock()
		// Nothing else writes to the WebSocket until the upgrade.
		if err := ws.write([]*Message{pongProbePacket}, time.Now().Add(s.srv.cfg.UpgradeTimeout)); err != nil {
			s.mu.Lock()
			if s.probe == ws {
				s.abandonUpgradeLocked()
			}
			s.mu.Unlock()
		}
	case p.typ == typeUpgrade && s.state != stateClosed:
		s.srv.timers.Stop(&s.upgradeTimer)
		s.probe = nil
		s.probed = false
		s.transport = transportWebSocket
		s.ws = ws
		s.srv.timers.Stop(&s.probeTimer)
		if pw := s.waiting; pw != nil {
			// A poll parked since the probe: answered as one that comes
			// after the upgrade, which the client cannot tell apart.
			pw.reject = true
			s.waiting = nil
			close(pw.ch)
		}
		if rc := s.posting; rc != nil {
			_ = rc.SetReadDeadline(aLongTimeAgo) // Node destroys a POST in flight
		}
		s.startWriterLocked() // what was queued, and the close if closing
		s.mu.Unlock()
	default:
		s.abandonUpgradeLocked()
		s.mu.Unlock()
	}
}
