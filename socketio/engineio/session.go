package engineio

import (
	"errors"
	"net/http"
	"net/url"
	"sync"

	"github.com/herald-rt/herald/internal/timers"
)

// Close reasons, as Node's engine.io words them; a Handler's OnClose gets
// one of them.
const (
	// ReasonTransportClose: the client closed the session (the close
	// packet, or its WebSocket closed).
	ReasonTransportClose = "transport close"
	// ReasonTransportError: the connection failed, the client broke the
	// protocol (a second concurrent poll, an aborted request), or it did
	// not read what was sent to it (Config.MaxBufferedBytes).
	ReasonTransportError = "transport error"
	// ReasonPingTimeout: no pong within Config.PingTimeout.
	ReasonPingTimeout = "ping timeout"
	// ReasonParseError: the client sent a packet that does not decode.
	ReasonParseError = "parse error"
	// ReasonForcedClose: the server closed the session.
	ReasonForcedClose = "forced close"
)

// Errors of Session.Send.
var (
	// ErrClosed means the session is closed or closing.
	ErrClosed = errors.New("engineio: session closed")
	// ErrSlowConsumer means the message would have taken the session past
	// Config.MaxBufferedBytes: the session has been closed.
	ErrSlowConsumer = errors.New("engineio: slow consumer: send buffer full")
)

// Handler receives what happens to one session. Its calls for one session
// never overlap and come in order: every OnMessage, then OnClose once.
// OnMessage runs on the goroutine that read the message (a long-polling
// POST's, or the WebSocket's reader) and delays the session's next
// messages while it runs; OnClose runs on a goroutine of its own (once
// the Server has closed, on the goroutine that closed the session).
type Handler interface {
	// OnMessage receives a message packet's data, which the handler may
	// keep: it is not reused.
	OnMessage(s *Session, data []byte, binary bool)
	// OnClose is called once, when the session has closed, with one of
	// the Reason constants.
	OnClose(s *Session, reason string)
}

// Transports of a session.
const (
	transportPolling uint8 = iota
	transportWebSocket
)

// Session states.
const (
	stateOpen    uint8 = iota
	stateClosing       // Close was called: flushing, then closing
	stateClosed
)

// Session is one Engine.IO connection of a client, over long-polling or
// WebSocket, which it may upgrade from the one to the other. Its methods
// are safe for concurrent use.
type Session struct {
	srv     *Server
	id      string
	handler Handler

	// The handshake request's, kept for the layers above.
	header     http.Header
	remoteAddr string
	rawQuery   string
	secure     bool

	deliverMu sync.Mutex // orders the handler's calls

	mu        sync.Mutex
	state     uint8
	transport uint8
	queue     []*Message // waiting to be written
	queued    int64      // their size
	inflight  int64      // the size of the poll answers being written

	// Long-polling.
	waiting     *pollWait                // the parked GET, not yet answered
	posting     *http.ResponseController // the POST whose body is being read
	handling    bool                     // a POST's packets are being handled
	closeOnPoll bool                     // a graceful close waits for the next GET
	closeTimer  timers.Timer

	// WebSocket.
	ws      *wsConn // the session's WebSocket, once on it
	writing bool    // a writer goroutine is flushing queue to ws

	// Upgrade from long-polling to WebSocket.
	probe        *wsConn // the WebSocket being upgraded to
	probed       bool    // it answered the probe
	upgradeTimer timers.Timer
	probeTimer   timers.Timer // the noop to a poll during the upgrade

	// Heartbeat (see heartbeat.go).
	heartbeat    timers.Timer
	awaitingPong bool
	refreshed    bool
}

// ID returns the session id (the sid of the handshake).
func (s *Session) ID() string { return s.id }

// Header returns the headers of the request that opened the session.
// The caller must not modify them.
func (s *Session) Header() http.Header { return s.header }

// RemoteAddr returns the network address of the client that opened the
// session, as http.Request.RemoteAddr.
func (s *Session) RemoteAddr() string { return s.remoteAddr }

// Query returns the query parameters of the request that opened the
// session, parsed anew at each call.
func (s *Session) Query() url.Values {
	q, _ := url.ParseQuery(s.rawQuery)
	return q
}

// Secure reports whether the session was opened over TLS.
func (s *Session) Secure() bool { return s.secure }

// Transport returns the session's current transport, Polling or WebSocket.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transportName()
}

func (s *Session) transportName() string {
	if s.transport == transportWebSocket {
		return WebSocket
	}
	return Polling
}

// Writes returns how many writes the session's WebSocket has made (a
// batch of queued packets is one), 0 before an upgrade: a measure of how
// well writes are batched.
func (s *Session) Writes() uint64 {
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	if ws == nil {
		return 0
	}
	return ws.writes.Load()
}

// Send queues msgs for the client, in order, and returns without waiting
// for the network. It fails with ErrClosed once the session is closing, and
// with ErrSlowConsumer, having closed the session, when the packets waiting
// would pass Config.MaxBufferedBytes.
func (s *Session) Send(msgs ...*Message) error {
	s.mu.Lock()
	if s.state != stateOpen {
		s.mu.Unlock()
		return ErrClosed
	}
	for _, m := range msgs {
		s.queue = append(s.queue, m)
		s.queued += int64(m.size())
	}
	if s.queued+s.inflight > s.srv.cfg.MaxBufferedBytes {
		ws := s.ws
		s.mu.Unlock()
		s.srv.slow.Add(1)
		s.srv.log.Debug("engineio: slow consumer closed", "sid", s.id, "buffered", s.srv.cfg.MaxBufferedBytes)
		s.closeNow(ReasonTransportError)
		if ws != nil {
			ws.abandon() // its writer may be blocked on the client until its deadline
		}
		return ErrSlowConsumer
	}
	s.flushLocked()
	s.mu.Unlock()
	return nil
}

// enqueueLocked queues a control packet; s.mu is held.
func (s *Session) enqueueLocked(m *Message) {
	s.queue = append(s.queue, m)
	s.queued += int64(m.size())
	s.flushLocked()
}

// flushLocked hands the queue to the current transport if it can take it:
// the parked poll, or the WebSocket's writer. s.mu is held.
func (s *Session) flushLocked() {
	if len(s.queue) == 0 {
		return
	}
	switch s.transport {
	case transportPolling:
		if s.waiting != nil {
			s.answerLocked(s.waiting)
		}
	case transportWebSocket:
		s.startWriterLocked()
	}
}

// takeLocked empties the queue and returns what it held.
func (s *Session) takeLocked() []*Message {
	q := s.queue
	s.queue = nil
	s.queued = 0
	return q
}

// Close closes the session gracefully, as Node's socket.close(): the
// packets already queued are written first, then the transport closes (a
// WebSocket with a close frame; a long-polling session with the close
// packet, to the poll parked now or to the next one, which must come
// within 30 s); the client sees "transport close" and may reconnect.
// OnClose gets ReasonForcedClose. Close does not wait.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateOpen {
		return
	}
	s.state = stateClosing
	s.srv.timers.Stop(&s.heartbeat)
	switch {
	case s.transport == transportWebSocket:
		s.startWriterLocked() // closes the WebSocket once the queue is written
	case s.waiting != nil:
		pw := s.waiting
		pw.close = true
		s.answerLocked(pw, closePacket)
	default:
		s.closeOnPoll = true
		s.srv.timers.Schedule(&s.closeTimer, pollCloseTimeout, func() { s.closeNow(ReasonForcedClose) })
	}
}

// closeNow closes the session at once with reason: what is queued is
// dropped, a parked poll gets the close packet (the noop when the client
// closed), a WebSocket gets a close frame.
func (s *Session) closeNow(reason string) {
	s.mu.Lock()
	if s.state == stateClosed {
		s.mu.Unlock()
		return
	}
	s.state = stateClosed
	s.srv.timers.Stop(&s.heartbeat)
	s.srv.timers.Stop(&s.closeTimer)
	s.srv.timers.Stop(&s.upgradeTimer)
	s.srv.timers.Stop(&s.probeTimer)
	s.queue, s.queued = nil, 0
	if pw := s.waiting; pw != nil {
		s.queue, s.queued = nil, 0
		if reason == ReasonTransportClose {
			s.answerLocked(pw, noopPacket) // the client's own close packet (Node)
		} else {
			s.answerLocked(pw, closePacket)
		}
	}
	if rc := s.posting; rc != nil {
		_ = rc.SetReadDeadline(aLongTimeAgo) // cut the body being read
	}
	if p := s.probe; p != nil {
		s.probe = nil
		p.abandon()
	}
	if s.ws != nil {
		s.startWriterLocked() // writes the close frame after what is in flight
	}
	s.mu.Unlock()
	s.srv.remove(s)
	notify := func() {
		s.deliverMu.Lock()
		defer s.deliverMu.Unlock()
		s.handler.OnClose(s, reason)
	}
	if !s.srv.goroutine(notify) {
		notify()
	}
}

// deliver hands a received packet to the session: heartbeats are handled
// here, messages go to the handler. It reports false once the session is
// closed.
func (s *Session) deliver(p packet) bool {
	s.deliverMu.Lock()
	s.mu.Lock()
	if s.state != stateOpen { // closing: Node ignores what comes
		s.mu.Unlock()
		s.deliverMu.Unlock()
		return false
	}
	if p.typ == typePing {
		s.mu.Unlock()
		s.deliverMu.Unlock()
		s.closeNow(ReasonTransportError) // "invalid heartbeat direction"
		return false
	}
	s.onPacketLocked(p.typ)
	s.mu.Unlock()
	if p.typ == typeMessage {
		s.handler.OnMessage(s, p.data, p.binary)
	}
	s.deliverMu.Unlock()
	return true
}
