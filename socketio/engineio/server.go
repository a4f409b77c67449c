package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/internal/timers"
)

// Server is an Engine.IO v4 server: an http.Handler to mount at the
// protocol's path (socket.io-client's is "/socket.io/"). It serves
// long-polling and WebSocket sessions and upgrades the one to the other,
// answering as Node's engine.io 6.6 does.
//
// Its goroutines: one heap of timers for every session's heartbeat; on
// Linux, one goroutine waiting on epoll for every idle WebSocket, and a
// goroutine per connection only while it has data to read (elsewhere, and
// for TLS connections, a reader goroutine per WebSocket); a writer per
// WebSocket only while frames are queued; long-polling uses the requests'
// goroutines. All methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	timers   *timers.Heap
	poller   *poller // nil where WebSockets are read by goroutines
	upgrader websocket.Upgrader
	polling  bool // transports served
	ws       bool

	mu       sync.RWMutex
	sessions map[string]*Session

	closed  atomic.Bool
	lifeMu  sync.Mutex // guards stopped, running and idle
	stopped bool
	// The goroutines of goroutine (readers, writers, close
	// notifications): a count, not a WaitGroup, since one may start
	// from none while Close waits.
	running int
	idle    chan struct{} // closed when running drops to 0 while Close waits
	slow    atomic.Int64  // sessions closed as slow consumers
	done    chan struct{} // closed by Close
	work    chan func()   // to an idle worker (see run)
	workers atomic.Int32  // workers waiting for work or running it
	once    sync.Once
}

// NewServer validates cfg and returns a Server ready to serve. It starts
// the timer goroutine that Close stops.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		polling:  slices.Contains(cfg.Transports, Polling),
		ws:       slices.Contains(cfg.Transports, WebSocket),
		sessions: make(map[string]*Session),
		done:     make(chan struct{}),
		work:     make(chan func()),
	}
	s.upgrader = websocket.Upgrader{
		// The connection is read through the hijacker's small reader
		// (see accept); larger messages are read straight into their
		// own buffer.
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: cfg.PerMessageDeflate,
		// Origins are the caller's to check (see Config.AllowOrigin).
		CheckOrigin: func(*http.Request) bool { return true },
		Error:       func(w http.ResponseWriter, r *http.Request, status int, reason error) { abortUpgrade(w, errBadRequest) },
	}
	s.timers = timers.New()
	if s.ws {
		if p, err := newPoller(s.run); err == nil {
			s.poller = p
		} else {
			s.log.Debug("engineio: no poller, a goroutine per WebSocket", "err", err)
		}
	}
	return s, nil
}

// Protocol errors, as Node's engine.io numbers and words them.
type protocolError int

const (
	errUnknownTransport protocolError = iota
	errUnknownSID
	errBadHandshakeMethod
	errBadRequest
	errForbidden
	errUnsupportedProtocol
)

var errorMessages = [...]string{
	errUnknownTransport:    "Transport unknown",
	errUnknownSID:          "Session ID unknown",
	errBadHandshakeMethod:  "Bad handshake method",
	errBadRequest:          "Bad request",
	errForbidden:           "Forbidden",
	errUnsupportedProtocol: "Unsupported protocol version",
}

// abortRequest answers a refused HTTP request as Node does: 400 (403 for
// errForbidden) with {"code":N,"message":"..."}.
func abortRequest(w http.ResponseWriter, e protocolError) {
	status := http.StatusBadRequest
	if e == errForbidden {
		status = http.StatusForbidden
	}
	body, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{int(e), errorMessages[e]})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// abortUpgrade answers a refused WebSocket upgrade as Node does: 400 with
// the message as text, and the connection closed.
func abortUpgrade(w http.ResponseWriter, e protocolError) {
	msg := errorMessages[e]
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write([]byte(msg))
}

// ServeHTTP serves one Engine.IO request: a handshake, a long-polling GET
// or POST, or a WebSocket (a new session, or the upgrade of a polling one).
// It answers errors as Node's engine.io does: 400 with {"code","message"}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" && s.cfg.AllowOrigin != nil && s.cfg.AllowOrigin(origin) {
		if r.Method == http.MethodOptions {
			preflight(w, r, origin)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Vary", "Origin")
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	q := r.URL.Query()
	upgrade := websocket.IsWebSocketUpgrade(r)
	abort := abortRequest
	if upgrade {
		abort = abortUpgrade
	}
	transport := q.Get("transport")
	if transport == Polling && !s.polling || transport == WebSocket && !s.ws || transport != Polling && transport != WebSocket {
		abort(w, errUnknownTransport)
		return
	}
	if invalidHeaderValue(origin) {
		abort(w, errBadRequest)
		return
	}
	if sid := q.Get("sid"); sid != "" {
		sess := s.session(sid)
		switch {
		case sess == nil:
			abort(w, errUnknownSID)
		case !upgrade && sess.Transport() != transport, q.Get("EIO") != "4":
			abort(w, errBadRequest)
		case upgrade && transport == WebSocket:
			s.upgradeSession(sess, w, r)
		case upgrade:
			abort(w, errBadRequest) // a polling request with upgrade headers
		case r.Method == http.MethodGet:
			sess.poll(w, r)
		case r.Method == http.MethodPost:
			sess.post(w, r)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
		return
	}
	switch {
	case r.Method != http.MethodGet:
		abort(w, errBadHandshakeMethod)
	case transport == WebSocket && !upgrade:
		abort(w, errBadRequest)
	case q.Get("EIO") != "4":
		abort(w, errUnsupportedProtocol)
	case s.closed.Load():
		abort(w, errForbidden)
	case transport == Polling:
		s.handshakePolling(w, r)
	default:
		s.handshakeWebSocket(w, r)
	}
}

// preflight answers a CORS preflight request of an allowed origin as the
// cors package Node's engine.io uses does.
func preflight(w http.ResponseWriter, r *http.Request, origin string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
	if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
		h.Set("Access-Control-Allow-Headers", rh)
	}
	h.Add("Vary", "Access-Control-Request-Headers") // reflected or not, as cors does
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

// invalidHeaderValue reports whether v has a byte that HTTP does not allow
// in a header value (Node's checkInvalidHeaderChar).
func invalidHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

func (s *Server) session(sid string) *Session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[sid]
}

// newSession registers a session for the handshake request r and asks
// OnSession for its handler. It returns nil when the Server has closed
// meanwhile.
func (s *Server) newSession(r *http.Request, transport uint8) *Session {
	sess := &Session{
		srv:        s,
		id:         newID(),
		transport:  transport,
		header:     r.Header,
		remoteAddr: r.RemoteAddr,
		rawQuery:   r.URL.RawQuery,
		secure:     r.TLS != nil,
	}
	open := openPacket(sess.id, s.upgradesFor(transport), s.cfg)
	sess.queue = append(sess.queue, open)
	sess.queued = int64(open.size())
	sess.handler = s.cfg.OnSession(sess)
	s.mu.Lock()
	if s.closed.Load() {
		// Close has taken its list of sessions: it would not close this
		// one. It is closed here, and the handshake refused.
		s.mu.Unlock()
		sess.closeNow(ReasonForcedClose)
		return nil
	}
	sess.schedulePing() // before the session is found: Close stops it
	s.sessions[sess.id] = sess
	s.mu.Unlock()
	return sess
}

func (s *Server) upgradesFor(transport uint8) []string {
	if transport == transportPolling && s.ws {
		return []string{WebSocket}
	}
	return []string{}
}

// openPacket is the handshake's answer, its members in Node's order.
func openPacket(sid string, upgrades []string, cfg Config) *Message {
	b, _ := json.Marshal(struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int64    `json:"pingInterval"`
		PingTimeout  int64    `json:"pingTimeout"`
		MaxPayload   int64    `json:"maxPayload"`
	}{sid, upgrades, cfg.PingInterval.Milliseconds(), cfg.PingTimeout.Milliseconds(), cfg.MaxPayload})
	return newPacket(typeOpen, string(b))
}

// newID returns a session or socket id as Node's base64id makes them: 15
// random bytes in base64, with "-" and "_" for "+" and "/" (20 characters).
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.URLEncoding.EncodeToString(b[:]) // 15 bytes: no padding
}

// NewID returns a random id in the form of session ids, for the layers
// above (Socket.IO's socket and private session ids).
func NewID() string { return newID() }

// remove forgets a closed session.
func (s *Server) remove(sess *Session) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	s.mu.Unlock()
}

// goroutine runs fn on a goroutine that Close waits for. Once Close has
// waited, it reports false and does not run fn.
func (s *Server) goroutine(fn func()) bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.stopped {
		return false
	}
	s.running++
	go func() {
		defer s.ended()
		fn()
	}()
	return true
}

// maxWorkers bounds the goroutines that stay, between two tasks, waiting
// for the next: reads of WebSockets the poller saw ready, and writers.
const maxWorkers = 64

// run runs fn on an idle worker, or on a new goroutine that becomes a
// worker once fn returns. Workers keep their grown stacks between tasks:
// a goroutine per task would start small and grow (copy) its stack for
// each. A task never waits for a busy worker. It reports false once Close
// has waited.
func (s *Server) run(fn func()) bool {
	select {
	case s.work <- fn:
		return true
	default:
	}
	return s.goroutine(func() {
		fn()
		s.worker()
	})
}

// workerIdle is how long a worker waits for its next task before it ends.
const workerIdle = time.Second

// worker runs tasks until it has waited workerIdle for one, or Close,
// unless maxWorkers wait already: an idle server keeps none.
func (s *Server) worker() {
	if s.workers.Add(1) > maxWorkers {
		s.workers.Add(-1)
		return
	}
	defer s.workers.Add(-1)
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case fn := <-s.work:
			fn()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		case <-s.done:
			return
		}
	}
}

// ended counts out a goroutine of goroutine.
func (s *Server) ended() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.running--; s.running == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// Count returns how many sessions are open.
func (s *Server) Count() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

// SlowConsumers returns how many sessions were closed because a client
// did not read what was sent to it (Config.MaxBufferedBytes).
func (s *Server) SlowConsumers() int64 { return s.slow.Load() }

// Close refuses new sessions (handshakes answer 403), closes every
// session at once ("forced close": a WebSocket gets a close frame, a
// parked poll the close packet) and waits until their handlers have been
// told, and the Server's goroutines have ended, or ctx ends. Idempotent.
// A caller that wants clients to reconnect gradually closes sessions
// itself first (Session.Close).
func (s *Server) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.done) })
	s.mu.Lock()
	s.closed.Store(true) // under mu: no session registers after the list is taken
	all := make([]*Session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.closeNow(ReasonForcedClose)
	}
	s.lifeMu.Lock()
	waited := s.idle // a concurrent Close's
	if waited == nil {
		waited = make(chan struct{})
		if s.running == 0 {
			close(waited)
		} else {
			s.idle = waited // ended closes it
		}
	}
	s.lifeMu.Unlock()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.lifeMu.Lock()
	s.stopped = true
	s.lifeMu.Unlock()
	if s.poller != nil {
		s.poller.close()
	}
	s.timers.Close()
	return err
}
