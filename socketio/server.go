package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	engine "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
)

// Server is a Socket.IO v4 server whose every socket belongs to an
// authenticated user. It is an http.Handler: mount it at Config.Path.
//
// All methods are safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	io     *socket.Server
	engine http.Handler

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

	polls pendingPolls // long-poll GETs in flight, see polls.go

	// namespaces are the served namespaces, by their adapter.Message name
	// ("" for "/"); set by New, then read-only.
	namespaces map[string]socket.Namespace

	handshakes *ipLimiter // Config.HandshakeRate

	recoverer adapter.Recoverer // set when Config.Recovery > 0
	restoring restores          // sessions being recovered, see recovery.go
	refused   sync.Map          // socket ids whose recovery was refused: not persisted

	// wires are the WebSocket connections herald writes room deliveries
	// to itself, by engine session id (see wire.go); nil when
	// PerMessageDeflate is on (herald's frames are not compressed).
	wires        *sync.Map
	directWrites atomic.Uint64 // room deliveries written through wires
	holdMax      atomic.Int64  // wireConn holds end after this (ns); 0 = no holds
	upgrades     sync.Map      // sid -> *connGate of a WebSocket upgrade under way
}

// New validates cfg and returns a Server that is ready to be mounted. It
// reports every problem in cfg at once, does no I/O and starts only the
// goroutine that delivers presence notifications.
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
	}
	s.handshakes = newIPLimiter(cfg.HandshakeRate)
	s.ctx, s.cancel = context.WithCancel(context.Background())

	opts := socket.DefaultServerOptions()
	opts.SetPath(strings.TrimSuffix(cfg.Path, "/"))
	opts.SetServeClient(false)
	opts.SetPingInterval(cfg.PingInterval)
	opts.SetPingTimeout(cfg.PingTimeout)
	opts.SetConnectTimeout(cfg.ConnectTimeout)
	opts.SetMaxHttpBufferSize(cfg.MaxHTTPBufferSize)
	opts.SetAllowEIO3(false)
	if cfg.Parser == ParserMsgpack {
		opts.SetParser(msgpackParser{log: s.log})
	}
	if cfg.PerMessageDeflate {
		opts.SetPerMessageDeflate(&types.PerMessageDeflate{Threshold: 1024})
	} else {
		s.wires = new(sync.Map)
		s.holdMax.Store(int64(wireHoldMax))
	}
	transports := types.NewSet[socket.TransportCtor]()
	for _, t := range cfg.Transports {
		switch t {
		case TransportPolling:
			transports.Add(socket.Polling)
		case TransportWebSocket:
			transports.Add(socket.WebSocket)
		}
	}
	opts.SetTransports(transports)
	if len(cfg.AllowedOrigins) > 0 {
		opts.SetCors(&types.Cors{Origin: s.originAllowedCORS, Credentials: true})
	}

	if cfg.Recovery > 0 {
		s.recoverer = cfg.Broker.(adapter.Recoverer) // checked by normalize
		csr := socket.DefaultConnectionStateRecovery()
		csr.SetMaxDisconnectionDuration(cfg.Recovery.Milliseconds())
		// A recovered socket is authenticated again: an expired or
		// revoked token does not get its session back.
		csr.SetSkipMiddlewares(false)
		opts.SetConnectionStateRecovery(csr)
		opts.SetAdapter(&recoveryAdapterBuilder{s: s})
	}
	s.io = socket.NewServer(nil, opts)
	s.engine = s.io.ServeHandler(nil)
	// After Socket.IO's own listener: see gate.go.
	if err := s.io.Engine().On("connection", s.onEngineConnection); err != nil {
		return nil, fmt.Errorf("socketio: register engine connection handler: %w", err)
	}
	s.namespaces = make(map[string]socket.Namespace, 1+len(cfg.Namespaces))
	for _, name := range append([]string{"/"}, cfg.Namespaces...) {
		nsp := s.io.Of(name, nil)
		nsp.Use(s.authenticate)
		if err := nsp.On("connection", func(args ...any) {
			if raw, ok := firstArg[*socket.Socket](args); ok {
				s.onConnection(raw)
			}
		}); err != nil {
			return nil, fmt.Errorf("socketio: register connection handler: %w", err)
		}
		s.namespaces[messageNamespace(name)] = nsp
	}
	if w, ok := cfg.Presence.(adapter.PresenceWatcher); ok {
		// A cluster store reports every transition itself, in its order.
		w.Watch(func(userID string, online bool) {
			s.notes.push(PresenceEvent{UserID: userID, Online: online, Time: s.cfg.Now()})
		})
	}
	if obs, ok := cfg.Broker.(roomObserver); ok {
		for name, nsp := range s.namespaces {
			s.observeRooms(obs, name, nsp)
		}
	}
	if err := OnAck(s, events.Reauthenticate, s.reauthenticate); err != nil {
		return nil, err
	}
	if err := cfg.Broker.Subscribe(s.deliver); err != nil {
		return nil, fmt.Errorf("%w: Broker: %w", ErrInvalidConfig, err)
	}
	s.goroutine(s.runNotes)
	return s, nil
}

// roomObserver is implemented by a Broker that subscribes per room
// (adapter.RedisBroker in sharded mode).
type roomObserver interface {
	ObserveNamespaceRoom(nsp, room string, joined bool)
}

// observeRooms tells obs about every socket joining or leaving a room of
// namespace nsp (named name in adapter.Message), the sockets' private rooms
// excepted.
func (s *Server) observeRooms(obs roomObserver, name string, nsp socket.Namespace) {
	observe := func(joined bool) func(...any) {
		return func(args ...any) {
			if len(args) < 2 {
				return
			}
			room, _ := args[0].(socket.Room)
			id, _ := args[1].(socket.SocketId)
			if room == "" || string(room) == string(id) {
				return
			}
			obs.ObserveNamespaceRoom(name, string(room), joined)
		}
	}
	_ = nsp.Adapter().On("join-room", observe(true))
	_ = nsp.Adapter().On("leave-room", observe(false))
}

func firstArg[T any](args []any) (T, bool) {
	var zero T
	if len(args) == 0 {
		return zero, false
	}
	v, ok := args[0].(T)
	return v, ok
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
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, s.cfg.Path) && r.URL.Path+"/" != s.cfg.Path {
		writeJSONError(w, http.StatusNotFound, "not_found", "not a socket.io path")
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !s.originAllowed(origin, r.Host) {
		writeJSONError(w, http.StatusForbidden, "origin_not_allowed", "origin not allowed")
		return
	}
	if s.closing.Load() && r.URL.Query().Get("sid") == "" {
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, CodeServerShuttingDown, "server shutting down")
		return
	}
	q := r.URL.Query()
	if q.Get("transport") != TransportPolling {
		if sid := q.Get("sid"); sid == "" {
			w, r = withGate(w, r, time.Duration(s.holdMax.Load())) // a new WebSocket connection: see gate.go
		} else if s.wires != nil {
			var done func()
			w, done = s.withUpgradeWire(w, sid) // see wire_upgrade.go
			defer done()
		}
		s.engine.ServeHTTP(w, r)
		return
	}
	if sid := q.Get("sid"); sid != "" && !s.guardPoll(w, r, sid) {
		return
	}
	sid := q.Get("sid")
	poll := sid != "" && r.Method == http.MethodGet
	parent := r.Context()
	if poll {
		// See forwardAbort: upstream sees the client go away only once it
		// has taken the poll.
		parent = context.WithoutCancel(parent)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	pw := newPollWriter(w, cancel)
	pw.hold = sid == "" // a handshake: see gate.go
	defer pw.finish()
	if poll {
		s.polls.add(sid, pw)
		defer s.polls.remove(sid, pw)
		go forwardAbort(r.Context(), pw)
	}
	s.engine.ServeHTTP(pw, r.WithContext(ctx))
}

// forwardAbort cancels upstream's context of a long-poll when the client
// goes away, but not before upstream has taken the poll (a client that
// aborts a poll at that moment, such as a closed browser tab, would be a
// data race in upstream: see pollWriter.markTaken).
func forwardAbort(client context.Context, pw *pollWriter) {
	select {
	case <-pw.done:
		return
	case <-client.Done():
	}
	pw.cancelWhenTaken()
}

func (s *Server) originAllowed(origin, host string) bool {
	if len(s.cfg.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, host)
	}
	return s.originAllowedCORS(origin)
}

func (s *Server) originAllowedCORS(origin string) bool {
	return slices.ContainsFunc(s.cfg.AllowedOrigins, func(o string) bool {
		return o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin)
	})
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"success": false,
		"error":   Error{Code: code, Message: message},
	})
}

// authenticate is the namespace middleware that verifies every handshake.
func (s *Server) authenticate(raw *socket.Socket, next func(*socket.ExtendedError)) {
	if s.closing.Load() {
		if raw.Recovered() {
			s.abandonRestore(string(raw.Id()))
		}
		next(socket.NewExtendedError("server shutting down", map[string]any{"code": CodeServerShuttingDown}))
		return
	}
	var req *http.Request
	if r := raw.Request(); r != nil {
		req = r.Request()
	}
	if ip := s.clientIP(req); !s.handshakes.allow(ip, time.Now()) {
		if raw.Recovered() {
			s.abandonRestore(string(raw.Id()))
		}
		s.log.Debug("handshake over Config.HandshakeRate", "remote", ip)
		next(socket.NewExtendedError("too many connections", map[string]any{"code": CodeRateLimited}))
		return
	}
	h := auth.Handshake{}
	if hs := raw.Handshake(); hs != nil {
		h.Auth = hs.Auth
	}
	if req := raw.Request(); req != nil && req.Request() != nil {
		h.Header = req.Request().Header
		if s.cfg.TokenQueryParam != "" { // parsed only when it may be read
			h.Query = req.Request().URL.Query()
		}
	}
	token, err := auth.ExtractToken(h, auth.ExtractOptions{QueryParam: s.cfg.TokenQueryParam})
	var p auth.Principal
	if err == nil {
		if _, local := s.cfg.Verifier.(*auth.Verifier); local {
			p, err = s.cfg.Verifier.Verify(s.ctx, token) // no I/O: no deadline to set
		} else {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			p, err = s.cfg.Verifier.Verify(ctx, token)
			cancel()
		}
	}
	if err == nil {
		if e := validateUserID(p.UserID); e != nil {
			err = fmt.Errorf("%w: %w", auth.ErrTokenInvalid, e)
		}
	}
	if err != nil {
		code := auth.Code(err)
		if raw.Recovered() {
			s.abandonRestore(string(raw.Id()))
		}
		s.log.Info("handshake rejected", "code", code, "reason", err.Error(), "remote", raw.Conn().RemoteAddress())
		next(socket.NewExtendedError("unauthorized", map[string]any{"code": code}))
		return
	}
	if s.tooManyConnections(p.UserID) {
		if raw.Recovered() {
			s.abandonRestore(string(raw.Id()))
		}
		s.log.Info("handshake rejected: too many connections", "user", p.UserID, "max", s.cfg.MaxConnectionsPerUser)
		next(socket.NewExtendedError("too many connections", map[string]any{"code": CodeTooManyConnections}))
		return
	}
	raw.SetData(&p)
	if wc := s.wireOf(raw); wc != nil {
		wc.hold(time.Duration(s.holdMax.Load())) // released at the end of onConnection
	}
	next(nil)
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

func (s *Server) onConnection(raw *socket.Socket) {
	if wc := s.wireOf(raw); wc != nil {
		// authenticate held the connection's writes: what this handler
		// sends leaves with the CONNECT answer (see wireConn.hold).
		defer wc.release()
	}
	p, ok := raw.Data().(*auth.Principal)
	if !ok {
		raw.Disconnect(true) // not authenticated by us: cannot happen
		return
	}
	if raw.Recovered() && !s.finishRestore(raw, p.UserID) {
		s.closeConn(raw)
		return
	}
	if s.closing.Load() {
		s.closeConn(raw)
		return
	}
	sock := newSocket(s, raw, *p)
	s.mu.Lock()
	s.sockets[sock.id] = sock
	s.mu.Unlock()
	raw.Join(socket.Room(UserRoom(sock.userID)))

	// Presence first, then the disconnect listener, then the check that the
	// socket is still connected: however a disconnect interleaves, Remove
	// runs after Add, so a user can never stay online without a socket.
	s.presenceMu.Lock()
	first, err := s.cfg.Presence.Add(s.ctx, sock.userID, sock.id)
	if first {
		s.notes.push(PresenceEvent{UserID: sock.userID, Online: true, Time: s.cfg.Now()})
	}
	s.presenceMu.Unlock()
	if err != nil {
		s.log.Error("presence add failed", "user", sock.userID, "err", err)
	}
	raw.OnAny(func(args ...any) { s.onEvent(sock, args) })
	_ = raw.On("disconnect", func(args ...any) {
		reason, _ := firstArg[string](args)
		s.onDisconnect(sock, reason)
	})
	if conn := raw.Conn(); raw.Connected() && conn != nil && conn.ReadyState() == "closed" {
		// Upstream gap: a connection that closed while the socket was
		// joining its namespace (before its client listed it) never tells
		// the socket, which would stay connected forever. Close it here;
		// the disconnect listener above does the rest.
		raw.Disconnect(false)
	}
	if !raw.Connected() {
		s.onDisconnect(sock, "transport close")
		return
	}
	s.scheduleExpiry(sock, p.ExpiresAt)
	s.log.Debug("socket connected", "sid", sock.id, "user", sock.userID, "transport", sock.Transport())
	if err := Emit(s.ctx, sock, events.Authenticated, events.AuthenticatedPayload{UserID: sock.userID}); err != nil {
		s.log.Debug("authenticated event not sent", "sid", sock.id, "err", err)
	}
}

func (s *Server) onDisconnect(sock *Socket, reason string) {
	sock.once.Do(func() {
		sock.cancel()
		sock.stopExpiry()
		// Presence first: once Shutdown sees no socket left, every
		// transition it causes must be queued for delivery.
		s.presenceMu.Lock()
		last, err := s.cfg.Presence.Remove(context.WithoutCancel(s.ctx), sock.userID, sock.id)
		if last {
			s.notes.push(PresenceEvent{UserID: sock.userID, Online: false, Time: s.cfg.Now()})
		}
		s.presenceMu.Unlock()
		if err != nil {
			s.log.Error("presence remove failed", "user", sock.userID, "err", err)
		}
		s.mu.Lock()
		delete(s.sockets, sock.id)
		s.mu.Unlock()
		select {
		case s.emptied <- struct{}{}:
		default:
		}
		s.log.Debug("socket disconnected", "sid", sock.id, "user", sock.userID, "reason", reason)
	})
}

// deliver hands a message from the Broker to this node's sockets.
func (s *Server) deliver(m adapter.Message) {
	if m.Disconnect {
		s.disconnectLocal(m)
		return
	}
	if _, ok := s.namespaces[m.Namespace]; !ok {
		return // a namespace this node does not serve
	}
	if m.Offset != "" && s.recoverer != nil {
		s.deliverWithOffset(m)
		return
	}
	if s.writeLocal(s.namespaces[m.Namespace], m) {
		return
	}
	op := s.namespaces[m.Namespace].Local()
	if len(m.Rooms) > 0 {
		op = op.To(toRooms(m.Rooms)...)
	}
	if len(m.Except) > 0 {
		op = op.Except(toRooms(m.Except)...)
	}
	if err := op.Emit(m.Event, wireArgs(m.Args)...); err != nil {
		s.log.Warn("delivery failed", "event", m.Event, "err", err)
	}
}

func toRooms(names []string) []socket.Room {
	rooms := make([]socket.Room, len(names))
	for i, n := range names {
		rooms[i] = socket.Room(n)
	}
	return rooms
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
	// buffered, then the client sees "transport close" and reconnects.
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
		s.onDisconnect(sock, "server shutting down")
	}
	closed := make(chan error, 1)
	s.io.Close(func(err error) { closed <- err })
	select {
	case <-closed:
	case <-ctx.Done():
		ctxErr = ctx.Err()
	}

	s.lifeMu.Lock()
	s.stopped = true
	s.lifeMu.Unlock()
	s.notes.close()
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
	seen := map[string]bool{}
	var conns []*socket.Socket
	for _, sock := range s.snapshot() {
		if c := sock.raw.Conn(); c != nil {
			if seen[c.Id()] {
				continue // another namespace of the same connection
			}
			seen[c.Id()] = true
		}
		conns = append(conns, sock.raw)
	}
	window := s.cfg.ShutdownDrain
	if dl, ok := ctx.Deadline(); ok {
		window = min(window, time.Until(dl)/2)
	}
	steps := int(window / drainStep)
	if steps <= 1 || len(conns) <= 1 {
		for _, raw := range conns {
			s.closeConn(raw)
		}
		return
	}
	rand.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	start := time.Now()
	for i, raw := range conns {
		// Connection i closes in step i*steps/n, at a random moment of it.
		at := time.Duration(i*steps/len(conns))*drainStep + rand.N(drainStep)
		if wait := time.Until(start.Add(at)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				for _, rest := range conns[i:] {
					s.closeConn(rest)
				}
				return
			}
		}
		s.closeConn(raw)
	}
}

// closeConn closes raw's Engine.IO connection so that the client sees
// "transport close" and reconnects. Buffered packets are flushed first. For
// long-polling it works around upstream's lost close packet (polls.go).
func (s *Server) closeConn(raw *socket.Socket) {
	conn := raw.Conn()
	if conn == nil {
		raw.Disconnect(true)
		return
	}
	s.closeEngine(conn)
}

// closeEngine closes an Engine.IO connection, as closeConn.
func (s *Server) closeEngine(conn engine.Socket) {
	sid := conn.Id()
	if tr := conn.Transport(); tr == nil || tr.Name() != TransportPolling {
		conn.Close(false)
		return
	}
	_ = conn.Once("close", func(...any) { s.polls.close(sid) })
	tr := conn.Transport()
	var once sync.Once
	closeNow := func() {
		once.Do(func() {
			conn.Close(false)
			if conn.ReadyState() == "closed" {
				s.polls.close(sid)
			}
		})
	}
	// A poll is parked when the transport is writable; "ready" fires when
	// the next one arrives, after upstream flushed buffered packets into it.
	_ = tr.On("ready", func(...any) {
		if tr.Writable() {
			closeNow()
		}
	})
	if tr.Writable() {
		closeNow()
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
