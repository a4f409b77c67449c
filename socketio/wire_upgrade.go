package socketio

import (
	"net/http"
	"sync"

	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	engine "github.com/zishang520/socket.io/servers/engine/v3"
)

// Sessions that start on long-polling and upgrade to WebSocket (what
// socket.io-client does by default) get herald's write path too, from the
// upgrade on. What wireConn.pending needs then is how many of the session's
// packets are still to be written on the WebSocket at the moment of the
// upgrade: those created and not flushed to long-polling (they wait in
// upstream's buffer, and go out on the WebSocket right after the upgrade),
// plus the probe answers ("3probe", written on the WebSocket outside the
// packet count) less what the WebSocket has written. upgradeTrack counts the
// first two from the session's start; the connection counts what it writes.

// One race is left to the client: a flush to long-polling counted as such
// just before the transport switch could reach the WebSocket instead. It
// needs a long-poll parked while the upgrade packet arrives, which
// socket.io-client never does (it pauses polling to upgrade, and upstream
// answers the parked poll first); a client that does it anyway can only
// reorder its own session's messages, never split a frame (wireConn checks
// the frame boundary on its own).

// upgradeTrack counts a long-polling session's packets until it upgrades.
type upgradeTrack struct {
	mu        sync.Mutex
	created   int64     // packets created ("packetCreate")
	onPolling int64     // packets flushed to the long-polling transport
	probes    int64     // probe answers sent on the WebSocket ("upgrading")
	wire      *wireConn // once upgraded: packets are counted there
}

// trackUpgrade follows sock, a new long-polling session, so that herald can
// write to the WebSocket it may upgrade to.
func (s *Server) trackUpgrade(sock engine.Socket) {
	sid := sock.Id()
	ut := &upgradeTrack{}
	_ = sock.On("packetCreate", func(...any) {
		ut.mu.Lock()
		if ut.wire != nil {
			ut.wire.pending.Add(1)
		} else {
			ut.created++
		}
		ut.mu.Unlock()
	})
	_ = sock.On("flush", func(args ...any) {
		wbuf, _ := firstArg[[]*packet.Packet](args)
		ut.mu.Lock()
		// After the upgrade, flushes go to the WebSocket: not counted.
		if ut.wire == nil {
			if tr := sock.Transport(); tr != nil && tr.Name() == TransportPolling {
				ut.onPolling += int64(len(wbuf))
			}
		}
		ut.mu.Unlock()
	})
	_ = sock.On("upgrading", func(...any) {
		ut.mu.Lock()
		ut.probes++
		ut.mu.Unlock()
	})
	// "upgrade" comes after the transport switch and before upstream
	// flushes its buffer to the WebSocket.
	_ = sock.Once("upgrade", func(...any) {
		g, ok := s.upgrades.LoadAndDelete(sid)
		if !ok {
			return
		}
		wc := g.(*connGate).wire
		if wc == nil {
			return
		}
		ut.mu.Lock()
		// wc.pending holds minus what the WebSocket has written so far.
		wc.pending.Add(ut.created - ut.onPolling + ut.probes)
		ut.wire = wc
		ut.mu.Unlock()
		s.wires.Store(sid, wc)
		if sock.ReadyState() == "closed" { // closed before Store
			s.wires.Delete(sid)
		}
	})
}

// withUpgradeWire wraps the ResponseWriter of a WebSocket upgrade of
// session sid so that herald gets the hijacked connection (with an open
// gate: the session exists). It returns a function to call once upstream
// has handled the request.
func (s *Server) withUpgradeWire(w http.ResponseWriter, sid string) (http.ResponseWriter, func()) {
	g := newConnGate()
	g.open()
	if _, loaded := s.upgrades.LoadOrStore(sid, g); loaded {
		return w, func() {} // an upgrade of this session is under way
	}
	gw := &gatedWriter{ResponseWriter: w, gate: g, upgrade: true, onClose: func() { s.upgrades.CompareAndDelete(sid, g) }}
	return gw, func() {
		if g.wire == nil { // refused before the hijack
			s.upgrades.CompareAndDelete(sid, g)
		}
	}
}
