package socketio

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	engine "github.com/zishang520/socket.io/servers/engine/v3"
)

// Upstream gap (servers/engine v3.0.5): a new connection's OPEN packet goes
// out before the Socket.IO layer listens to the connection. The engine
// socket is built (and the OPEN packet queued) first, and only then is the
// "connection" event emitted, whose listener attaches the Socket.IO client.
// A client that answers OPEN at once with its CONNECT packet, as
// socket.io-client does, can be faster: the engine reads the packet, emits
// it to no listener, and the client waits for an answer until
// connectTimeout closes the connection. herald closes that window:
//
//   - WebSocket: the hijacked connection's reads wait until herald's own
//     "connection" listener, registered after Socket.IO's, has run;
//   - long-polling: the handshake response (the OPEN packet) is held until
//     the handshake handler returns, which is after the "connection" event.
//
// TestConnectRightAfterOpen sends CONNECT as soon as OPEN arrives, many
// times over.

// gateTimeout bounds how long reads wait for a connection event that never
// comes (the handshake failed after the upgrade); the connection is then
// left to upstream as it is.
const gateTimeout = 10 * time.Second

type gateKey struct{}

// connGate opens once the Socket.IO layer listens to a new connection.
type connGate struct {
	ch     chan struct{}
	once   sync.Once
	opened atomic.Bool
	wire   *wireConn // the hijacked connection (set before the gate opens)
}

func newConnGate() *connGate { return &connGate{ch: make(chan struct{})} }

func (g *connGate) open() {
	g.once.Do(func() {
		g.opened.Store(true)
		close(g.ch)
	})
}

func (g *connGate) wait() {
	if g.opened.Load() {
		return
	}
	t := time.NewTimer(gateTimeout)
	defer t.Stop()
	select {
	case <-g.ch:
	case <-t.C:
	}
}

// onEngineConnection is herald's engine "connection" listener: registered
// after Socket.IO's, it runs once the new connection has its Socket.IO
// client. It opens the connection's gate, and makes sure that whoever
// closes the session (the client's close packet included), a long-poll
// still parked is answered with the close packet (see polls.go).
func (s *Server) onEngineConnection(args ...any) {
	sock, ok := firstArg[engine.Socket](args)
	if !ok {
		return
	}
	sid := sock.Id()
	_ = sock.Once("close", func(...any) {
		s.polls.close(sid)
		if s.wires != nil {
			s.wires.Delete(sid)
			s.upgrades.Delete(sid)
		}
	})
	if tr := sock.Transport(); tr != nil && tr.Name() == TransportPolling {
		if s.wires != nil {
			s.trackUpgrade(sock)
		}
		// "ready": upstream has taken a poll (see pollWriter.markTaken).
		// Upstream gap (servers/engine v3.0.5): a polling session that
		// upstream closes while no poll is parked (Socket.IO's "invalid
		// state" close, e.g. a DISCONNECT and a CONNECT of one namespace in
		// one POST) waits for the next poll to carry the close packet, but
		// has already shut the queue that would write it: the poll hangs
		// until closeTimeout. A poll that finds the session closing with
		// nothing left to flush gets the close packet from herald, and the
		// session closes at once, as the reference server does. (Upstream's
		// close timer, which nothing can stop now, still fires after 30 s,
		// harmlessly: see main_test.go.)
		_ = tr.On("ready", func(...any) {
			s.polls.markTaken(sid)
			if sock.ReadyState() == "closing" && tr.Writable() {
				s.polls.closeWith(sid, closeAfterNoopPayload)
				tr.OnClose()
			}
		})
	}
	if sock.Request() == nil || sock.Request().Request() == nil {
		return
	}
	if g, ok := sock.Request().Request().Context().Value(gateKey{}).(*connGate); ok {
		if wc := g.wire; wc != nil && s.wires != nil {
			// Before the gate opens: nothing but the OPEN packet can have
			// been created yet (see wireConn.pending).
			_ = sock.On("packetCreate", func(...any) { wc.pending.Add(1) })
			s.wires.Store(sid, wc)
			if sock.ReadyState() == "closed" { // closed before Store
				s.wires.Delete(sid)
			}
		}
		g.open()
	}
}

// withGate returns r carrying a new gate, and w wrapped so that the
// WebSocket it hijacks waits for that gate before reading, and holds its
// writes until the OPEN packet for at most holdMax (0: no hold).
func withGate(w http.ResponseWriter, r *http.Request, holdMax time.Duration) (http.ResponseWriter, *http.Request) {
	g := newConnGate()
	return &gatedWriter{ResponseWriter: w, gate: g, holdMax: holdMax}, r.WithContext(context.WithValue(r.Context(), gateKey{}, g))
}

type gatedWriter struct {
	http.ResponseWriter
	gate *connGate

	// upgrade marks the upgrade of a long-polling session: no OPEN packet
	// will be written (see wireConn.pending), and onClose runs when the
	// connection closes.
	upgrade bool
	onClose func()
	holdMax time.Duration
}

// Hijack hands upstream's WebSocket library a connection whose reads wait
// for the gate, and through which herald writes too (wire.go).
//
// It also lets go of net/http's ResponseWriter. Upstream keeps the request
// context, and with it this writer, for the connection's lifetime; the
// writer holds net/http's connection state, whose 4 KiB read and 4 KiB
// write buffers are dead once the connection is hijacked. That was about a
// fifth of herald's heap per idle connection (BENCHMARKS.md).
func (w *gatedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.ResponseWriter = hijackedWriter{header: w.ResponseWriter.Header()}
	if brw.Reader.Buffered() > 0 {
		// The client sent data before the handshake finished: leave the
		// connection as it is (the WebSocket library refuses it).
		return conn, brw, nil
	}
	wc := newWireConn(conn, w.gate)
	if w.upgrade {
		wc.pending.Store(0)
		wc.onClose = w.onClose
	} else if w.holdMax > 0 {
		wc.holdUntilIdle(w.holdMax) // the upgrade response leaves with OPEN
	}
	w.gate.wire = wc
	// net/http's reader, empty, now reads from wc: no new 4 KiB buffer per
	// connection (upstream's Upgrader has its own read buffer and never
	// reads this one; it was garbage at once, 10% of the bytes a connect
	// allocated).
	brw.Reader.Reset(wc)
	return wc, brw, nil
}

func (w *gatedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hijackedWriter stands in for net/http's ResponseWriter once the
// connection is hijacked: every write fails with http.ErrHijacked, as
// net/http's own would.
type hijackedWriter struct{ header http.Header }

func (h hijackedWriter) Header() http.Header     { return h.header }
func (hijackedWriter) Write([]byte) (int, error) { return 0, http.ErrHijacked }
func (hijackedWriter) WriteHeader(int)           {}
func (hijackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, http.ErrHijacked
}
