package socketio

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"sync"
	"time"
)

// Upstream gap (servers/engine v3.0.5, polling.DoClose): when the server
// closes a long-polling session, the CLOSE packet is queued on a write queue
// that DoClose has just shut down, so it is dropped and the client's pending
// GET hangs until the heartbeat times out (45 s by default) instead of
// seeing "transport close" and reconnecting at once; when no poll is
// parked, the close waits for the next poll and then hangs it for 30 s. So
// herald closes a polling session only while a poll is parked (after
// upstream has flushed what is buffered into earlier polls), keeps a handle
// on every parked poll, and answers it with the Engine.IO close packet "1".

// pendingPolls tracks the long-poll GET requests in flight, by Engine.IO sid.
type pendingPolls struct {
	mu    sync.Mutex
	polls map[string]map[*pollWriter]struct{}
}

func (p *pendingPolls) add(sid string, pw *pollWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.polls == nil {
		p.polls = make(map[string]map[*pollWriter]struct{})
	}
	set := p.polls[sid]
	if set == nil {
		set = make(map[*pollWriter]struct{}, 1)
		p.polls[sid] = set
	}
	set[pw] = struct{}{}
}

func (p *pendingPolls) remove(sid string, pw *pollWriter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.polls[sid], pw)
	if len(p.polls[sid]) == 0 {
		delete(p.polls, sid)
	}
}

// close answers every pending poll of sid with the close packet.
func (p *pendingPolls) close(sid string) { p.closeWith(sid, closePayload) }

// closeWith answers every pending poll of sid with payload, which ends with
// the close packet.
func (p *pendingPolls) closeWith(sid string, payload string) {
	p.mu.Lock()
	var pws []*pollWriter
	for pw := range p.polls[sid] {
		pws = append(pws, pw)
	}
	p.mu.Unlock()
	for _, pw := range pws {
		pw.closeSession(payload)
	}
}

// The payloads that answer a poll of a closed session: the close packet,
// or, for a close that waited for the poll, a noop and the close packet
// (what the reference server sends then).
const (
	closePayload          = "1"
	closeAfterNoopPayload = "6\x1e1"
)

// pollWriter is the ResponseWriter upstream gets for a polling request. For
// a long-poll GET, the first of upstream and herald to write owns the
// response; the other's writes are dropped.
type pollWriter struct {
	w      http.ResponseWriter
	cancel context.CancelFunc // ends upstream's wait on the request

	mu       sync.Mutex
	header   http.Header // upstream's headers, copied on its first write
	owner    int         // 0 nobody yet, 1 upstream, 2 herald
	finished bool        // the handler returned; later writes are dropped

	// hold keeps a handshake's response until the handler returns, when
	// the Socket.IO layer listens to the new connection (see gate.go).
	hold     bool
	heldCode int
	held     bytes.Buffer

	// taken is closed once upstream has taken the poll (its transport
	// emitted "ready"), done when the handler returns.
	taken, done         chan struct{}
	takenOnce, doneOnce sync.Once
}

func newPollWriter(w http.ResponseWriter, cancel context.CancelFunc) *pollWriter {
	return &pollWriter{w: w, cancel: cancel, header: make(http.Header), taken: make(chan struct{}), done: make(chan struct{})}
}

// takeTimeout bounds the wait for upstream to take a poll before herald
// cancels it anyway.
const takeTimeout = 5 * time.Second

// markTaken records that upstream has taken the poll: setting up a poll,
// upstream writes the request context's Cleanup without synchronization and
// then emits "ready" on the transport, while the context's watcher reads
// Cleanup when the context is cancelled. Cancelling before then is a data
// race in upstream (servers/engine v3.0.5); cancelWhenTaken waits for it.
func (pw *pollWriter) markTaken() { pw.takenOnce.Do(func() { close(pw.taken) }) }

// cancelWhenTaken cancels upstream's context of the poll once upstream has
// taken it, or at once if the handler returned, or after takeTimeout.
func (pw *pollWriter) cancelWhenTaken() {
	t := time.NewTimer(takeTimeout)
	defer t.Stop()
	select {
	case <-pw.taken:
	case <-pw.done:
		return
	case <-t.C:
	}
	pw.cancel()
}

// markTaken marks sid's polls in flight as taken by upstream (see
// pollWriter.markTaken). One poll at most is in flight per session (see
// guardPoll); one already answered is marked too, harmlessly.
func (p *pendingPolls) markTaken(sid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pw := range p.polls[sid] {
		pw.markTaken()
	}
}

func (pw *pollWriter) Header() http.Header { return pw.header }

// finish marks the end of the handler. Upstream (v3.0.5) may still be
// writing when its handler returns, if the request's context ended first (a
// client that went away); finish waits for such a write and drops later
// ones, so the HTTP server never reuses the connection's buffers under an
// upstream write.
func (pw *pollWriter) finish() {
	defer pw.doneOnce.Do(func() { close(pw.done) })
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.hold && pw.owner == 1 && !pw.finished {
		if pw.heldCode != 0 {
			pw.w.WriteHeader(pw.heldCode)
		}
		_, _ = pw.w.Write(pw.held.Bytes())
	}
	pw.finished = true
}

// claim makes upstream the owner unless herald already is or the handler
// has returned.
func (pw *pollWriter) claim() bool {
	if pw.finished {
		return false
	}
	if pw.owner == 0 {
		pw.owner = 1
		dst := pw.w.Header()
		for k, v := range pw.header {
			dst[k] = v
		}
	}
	return pw.owner == 1
}

func (pw *pollWriter) WriteHeader(code int) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.claim() {
		if pw.hold {
			pw.heldCode = code
			return
		}
		pw.w.WriteHeader(code)
	}
}

func (pw *pollWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if !pw.claim() {
		return len(b), nil
	}
	if pw.hold {
		return pw.held.Write(b)
	}
	return pw.w.Write(b)
}

func (pw *pollWriter) Flush() {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.owner == 1 && !pw.finished && !pw.hold {
		if f, ok := pw.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

// closeSession answers the poll with the close packet if upstream has not
// answered it, then releases upstream's handler.
func (pw *pollWriter) closeSession(payload string) {
	pw.mu.Lock()
	owned := pw.owner == 0 && !pw.finished
	if owned {
		pw.owner = 2
		h := pw.w.Header()
		h.Set("Content-Type", "text/plain; charset=UTF-8")
		h.Set("Cache-Control", "no-store")
		pw.w.WriteHeader(http.StatusOK)
		_, _ = pw.w.Write([]byte(payload))
	}
	pw.mu.Unlock()
	if owned {
		// Only now may the handler return: had upstream begun answering,
		// releasing it would let the HTTP server reuse the connection's
		// buffers while upstream still writes. And only once upstream has
		// taken the poll (see markTaken).
		go pw.cancelWhenTaken()
	}
}

// Upstream gaps on long-polling requests of an open session (servers/engine
// v3.0.5), which the reference server handles by closing the session:
//   - a second GET while one is parked hangs both (Node answers 400 and
//     closes the session, whose parked GET gets the close packet);
//   - a POST whose payload is not Engine.IO packets ("abc") is answered
//     "ok" and ignored;
//   - a POST larger than maxHttpBufferSize leaves the session open.
//
// guardPoll checks a request before upstream sees it; it answers the
// request and closes the session itself, and reports false, when the
// request must not go further.
func (s *Server) guardPoll(w http.ResponseWriter, r *http.Request, sid string) bool {
	conn, ok := s.io.Engine().Clients().Load(sid)
	if !ok || conn.Transport() == nil || conn.Transport().Name() != TransportPolling {
		return true // upstream answers unknown or upgraded sessions itself
	}
	switch r.Method {
	case http.MethodGet:
		if !s.polls.parked(sid) {
			return true
		}
		s.log.Debug("overlapping polls: closing the session", "sid", sid)
		s.closeEngine(conn)
		writeEngineError(w, http.StatusBadRequest)
		return false
	case http.MethodPost:
		limit := s.cfg.MaxHTTPBufferSize
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		if err != nil {
			writeEngineError(w, http.StatusBadRequest)
			return false
		}
		if int64(len(body)) > limit {
			s.log.Debug("polling payload too large: closing the session", "sid", sid)
			s.closeEngine(conn)
			writeEngineError(w, http.StatusRequestEntityTooLarge)
			return false
		}
		if !validPayload(body) {
			s.log.Debug("invalid polling payload: closing the session", "sid", sid)
			s.closeEngine(conn)
			writeEngineError(w, http.StatusBadRequest)
			return false
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return true
}

// validPayload reports whether body is Engine.IO v4 packets separated by
// the record separator: each a type digit 0-6 and its data, or "b" and
// base64.
func validPayload(body []byte) bool {
	if len(body) == 0 {
		return false
	}
	for _, p := range bytes.Split(body, []byte{0x1e}) {
		switch {
		case len(p) == 0:
			return false
		case p[0] >= '0' && p[0] <= '6':
		case p[0] == 'b':
			if _, err := base64.StdEncoding.DecodeString(string(p[1:])); err != nil {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// writeEngineError answers as the reference server does.
func writeEngineError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"code":3,"message":"Bad request"}`))
}

// parked reports whether a GET of sid is waiting for data: registered, and
// not answered yet. (A GET whose answer is written may still be registered
// for a moment while its handler returns; the client's next GET is not an
// overlap.)
func (p *pendingPolls) parked(sid string) bool {
	p.mu.Lock()
	pws := make([]*pollWriter, 0, len(p.polls[sid]))
	for pw := range p.polls[sid] {
		pws = append(pws, pw)
	}
	p.mu.Unlock()
	for _, pw := range pws {
		if pw.waiting() {
			return true
		}
	}
	return false
}

// waiting reports whether nobody has answered the request yet.
func (pw *pollWriter) waiting() bool {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.owner == 0 && !pw.finished
}
