package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/timers"
	"github.com/herald-rt/herald/socketio/engineio"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// Server is a Socket.IO v4 server whose every socket belongs to an
// authenticated user. It is an http.Handler: mount it at Config.Path.
//
// All methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	engine *engineio.Server
	parser parser.Parser
	timers *timers.Heap // connect timeouts and token expiries

	jobsDropped atomic.Int64  // stale job events refused (jobs.go)
	leasesStop  chan struct{} // closed by Shutdown: runJobLeases returns

	// ctx ends when Shutdown has finished with the sockets; every goroutine
	// the Server starts ends with it.
	ctx    context.Context
	cancel context.CancelFunc

	lifeMu  sync.Mutex // guards stopped and wg.Add
	stopped bool
	wg      sync.WaitGroup

	closing      atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error
	done         chan struct{}

	mu       sync.RWMutex
	sockets  map[string]*Socket
	handlers map[string]handler
	emptied  chan struct{} // signalled when a socket is removed

	presenceMu sync.Mutex // orders presence transitions with their notes
	notes      *noteQueue

	// nsps are the served namespaces, by name ("/", "/admin"); set by
	// New, then read-only.
	nsps map[string]*nspState

	handshakes *ipLimiter    // Config.HandshakeRate
	pending    *pendingConns // Config.MaxPendingConnections

	recoverer adapter.Recoverer // set when Config.Recovery > 0
}

// New validates cfg and returns a Server that is ready to be mounted. It
// reports every problem in cfg at once, does no I/O and starts only the
// goroutines of its timers and of presence notifications.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		done:     make(chan struct{}),
		sockets:  make(map[string]*Socket),
		handlers: make(map[string]handler),
		emptied:  make(chan struct{}, 1),
		notes:    newNoteQueue(),
		parser:   parser.Default(),
	}
	if cfg.Parser == ParserMsgpack {
		s.parser = parser.Msgpack()
	}
	s.handshakes = newIPLimiter(cfg.HandshakeRate)
	s.pending = newPendingConns(cfg.MaxPendingConnections)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	ecfg := engineio.Config{
		PingInterval:      cfg.PingInterval,
		PingTimeout:       cfg.PingTimeout,
		MaxPayload:        cfg.MaxHTTPBufferSize,
		Transports:        cfg.Transports,
		PerMessageDeflate: cfg.PerMessageDeflate,
		MaxBufferedBytes:  cfg.MaxBufferedBytes,
		PollBodyTimeout:   cfg.PollBodyTimeout,
		MaxPayloadPackets: cfg.MaxPayloadPackets,
		OnSession:         s.onSession,
		Logger:            cfg.Logger,
	}
	if len(cfg.AllowedOrigins) > 0 {
		ecfg.AllowOrigin = s.originListed
	}
	if s.engine, err = engineio.NewServer(ecfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.Recovery > 0 {
		s.recoverer = cfg.Broker.(adapter.Recoverer) // checked by normalize
	}
	obs, _ := cfg.Broker.(roomObserver)
	s.nsps = make(map[string]*nspState, 1+len(cfg.Namespaces))
	for _, name := range append([]string{"/"}, cfg.Namespaces...) {
		s.nsps[name] = newNspState(name, obs)
	}
	if w, ok := cfg.Presence.(adapter.PresenceWatcher); ok {
		// A cluster store reports every transition itself, in its order.
		w.Watch(func(userID string, online bool) {
			s.notes.push(PresenceEvent{UserID: userID, Online: online, Time: s.cfg.Now()})
		})
	}
	if err := OnAck(s, events.Reauthenticate, s.reauthenticate); err != nil {
		_ = s.engine.Close(context.Background())
		return nil, err
	}
	if err := cfg.Broker.Subscribe(s.deliver); err != nil {
		_ = s.engine.Close(context.Background()) // its goroutines and descriptors
		return nil, fmt.Errorf("%w: Broker: %w", ErrInvalidConfig, err)
	}
	s.timers = timers.New()
	s.goroutine(s.runNotes)
	s.leasesStop = make(chan struct{})
	if cfg.Jobs != nil {
		s.goroutine(s.runJobLeases)
	}
	return s, nil
}

// goroutine runs fn on a goroutine that Shutdown waits for. fn must return
// when ctx ends. It reports false, and does not run fn, once the Server has
// stopped.
func (s *Server) goroutine(fn func(ctx context.Context)) bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.ctx)
	}()
	return true
}

// Path returns where the Server expects to be mounted, e.g. "/socket.io/".
func (s *Server) Path() string { return s.cfg.Path }

// ServeHTTP implements http.Handler for Socket.IO's Engine.IO endpoint.
// Before the protocol, it refuses requests from origins not allowed (403
// origin_not_allowed), new connections during Shutdown (503
// server_shutting_down) and new connections from a client address that
// holds Config.MaxPendingConnections already (429 rate_limited), each with
// herald's JSON error body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, s.cfg.Path) && r.URL.Path+"/" != s.cfg.Path {
		writeJSONError(w, http.StatusNotFound, "not_found", "not a socket.io path")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin, r) {
		writeJSONError(w, http.StatusForbidden, "origin_not_allowed", "origin not allowed")
		return
	}
	if r.Method != http.MethodOptions && r.URL.Query().Get("sid") == "" {
		// A new session.
		if s.closing.Load() {
			w.Header().Set("Retry-After", "1")
			writeJSONError(w, http.StatusServiceUnavailable, CodeServerShuttingDown, "server shutting down")
			return
		}
		if s.pending.full(s.clientIP(r)) {
			w.Header().Set("Retry-After", "1")
			writeJSONError(w, http.StatusTooManyRequests, CodeRateLimited, "too many connections")
			return
		}
	}
	s.engine.ServeHTTP(w, r)
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"success": false,
		"error":   Error{Code: code, Message: message},
	})
}

// originAllowed reports whether a request from origin may proceed: one of
// Config.AllowedOrigins, or, when it lists none, the request's own origin.
// Origins compare by scheme, host and port (a default port may be left
// out).
func (s *Server) originAllowed(origin string, r *http.Request) bool {
	if len(s.cfg.AllowedOrigins) > 0 {
		return s.originListed(origin)
	}
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p := r.Header.Get("X-Forwarded-Proto"); strings.EqualFold(p, "https") {
		// Behind a proxy that ends TLS. Browsers cannot set this header
		// on WebSocket or simple requests, which the check is for.
		scheme = "https"
	}
	self, ok := normalizeOrigin(scheme + "://" + r.Host)
	return ok && o == self
}

// originListed reports whether origin is one of Config.AllowedOrigins.
func (s *Server) originListed(origin string) bool {
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if allowed == "*" {
			return true
		}
		if a, ok := normalizeOrigin(allowed); ok && a == o {
			return true
		}
	}
	return false
}

// normalizeOrigin returns origin as scheme://host:port, lower-case, with
// the scheme's default port made explicit.
func normalizeOrigin(origin string) (string, bool) {
	u, err := url.Parse(strings.TrimSuffix(origin, "/"))
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case port != "":
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", false
		}
	case scheme == "http", scheme == "ws":
		port = "80"
	case scheme == "https", scheme == "wss":
		port = "443"
	default:
		return "", false
	}
	return scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port, true
}

// tooManyConnections reports whether userID has Config.MaxConnectionsPerUser
// sockets already. A Presence that cannot count, or does not answer, lets
// the handshake through.
func (s *Server) tooManyConnections(userID string) bool {
	max := s.cfg.MaxConnectionsPerUser
	counter, ok := s.cfg.Presence.(adapter.UserSocketCounter)
	if max < 0 || !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	n, err := counter.UserSockets(ctx, userID)
	if err != nil {
		s.log.Warn("connections per user not checked", "user", userID, "err", err)
		return false
	}
	return n >= max
}

// onDisconnect is the Server's bookkeeping of a socket that disconnected.
func (s *Server) onDisconnect(sock *Socket, reason string) {
	sock.cancel()
	sock.stopExpiry()
	// Presence first: once Shutdown sees no socket left, every
	// transition it causes must be queued for delivery.
	s.presenceMu.Lock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), presenceTimeout)
	last, err := s.cfg.Presence.Remove(ctx, sock.userID, sock.id)
	cancel()
	if last {
		s.notes.push(PresenceEvent{UserID: sock.userID, Online: false, Time: s.cfg.Now()})
	}
	s.presenceMu.Unlock()
	if err != nil {
		s.log.Error("presence remove failed", "user", sock.userID, "err", err)
	}
	s.mu.Lock()
	if s.sockets[sock.id] == sock {
		delete(s.sockets, sock.id)
	}
	s.mu.Unlock()
	select {
	case s.emptied <- struct{}{}:
	default:
	}
	s.log.Debug("socket disconnected", "sid", sock.id, "user", sock.userID, "reason", reason)
}

// Shutdown stops the Server: it refuses new handshakes, closes every
// socket's connection (clients see "transport close" and reconnect, to
// another node if there is one), marks their users offline, delivers the
// pending presence notifications and stops every goroutine it started.
//
// Shutdown returns ctx.Err() if ctx ends first; the sockets still open are
// then closed forcibly and their users marked offline before it returns.
// Shutdown is idempotent: later calls wait for the first to finish. It does
// not close a Broker or Presence passed in the Config. http.Server.Shutdown
// does not close WebSockets: call both.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	first := false
	s.shutdownOnce.Do(func() {
		first = true
		s.shutdownErr = s.shutdown(ctx)
		close(s.done)
	})
	if first {
		return s.shutdownErr
	}
	select {
	case <-s.done:
		return s.shutdownErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) shutdown(ctx context.Context) error {
	var ctxErr error
	// Closing the Engine.IO connection (not sending a Socket.IO DISCONNECT,
	// which tells socket.io-client never to reconnect) flushes what is
	// queued, then the client sees "transport close" and reconnects.
	s.drain(ctx)
	for ctxErr == nil && s.SocketCount() > 0 {
		select {
		case <-s.emptied:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
	}
	// Forget what did not close in time, so its users go offline.
	for _, sock := range s.snapshot() {
		sock.onClose("server shutting down")
	}
	if err := s.engine.Close(ctx); err != nil && ctxErr == nil {
		ctxErr = err
	}

	s.lifeMu.Lock()
	s.stopped = true
	s.lifeMu.Unlock()
	s.notes.close()
	close(s.leasesStop)
	waited := make(chan struct{})
	go func() {
		// Presence notes drain first; then the rest is told to stop.
		s.wg.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-ctx.Done():
		// A handler that ignores its context may still be running; it is
		// told to stop, but Shutdown keeps its deadline.
		ctxErr = ctx.Err()
	}
	s.cancel()
	s.timers.Close()
	return ctxErr
}

// drainStep is the interval between two batches of a drain.
const drainStep = 100 * time.Millisecond

// drain closes every connection, spread over Config.ShutdownDrain (at most
// half of what is left of ctx) in batches every drainStep, in random order
// and at a random moment of each step, so that the clients do not all
// reconnect at once. It returns when every connection has been told to
// close, or when ctx ends (the rest are closed then, at once).
func (s *Server) drain(ctx context.Context) {
	seen := map[*client]bool{}
	var conns []*client
	for _, sock := range s.snapshot() {
		if !seen[sock.client] {
			seen[sock.client] = true // another namespace of the same connection
			conns = append(conns, sock.client)
		}
	}
	window := s.cfg.ShutdownDrain
	if dl, ok := ctx.Deadline(); ok {
		window = min(window, time.Until(dl)/2)
	}
	steps := int(window / drainStep)
	if steps <= 1 || len(conns) <= 1 {
		for _, c := range conns {
			c.conn.Close()
		}
		return
	}
	rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	start := time.Now()
	for i, c := range conns {
		// Connection i closes in step i*steps/n, at a random moment of it.
		at := time.Duration(i*steps/len(conns))*drainStep + rand.N(drainStep)
		if wait := time.Until(start.Add(at)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				for _, rest := range conns[i:] {
					rest.conn.Close()
				}
				return
			}
		}
		c.conn.Close()
	}
}

func (s *Server) snapshot() []*Socket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Socket, 0, len(s.sockets))
	for _, sock := range s.sockets {
		out = append(out, sock)
	}
	return out
}

// SocketCount returns how many sockets are connected to this node.
func (s *Server) SocketCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sockets)
}

// errIfClosed returns ErrServerClosed once Shutdown has begun.
func (s *Server) errIfClosed() error {
	if s.closing.Load() {
		return ErrServerClosed
	}
	return nil
}
