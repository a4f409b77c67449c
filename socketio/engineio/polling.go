package engineio

import (
	"cmp"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Long-polling: the client keeps one GET parked, which the server answers
// when it has packets (or a ping) for it, and POSTs what it sends. As in
// Node's engine.io, a second GET or POST while one is in progress is an
// "overlap": it gets 400 and the session closes. Unlike Node, whose single
// thread clears the parked GET before it reads the next request, herald
// lets go of a GET as soon as it takes the packets to write, before the
// response leaves: a client that polls again the moment it has read a
// response is never taken for an overlap.

// aLongTimeAgo is a deadline in the past, to cut a read at once.
var aLongTimeAgo = time.Unix(1, 0)

// probeNoopDelay is how long a poll that comes during an upgrade waits for
// its noop (Node checks every 100 ms).
const probeNoopDelay = 100 * time.Millisecond

// pollWait is a parked GET; answerLocked gives it what to write.
type pollWait struct {
	ch     chan struct{}
	msgs   []*Message
	close  bool // the payload ends a graceful close: the session closes once it is written
	reject bool // the session upgraded meanwhile: answer 400, as a poll that came after
}

// answerLocked hands the queue, then extra, to the parked GET pw and wakes
// it. s.mu is held.
func (s *Session) answerLocked(pw *pollWait, extra ...*Message) {
	pw.msgs = append(s.takeLocked(), extra...)
	s.waiting = nil
	close(pw.ch)
}

// handshakePolling opens a long-polling session: the handshake GET is its
// first poll, answered with the open packet.
func (s *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	sess := s.newSession(r, transportPolling)
	if sess == nil {
		abortRequest(w, errForbidden)
		return
	}
	sess.poll(w, r)
}

// poll serves a GET of a long-polling session.
func (s *Session) poll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	switch {
	case s.state == stateClosed:
		s.mu.Unlock()
		abortRequest(w, errUnknownSID) // closed since the lookup
		return
	case s.transport != transportPolling:
		s.mu.Unlock()
		abortRequest(w, errBadRequest)
		return
	case s.waiting != nil:
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest) // as Node: no body
		s.srv.log.Debug("engineio: overlapping poll", "sid", s.id)
		s.closeNow(ReasonTransportError)
		return
	}
	pw := &pollWait{ch: make(chan struct{})}
	s.waiting = pw
	switch {
	case s.closeOnPoll && len(s.queue) == 0:
		pw.close = true
		s.answerLocked(pw, noopPacket, closePacket) // as Node
	case len(s.queue) > 0:
		s.answerLocked(pw)
	case s.probed:
		// An upgrade is under way: the noop comes after a moment, as
		// Node's 100 ms check sends it, so that a poll racing the
		// client's upgrade packet is answered as coming after it.
		s.srv.timers.Schedule(&s.probeTimer, probeNoopDelay, func() {
			s.mu.Lock()
			if s.waiting == pw {
				s.answerLocked(pw, noopPacket)
			}
			s.mu.Unlock()
		})
	}
	s.mu.Unlock()
	select {
	case <-pw.ch:
	case <-r.Context().Done():
		s.mu.Lock()
		if s.waiting == pw {
			s.waiting = nil
			s.mu.Unlock()
			s.closeNow(ReasonTransportError) // "poll connection closed prematurely"
			return
		}
		s.mu.Unlock() // answered meanwhile: write it anyway
	}
	if pw.reject {
		abortRequest(w, errBadRequest)
		return
	}
	// What is written counts against MaxBufferedBytes until it has left,
	// and must leave in time: a client that polls without reading the
	// answers cannot pile them up.
	size := int64(payloadSize(pw.msgs))
	s.mu.Lock()
	s.inflight += size
	s.mu.Unlock()
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.srv.cfg.PingInterval + s.srv.cfg.PingTimeout))
	err := s.writePayload(w, r, pw.msgs)
	s.mu.Lock()
	s.inflight -= size
	s.mu.Unlock()
	if err != nil {
		s.closeNow(ReasonTransportError)
		return
	}
	if pw.close {
		s.closeNow(ReasonForcedClose)
	}
}

// writePayload writes msgs as a long-polling response, compressed as
// Node's httpCompression does when the client accepts it.
func (s *Session) writePayload(w http.ResponseWriter, r *http.Request, msgs []*Message) error {
	body := appendPayload(make([]byte, 0, payloadSize(msgs)), msgs)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	if t := s.srv.cfg.CompressionThreshold; t > 0 && len(body) >= t {
		if enc := acceptedEncoding(strings.Join(r.Header.Values("Accept-Encoding"), ",")); enc != "" {
			h.Set("Content-Encoding", enc)
			w.WriteHeader(http.StatusOK)
			return compress(w, enc, body)
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

// acceptedEncoding returns the encoding that Node's engine.io picks for the
// Accept-Encoding header value v, "gzip", "deflate" or "" (accepts'
// encodings(["gzip", "deflate"]), which is negotiator 0.6's): each encoding
// takes the entry that names it, or else "*" (the later of equals); the
// best quality wins, then a named entry over "*", then the entry earlier
// in the header, then gzip. Quality 0 refuses.
func acceptedEncoding(v string) string {
	type entry struct {
		name string
		q    float64
		o    int // position in the header
	}
	var entries []entry
	for o, part := range strings.Split(v, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if k, val, _ := strings.Cut(strings.TrimSpace(p), "="); k == "q" {
				if q, _ = strconv.ParseFloat(val, 64); math.IsNaN(q) {
					q = 0
				}
				break
			}
		}
		entries = append(entries, entry{name, q, o})
	}
	type priority struct {
		q    float64
		s, o int // s: 1 for a named entry, 0 for "*"
	}
	best, bestP := "", priority{}
	for _, enc := range [...]string{"gzip", "deflate"} {
		p := priority{o: -1}
		for _, e := range entries {
			s := 1
			if !strings.EqualFold(e.name, enc) {
				if e.name != "*" {
					continue
				}
				s = 0
			}
			if cmp.Or(cmp.Compare(p.s, s), cmp.Compare(p.q, e.q), cmp.Compare(p.o, e.o)) < 0 {
				p = priority{e.q, s, e.o}
			}
		}
		if p.q <= 0 {
			continue
		}
		if best == "" || cmp.Or(cmp.Compare(p.q, bestP.q), cmp.Compare(p.s, bestP.s), cmp.Compare(bestP.o, p.o)) > 0 {
			best, bestP = enc, p
		}
	}
	return best
}

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(io.Discard) }}
	zlibWriters = sync.Pool{New: func() any { return zlib.NewWriter(io.Discard) }}
)

// compress writes body to w with the encoding enc.
func compress(w io.Writer, enc string, body []byte) error {
	if enc == "gzip" {
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(w)
		_, err := zw.Write(body)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		zw.Reset(io.Discard)
		gzipWriters.Put(zw)
		return err
	}
	// deflate is the zlib format (RFC 1950), as Node's createDeflate.
	zw := zlibWriters.Get().(*zlib.Writer)
	zw.Reset(w)
	_, err := zw.Write(body)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	zw.Reset(io.Discard)
	zlibWriters.Put(zw)
	return err
}

// post serves a POST of a long-polling session: its body is a payload of
// packets, each handed to the session in order as it is decoded.
func (s *Session) post(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		w.WriteHeader(http.StatusBadRequest) // binary payloads are for protocol v3
		s.closeNow(ReasonTransportError)
		return
	}
	max := s.srv.cfg.MaxPayload
	if r.ContentLength > max {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		s.closeNow(ReasonTransportError)
		return
	}
	rc := http.NewResponseController(w)
	s.mu.Lock()
	switch {
	case s.state == stateClosed:
		s.mu.Unlock()
		abortRequest(w, errUnknownSID)
		return
	case s.transport != transportPolling:
		s.mu.Unlock()
		abortRequest(w, errBadRequest)
		return
	case s.posting != nil || s.handling:
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		s.srv.log.Debug("engineio: overlapping POST", "sid", s.id)
		s.closeNow(ReasonTransportError) // "data request overlap from client"
		return
	}
	// The deadline before the POST is seen: a cut (closeNow, the
	// upgrade) must not be overwritten.
	_ = rc.SetReadDeadline(time.Now().Add(s.srv.cfg.PollBodyTimeout))
	s.posting = rc
	s.mu.Unlock()
	body, err := readBody(r.Body, r.ContentLength, max)
	s.mu.Lock()
	s.posting = nil
	upgraded := s.transport != transportPolling
	// The POST stays in progress until its packets are handled, as in
	// Node, whose POSTs are handled in one go: a second one meanwhile is
	// an overlap.
	s.handling = err == nil
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.handling = false
		s.mu.Unlock()
	}()
	switch {
	case errors.Is(err, errTooLarge):
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		s.closeNow(ReasonTransportError)
		return
	case err != nil:
		// Cut by PollBodyTimeout, by the session's close, or the
		// client went away: "data request connection closed
		// prematurely". Cut by the upgrade, it is the old transport's
		// and the session goes on (Node has detached it).
		if !upgraded {
			s.closeNow(ReasonTransportError)
		}
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if !utf8.Valid(body) {
		body = toValidUTF8(body) // Node reads the body as UTF-8 text
	}
	if !s.receivePayload(body) {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html") // as Node (GH-43 of engine.io)
	h.Set("Content-Length", "2")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

var errTooLarge = errors.New("engineio: body larger than MaxPayload")

// readBody reads a request body of at most max bytes; n is its announced
// length (-1 if unknown), which sizes the buffer.
func readBody(body io.Reader, n, max int64) ([]byte, error) {
	size := int64(512)
	if n >= 0 {
		size = n + 1 // room to see a body longer than announced
	}
	buf := make([]byte, 0, min(size, max+1))
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > max {
				return nil, errTooLarge
			}
			buf = append(buf, 0)[:len(buf)] // grow
		}
		m, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if int64(len(buf)) > max {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// receivePayload decodes a POST's payload packet by packet and hands each
// to the session. It reports false when the POST must answer 400: more
// packets than Config.MaxPayloadPackets. A packet that does not decode
// closes the session ("parse error") and the POST still answers "ok", as
// in Node.
func (s *Session) receivePayload(body []byte) bool {
	r := payloadReader{rest: body}
	for n := 0; ; n++ {
		p, ok, err := r.next()
		if err != nil {
			s.closeNow(ReasonParseError)
			return true
		}
		if !ok {
			return true
		}
		if n == s.srv.cfg.MaxPayloadPackets {
			s.srv.log.Debug("engineio: too many packets in a payload", "sid", s.id)
			s.closeNow(ReasonTransportError)
			return false
		}
		if p.typ == typeClose {
			s.closeByClient()
			return true
		}
		if !s.deliver(p) {
			return true // closed: the rest is dropped
		}
	}
}

// closeByClient handles the client's close packet: a parked poll is
// answered with a noop, as Node does.
func (s *Session) closeByClient() {
	s.closeNow(ReasonTransportClose)
}
