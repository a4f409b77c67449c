package engineio

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// WebSocket transport. gorilla/websocket does the handshake and reads
// frames (masking, fragments, control frames, the size limit, compression);
// herald writes: frames are built once per Message (see packet.go) and a
// batch of them leaves in one writev from a writer goroutine that exists
// only while something is queued. gorilla's own control frames (pong,
// close) are single writes too, so they can only land between two frames.
// With PerMessageDeflate the writer goes through gorilla, which compresses.
//
// Once the handshake is done, the request's goroutine returns, so that
// net/http lets go of its buffers. On Linux, a plain TCP connection is then
// watched by the Server's poller (poller_linux.go): while it is idle, no
// goroutine runs for it and no goroutine stack is kept for it; when data
// arrives, a goroutine reads what there is and returns. Elsewhere, and for
// connections the poller cannot watch (TLS), a goroutine of the
// connection's own reads it until it closes.

// closeWait bounds how long a closing WebSocket waits for the client's
// close frame before the connection is dropped.
const closeWait = time.Second

// wsConn is one WebSocket connection.
type wsConn struct {
	srv      *Server
	c        *websocket.Conn
	nc       net.Conn      // the TCP connection, written with writev
	br       *bufio.Reader // what gorilla reads through
	compress bool
	held     []byte    // the handshake's response, written with the first frames
	once     sync.Once // the close frame
	writes   atomic.Uint64

	readMu sync.Mutex // held by the goroutine reading, on the poller

	// The poller's registration; fd is used only under fdMu, and never
	// once dead (the descriptor may belong to another connection then).
	fdMu sync.Mutex
	fd   int
	key  uint64 // 0: not on the poller
	dead bool
}

// wsReadBuffer is the size of the buffer a WebSocket is read through
// (gorilla takes a hijacked reader of more than 256 bytes as its own).
const wsReadBuffer = 512

// accept completes a WebSocket handshake. With hold, the 101 response is
// not written at once but kept in held, to leave with the first frames
// (a new session's open packet) in one write.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, hold bool) *wsConn {
	hj, ok := w.(http.Hijacker)
	if !ok {
		abortUpgrade(w, errBadRequest)
		return nil
	}
	hw := &hijacker{ResponseWriter: w, hj: hj, conn: &holdConn{holding: hold}}
	c, err := s.upgrader.Upgrade(hw, r, nil)
	if err != nil {
		return nil // the upgrader answered the request
	}
	c.SetReadLimit(s.cfg.MaxPayload)
	ws := &wsConn{
		srv: s, c: c, nc: hw.conn.Conn, br: hw.br,
		compress: s.cfg.PerMessageDeflate, held: hw.conn.release(),
	}
	return ws
}

// hijacker is the ResponseWriter gorilla upgrades through: the connection
// it hijacks holds its first writes (gorilla's 101 response) when asked,
// and is read through a small buffer of herald's, which the poller needs
// to see. The hijacker, and net/http's response with it, is garbage once
// the handshake is done.
type hijacker struct {
	http.ResponseWriter
	hj   http.Hijacker
	conn *holdConn
	br   *bufio.Reader
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := h.hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn.Conn = nc
	if brw.Reader.Buffered() > 0 {
		// The client sent data before the handshake's answer: gorilla
		// refuses that, and must see it.
		h.br = brw.Reader
		return h.conn, brw, nil
	}
	h.br = bufio.NewReaderSize(h.conn, wsReadBuffer)
	brw.Writer.Reset(h.conn)
	return h.conn, bufio.NewReadWriter(h.br, brw.Writer), nil
}

// holdConn keeps what is written to it while holding. Only gorilla's
// handshake writes while it holds, on the request's goroutine.
type holdConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	held    []byte
}

func (c *holdConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.holding {
		c.held = append(c.held, b...)
		c.mu.Unlock()
		return len(b), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// release stops holding and returns what was held.
func (c *holdConn) release() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	held := c.held
	c.held = nil
	return held
}

// startReading hands ws to the poller, or to a reader goroutine.
func (s *Server) startReading(sess *Session, ws *wsConn) {
	ws.c.SetPingHandler(func(data string) error { return sess.pong(ws, data) })
	if s.poller != nil {
		ws.fdMu.Lock()
		if ws.dead {
			// Closed already (a failed first write, a closed session):
			// its descriptor may be another connection's by now.
			ws.fdMu.Unlock()
			return
		}
		if fd, err := fdOf(ws.nc); err == nil {
			key, err := s.poller.reserve(func() { sess.readReady(ws) })
			if err == nil {
				ws.fd, ws.key = fd, key
				if err = s.poller.add(fd, key); err != nil {
					ws.key = 0
				}
			}
			if err == nil {
				ws.fdMu.Unlock()
				return
			}
		}
		ws.fdMu.Unlock()
	}
	if !s.goroutine(func() { sess.read(ws) }) {
		ws.kill()
	}
}

// handshakeWebSocket opens a session whose first transport is a WebSocket.
func (s *Server) handshakeWebSocket(w http.ResponseWriter, r *http.Request) {
	ws := s.accept(w, r, !s.cfg.PerMessageDeflate)
	if ws == nil {
		return
	}
	sess := s.newSession(r, transportWebSocket)
	if sess == nil { // the Server has closed
		if ws.held != nil {
			_ = ws.write(nil, time.Now().Add(closeWait)) // the 101 response first
		}
		ws.close(0)
		return
	}
	sess.mu.Lock()
	sess.ws = ws
	sess.startWriterLocked() // the open packet
	sess.mu.Unlock()
	s.startReading(sess, ws)
}

// write writes msgs to the connection, with a deadline: a client that
// does not read is caught by MaxBufferedBytes, or by the deadline.
func (ws *wsConn) write(msgs []*Message, deadline time.Time) error {
	ws.writes.Add(1)
	if ws.compress {
		_ = ws.c.SetWriteDeadline(deadline)
		for _, m := range msgs {
			if m.control {
				if err := ws.c.WriteControl(websocket.PongMessage, m.payload(), deadline); err != nil {
					return err
				}
				continue
			}
			op := websocket.TextMessage
			if m.binary {
				op = websocket.BinaryMessage
			}
			ws.c.EnableWriteCompression(len(m.payload()) >= 1024)
			if err := ws.c.WriteMessage(op, m.payload()); err != nil {
				return err
			}
		}
		return nil
	}
	_ = ws.nc.SetWriteDeadline(deadline)
	if len(msgs) == 1 && ws.held == nil {
		_, err := ws.nc.Write(msgs[0].frame())
		return err
	}
	bufs := make(net.Buffers, 0, len(msgs)+1)
	if ws.held != nil {
		bufs = append(bufs, ws.held)
		ws.held = nil
	}
	for _, m := range msgs {
		bufs = append(bufs, m.frame())
	}
	_, err := bufs.WriteTo(ws.nc)
	return err
}

// close sends a close frame with code (0: none, as Node's ws sends) and
// drops the connection when the client answers it (its close frame is
// read like any message), or after closeWait. It is idempotent.
func (ws *wsConn) close(code int) {
	ws.once.Do(func() {
		payload := []byte{}
		if code != 0 {
			payload = websocket.FormatCloseMessage(code, "")
		}
		if err := ws.c.WriteControl(websocket.CloseMessage, payload, time.Now().Add(closeWait)); err != nil {
			ws.kill()
			return
		}
		time.AfterFunc(closeWait, ws.kill)
	})
}

// closeLater is close on a goroutine of its own, for callers that hold a
// lock or run on the timer heap: the close frame's write may wait.
func (ws *wsConn) closeLater(code int) {
	if !ws.srv.goroutine(func() { ws.close(code) }) {
		ws.kill()
	}
}

// pong answers a client's WebSocket ping. On the session's WebSocket it is
// queued, so that herald's writer alone writes data frames there (and
// gorilla never shortens the writer's deadline); on an upgrade under way,
// whose WebSocket nothing else writes to yet, gorilla writes it.
func (s *Session) pong(ws *wsConn, data string) error {
	s.mu.Lock()
	if s.ws == ws && s.state == stateOpen {
		s.enqueueLocked(newControlFrame(0x8a, data))
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	err := ws.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(closeWait))
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	return err
}

// abandon drops the connection without a close frame: a write may be
// blocked on it.
func (ws *wsConn) abandon() {
	ws.once.Do(func() {})
	ws.kill()
}

// kill takes the connection off the poller and closes it. Idempotent.
func (ws *wsConn) kill() {
	ws.fdMu.Lock()
	defer ws.fdMu.Unlock()
	if ws.dead {
		return
	}
	ws.dead = true
	if ws.key != 0 {
		ws.srv.poller.remove(ws.fd, ws.key)
	}
	_ = ws.nc.Close()
}

// rearm has the poller watch the connection again; false when it is dead.
func (ws *wsConn) rearm() bool {
	ws.fdMu.Lock()
	defer ws.fdMu.Unlock()
	if ws.dead {
		return false
	}
	if err := ws.srv.poller.rearm(ws.fd, ws.key); err != nil {
		ws.dead = true
		ws.srv.poller.remove(ws.fd, ws.key)
		_ = ws.nc.Close()
		return false
	}
	return true
}

// startWriterLocked starts the writer unless it runs. s.mu is held.
func (s *Session) startWriterLocked() {
	if s.writing || s.ws == nil {
		return
	}
	s.writing = true
	if !s.srv.run(s.writeLoop) {
		s.writing = false
	}
}

// writeLoop writes the queue to the WebSocket until it is empty; then, if
// the session is closing or closed, it closes the WebSocket.
func (s *Session) writeLoop() {
	for {
		s.mu.Lock()
		ws := s.ws
		msgs := s.takeLocked()
		if len(msgs) == 0 {
			s.writing = false
			state := s.state
			s.mu.Unlock()
			if state != stateOpen {
				if ws.held != nil { // closed before its first write
					_ = ws.write(nil, time.Now().Add(closeWait)) // the 101 response first
				}
				if state == stateClosing {
					// Before the close frame: the client's answer to
					// it must not close the session first.
					s.closeNow(ReasonForcedClose)
				}
				ws.close(0)
			}
			return
		}
		s.mu.Unlock()
		if err := ws.write(msgs, time.Now().Add(s.srv.cfg.PingInterval+s.srv.cfg.PingTimeout)); err != nil {
			s.srv.log.Debug("engineio: write failed", "sid", s.id, "err", err)
			ws.abandon()
			s.mu.Lock()
			s.writing = false
			s.mu.Unlock()
			s.closeNow(ReasonTransportError)
			return
		}
	}
}

// read reads the session's WebSocket until it closes, on a goroutine of
// its own (when the poller cannot watch the connection); ws may be an
// upgrade under way (see upgrade.go).
func (s *Session) read(ws *wsConn) {
	defer ws.kill()
	for s.readOne(ws) {
	}
}

// readReady reads what has arrived on ws, when the poller saw it readable,
// then has the poller watch it again.
func (s *Session) readReady(ws *wsConn) {
	// One-shot registration keeps readers of ws apart; the lock tells the
	// race detector, which does not see the kernel's ordering.
	ws.readMu.Lock()
	defer ws.readMu.Unlock()
	for {
		if !s.readOne(ws) {
			ws.kill()
			return
		}
		if ws.br.Buffered() == 0 {
			break
		}
	}
	ws.rearm()
}

// readOne reads one message of ws and handles it; false when the
// connection is done.
func (s *Session) readOne(ws *wsConn) bool {
	op, data, err := ws.c.ReadMessage()
	if err != nil {
		s.wsClosed(ws, err)
		return false
	}
	if op == websocket.TextMessage && !utf8.Valid(data) {
		ws.close(websocket.CloseInvalidFramePayloadData) // 1007, as RFC 6455 and Node's ws
		s.wsClosed(ws, errInvalidUTF8)
		return false
	}
	var p packet
	if op == websocket.BinaryMessage {
		p = packet{typ: typeMessage, data: data, binary: true}
	} else if p, err = decodeText(data, true); err != nil {
		s.wsParseError(ws)
		return false
	}
	s.onWebSocketPacket(ws, p)
	return true
}

var errInvalidUTF8 = errors.New("engineio: text frame is not UTF-8")

// wsClosed handles the end of a WebSocket: the session closes if it was
// its transport; an upgrade under way is abandoned.
func (s *Session) wsClosed(ws *wsConn, err error) {
	s.mu.Lock()
	current := s.ws == ws
	if s.probe == ws {
		s.abandonUpgradeLocked()
	}
	s.mu.Unlock()
	if !current {
		return
	}
	reason := ReasonTransportClose
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce):
	case errors.Is(err, errInvalidUTF8), errors.Is(err, websocket.ErrReadLimit):
		reason = ReasonTransportError
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			reason = ReasonTransportError
		}
	}
	s.closeNow(reason)
}

// wsParseError handles a text message that is not an Engine.IO packet.
func (s *Session) wsParseError(ws *wsConn) {
	s.mu.Lock()
	current := s.ws == ws
	if s.probe == ws {
		s.abandonUpgradeLocked()
	}
	s.mu.Unlock()
	ws.close(0)
	if current {
		s.closeNow(ReasonParseError)
	}
}
