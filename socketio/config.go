package socketio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/socketio/engineio"
)

// TokenVerifier checks a handshake token and says who presents it.
// *auth.Verifier implements it; a service with its own token format can
// supply another implementation. Verify's errors should wrap one of the auth
// package's sentinels, whose codes reach the client. The Server keeps the
// Principal it returns (Socket.Claim reads its Claims): Verify must return
// a Principal it does not change afterwards.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (auth.Principal, error)
}

// Transport names, for Config.Transports.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// Parser names, for Config.Parser.
const (
	// ParserDefault is Socket.IO's default parser (socket.io-parser):
	// JSON text, binary data as attachments.
	ParserDefault = "default"
	// ParserMsgpack is socket.io-msgpack-parser's: every packet one
	// MessagePack message, binary data inside it.
	ParserMsgpack = "msgpack"
)

// Defaults for the zero values of Config fields.
const (
	DefaultPath                  = "/socket.io/"
	DefaultExpiryWarning         = time.Minute
	DefaultEventRate             = 100
	DefaultHandshakeRate         = 50
	DefaultMaxPendingConnections = 100
	DefaultMaxConnectionsPerUser = 100
	DefaultShutdownDrain         = 5 * time.Second
	DefaultMaxRoomsPerSocket     = 100
	DefaultPingInterval          = 25 * time.Second
	DefaultPingTimeout           = 20 * time.Second
	DefaultConnectTimeout        = 45 * time.Second
	DefaultMaxHTTPBufferSize     = engineio.DefaultMaxPayload
	DefaultMaxBufferedBytes      = engineio.DefaultMaxBufferedBytes
	DefaultPollBodyTimeout       = engineio.DefaultPollBodyTimeout
	DefaultMaxPayloadPackets     = engineio.DefaultMaxPayloadPackets
	DefaultAckTimeout            = 10 * time.Second
	DefaultHandlerTimeout        = 30 * time.Second
)

// PresenceEvent is a user's transition between offline and online.
type PresenceEvent struct {
	UserID string
	Online bool
	Time   time.Time
}

// Config configures a Server. The zero value of every field but Verifier has
// a documented meaning; New copies the Config, so later changes to it have
// no effect.
type Config struct {
	// Verifier checks the token of every handshake. Required.
	Verifier TokenVerifier
	// TokenQueryParam, when set, lets a client pass its token in this query
	// parameter, after the handshake's auth.token and the Authorization
	// header. Empty (the default) never reads tokens from URLs, which end up
	// in access logs.
	TokenQueryParam string

	// Path is where the server is mounted; "" means DefaultPath. Mount the
	// Server on a mux at the same path.
	Path string
	// Transports lists the enabled transports, a subset of
	// TransportPolling and TransportWebSocket; nil means both (clients start
	// with polling and upgrade). WebSocket-only needs no sticky sessions
	// when several nodes run behind a load balancer.
	Transports []string
	// Parser is the Socket.IO parser, ParserDefault or ParserMsgpack; ""
	// means ParserDefault. Every client of the Server must use the same
	// one, as with Node's socket.io: with ParserMsgpack, clients pass the
	// npm package socket.io-msgpack-parser as io()'s parser option (or
	// load socket.io-client's socket.io.msgpack.min.js bundle); a client
	// with the other parser cannot connect.
	Parser string
	// PingInterval is how often the server pings a client; 0 means
	// DefaultPingInterval.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for a pong before closing
	// the connection; 0 means DefaultPingTimeout.
	PingTimeout time.Duration
	// ConnectTimeout closes a connection that joins no namespace in time;
	// 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// MaxHTTPBufferSize is the largest message a client may send, in bytes
	// (a WebSocket message, or a long-polling request body); 0 means
	// DefaultMaxHTTPBufferSize.
	MaxHTTPBufferSize int64
	// MaxBufferedBytes bounds what waits to be written to one connection,
	// in bytes. A client that does not read fast enough to stay under it
	// (a stalled network, a frozen tab, a hostile client) has its
	// connection closed, is counted in Stats (node.slowConsumers), and
	// reconnects as after any network failure; nothing else slows down.
	// 0 means DefaultMaxBufferedBytes (4 MiB).
	MaxBufferedBytes int64
	// PollBodyTimeout bounds how long a long-polling POST may take to
	// deliver its body; the request is cut past it and its connection
	// closed. 0 means DefaultPollBodyTimeout.
	PollBodyTimeout time.Duration
	// MaxPayloadPackets bounds the packets of one long-polling POST: past
	// it the POST answers 400 and the connection is closed. 0 means
	// DefaultMaxPayloadPackets.
	MaxPayloadPackets int
	// PerMessageDeflate enables WebSocket compression (permessage-deflate)
	// for messages of at least 1 KiB. False (the default, as in the
	// reference server) saves the CPU and the memory it costs per
	// connection; clients work either way.
	PerMessageDeflate bool
	// Namespaces lists the namespaces served besides the main one, "/",
	// e.g. "/admin". A client reaches one with io(url + "/admin"); several
	// namespaces share one connection. Every namespace authenticates the
	// same way, its sockets join their user's room, count for presence and
	// run the same handlers (Socket.Namespace tells them apart); emit into
	// a namespace with Server.Of. A name starts with "/", has at most
	// MaxNamespaceLength bytes and no control characters, "," (which ends
	// a namespace in a packet), "#", "*", "?" or "[" (Redis channel and
	// pattern characters). Nil (the default) serves "/" only; other
	// namespaces get connect_error "Invalid namespace".
	Namespaces []string
	// AllowedOrigins lists the origins (scheme://host[:port]) browsers may
	// connect from; "*" allows any. Origins compare by scheme, host and
	// port, a scheme's default port written or not. Empty means
	// same-origin only: a request whose Origin is not the request's own
	// scheme, host and port (the scheme is https over TLS, or with
	// X-Forwarded-Proto: https from a proxy that ends TLS) is refused with
	// 403. Requests without an Origin header (server-side clients) are
	// always allowed.
	AllowedOrigins []string

	// EventRate is how many events per second a socket may send, with
	// bursts of as many: a token bucket per socket. An event over the limit
	// is dropped before its handler runs; a client that asked for an
	// acknowledgement receives {error: {code: "rate_limited"}}. 0 means
	// DefaultEventRate; -1 means no limit.
	EventRate int
	// HandshakeRate is how many handshakes (Socket.IO CONNECTs, each
	// namespace's counted) a client address may make per second, in
	// bursts of as many; the ones over it get connect_error with data.code
	// "rate_limited" before their token is checked. 0 means
	// DefaultHandshakeRate; -1 means no limit. Behind a proxy every client
	// has the proxy's address: set ClientIP (ForwardedClientIP), or raise
	// the rate.
	HandshakeRate int
	// MaxPendingConnections is how many connections a client address may
	// hold open before they join a namespace (socket.io-client joins one
	// right after connecting; a connection that never does is closed after
	// ConnectTimeout). A new connection beyond is refused with 429 (JSON
	// code "rate_limited", Retry-After: 1), and the client retries, as
	// after any network error. 0 means DefaultMaxPendingConnections; -1
	// means no limit. Behind a proxy, set ClientIP as for HandshakeRate.
	MaxPendingConnections int
	// MaxConnectionsPerUser is how many sockets one user may have
	// connected at once, across the cluster with adapter.RedisPresence; a
	// handshake beyond gets connect_error with data.code
	// "too_many_connections". With a Presence that checks and adds in one
	// step (adapter.UserSocketLimiter: MemoryPresence, RedisPresence) the
	// limit holds exactly under concurrent handshakes; with RedisPresence
	// while Redis is unreachable it holds per node. A Presence that can
	// only count (adapter.UserSocketCounter) is asked first, and
	// concurrent handshakes may pass it by a few; one that does not answer
	// lets the handshake through. 0 means DefaultMaxConnectionsPerUser; -1
	// means no limit.
	MaxConnectionsPerUser int
	// ClientIP returns the address of the client of a handshake request,
	// for HandshakeRate; nil means the TCP peer's IP. For a CONNECT it is
	// given the request that opened the connection (its RemoteAddr, Header
	// and URL's query). Behind trusted
	// proxies, ForwardedClientIP(their prefixes...) reads X-Forwarded-For,
	// which clients cannot forge past them.
	ClientIP func(r *http.Request) string
	// MaxRoomsPerSocket is how many rooms Socket.Join lets a socket be in,
	// its user's room and its own excepted; Join fails with ErrTooManyRooms
	// beyond. 0 means DefaultMaxRoomsPerSocket; -1 means no limit.
	MaxRoomsPerSocket int

	// ExpiryWarning is how long before a socket's token expires the socket
	// receives auth_expired ({expiresAt}); at expiresAt the Server closes
	// the socket's connection, unless the client sent reauthenticate with
	// a fresh token of the same user first. socket.io-client then
	// reconnects by itself, with a fresh token when its auth option is a
	// callback. 0 means DefaultExpiryWarning; a warning longer than the
	// token's remaining lifetime is sent at once.
	ExpiryWarning time.Duration

	// AckTimeout bounds EmitWithAck when its context has no deadline; 0
	// means DefaultAckTimeout.
	AckTimeout time.Duration
	// HandlerTimeout bounds the context handed to event handlers; 0 means
	// DefaultHandlerTimeout.
	HandlerTimeout time.Duration

	// ShutdownDrain is how long Shutdown spreads the closing of the
	// connections over (at most half of what is left of its context), in
	// batches every 100 ms, in random order, so that the clients, which
	// reconnect at once, do not all reach the other nodes in the same
	// instant. 0 means DefaultShutdownDrain; -1 closes them all at once.
	ShutdownDrain time.Duration

	// Broker carries emits between nodes; nil means a single node
	// (adapter.NewMemoryBroker). The Server never closes a Broker it is given.
	Broker adapter.Broker
	// Presence stores who is online; nil means a single node
	// (adapter.NewMemoryPresence).
	Presence adapter.Presence
	// Jobs keeps the latest state of every user's jobs and analyses (see
	// JobStates): a socket that connects is told where they stand, a
	// terminal event no socket received is delivered on the next connect,
	// progress never goes backwards, and a job whose lease ends is failed.
	// adapter.NewMemoryJobStore for one node, adapter.NewRedisJobStore
	// for a cluster (and the same store in every Emitter). nil (the
	// default) keeps no job state.
	Jobs adapter.JobStore

	// Recovery enables Socket.IO's connection-state recovery: a client
	// that lost its connection for at most Recovery reconnects, to any
	// node, to the same socket id and rooms, and receives the events it
	// missed, in order (socket.recovered is true). The handshake token is
	// verified again before anything is replayed. 0 (the default)
	// disables it. It needs a Broker that keeps a log of its messages
	// (adapter.Recoverer): with a nil Broker, a single node keeps the last
	// messages in memory (adapter.RecoveringMemoryBroker); a cluster needs
	// adapter.RedisBroker in streams mode.
	Recovery time.Duration

	// OnPresence is called once per user transition between offline and
	// online, in order, on a goroutine of the Server, never under its locks.
	// At most 100,000 transitions wait for it: a callback that falls that
	// far behind misses the next ones (logged). Nil means no callback.
	OnPresence func(ctx context.Context, ev PresenceEvent)
	// BroadcastPresence sends user_online and user_offline to connected
	// clients. False (the default) tells clients nothing about who else is
	// online.
	BroadcastPresence bool
	// PresenceVisible decides, when BroadcastPresence is set, whether viewer
	// may learn that subject came online or went offline. Nil lets every
	// user see every other user.
	PresenceVisible func(viewerID, subjectID string) bool

	// Logger receives structured logs; nil means no logs. Tokens and
	// payloads are never logged above Debug.
	Logger *slog.Logger
	// Now returns the current time, for payload timestamps; nil means
	// time.Now.
	Now func() time.Time
}

// MaxNamespaceLength is the longest namespace name accepted, in bytes.
const MaxNamespaceLength = 128

// checkNamespace reports what is wrong with a namespace name of
// Config.Namespaces, or nil.
func checkNamespace(name string) error {
	switch {
	case name == "/":
		return errors.New("is the main namespace, always served")
	case !strings.HasPrefix(name, "/"):
		return errors.New(`does not start with "/"`)
	case len(name) > MaxNamespaceLength:
		return fmt.Errorf("is longer than %d bytes", MaxNamespaceLength)
	case !utf8.ValidString(name):
		return errors.New("is not valid UTF-8")
	case strings.IndexFunc(name, unicode.IsControl) >= 0 || strings.ContainsAny(name, ",#*?["):
		return errors.New("has control characters or one of , # * ? [")
	}
	return nil
}

// normalize returns a copy of c with defaults applied, or every problem it
// has, joined.
func (c Config) normalize() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.Verifier == nil {
		bad("Verifier is required")
	}
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if !strings.HasPrefix(c.Path, "/") || strings.ContainsAny(c.Path, "?#") {
		bad("Path %q must start with / and have no query or fragment", c.Path)
	} else if !strings.HasSuffix(c.Path, "/") {
		c.Path += "/"
	}
	c.Namespaces = slices.Clone(c.Namespaces)
	for i, name := range c.Namespaces {
		if err := checkNamespace(name); err != nil {
			bad("Namespaces: %q %v", name, err)
		} else if slices.Contains(c.Namespaces[:i], name) {
			bad("Namespaces: %q is listed twice", name)
		}
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{TransportPolling, TransportWebSocket}
	}
	c.Transports = slices.Clone(c.Transports)
	for _, t := range c.Transports {
		if t != TransportPolling && t != TransportWebSocket {
			bad("unknown transport %q (want %q or %q)", t, TransportPolling, TransportWebSocket)
		}
	}
	switch c.Parser {
	case "":
		c.Parser = ParserDefault
	case ParserDefault, ParserMsgpack:
	default:
		bad("unknown parser %q (want %q or %q)", c.Parser, ParserDefault, ParserMsgpack)
	}
	for _, l := range []struct {
		name string
		v    *int
		def  int
	}{
		{"EventRate", &c.EventRate, DefaultEventRate},
		{"HandshakeRate", &c.HandshakeRate, DefaultHandshakeRate},
		{"MaxPendingConnections", &c.MaxPendingConnections, DefaultMaxPendingConnections},
		{"MaxConnectionsPerUser", &c.MaxConnectionsPerUser, DefaultMaxConnectionsPerUser},
		{"MaxRoomsPerSocket", &c.MaxRoomsPerSocket, DefaultMaxRoomsPerSocket},
	} {
		switch {
		case *l.v == 0:
			*l.v = l.def
		case *l.v < -1:
			bad("%s must be positive, 0 (the default) or -1 (no limit)", l.name)
		}
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PingInterval", &c.PingInterval, DefaultPingInterval},
		{"PingTimeout", &c.PingTimeout, DefaultPingTimeout},
		{"ConnectTimeout", &c.ConnectTimeout, DefaultConnectTimeout},
		{"AckTimeout", &c.AckTimeout, DefaultAckTimeout},
		{"HandlerTimeout", &c.HandlerTimeout, DefaultHandlerTimeout},
		{"ExpiryWarning", &c.ExpiryWarning, DefaultExpiryWarning},
		{"PollBodyTimeout", &c.PollBodyTimeout, DefaultPollBodyTimeout},
	}
	for _, d := range durations {
		orDefault(bad, d.name, d.v, d.def)
	}
	switch {
	case c.ShutdownDrain == 0:
		c.ShutdownDrain = DefaultShutdownDrain
	case c.ShutdownDrain < 0 && c.ShutdownDrain != -1:
		bad("ShutdownDrain must be positive, 0 (the default) or -1 (no drain)")
	}
	orDefault(bad, "MaxHTTPBufferSize", &c.MaxHTTPBufferSize, DefaultMaxHTTPBufferSize)
	orDefault(bad, "MaxBufferedBytes", &c.MaxBufferedBytes, DefaultMaxBufferedBytes)
	orDefault(bad, "MaxPayloadPackets", &c.MaxPayloadPackets, DefaultMaxPayloadPackets)
	c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("AllowedOrigins: %q is not scheme://host[:port]", o)
		}
	}
	switch {
	case c.Broker == nil && c.Recovery > 0:
		c.Broker = adapter.NewRecoveringMemoryBroker(0)
	case c.Broker == nil:
		c.Broker = adapter.NewMemoryBroker()
	}
	switch _, logs := c.Broker.(adapter.Recoverer); {
	case c.Recovery < 0:
		bad("Recovery: %v is negative", c.Recovery)
	case c.Recovery > 0 && !logs:
		bad("Recovery: the Broker keeps no log to recover from (leave Broker nil on a single node, or use adapter.RedisBroker in streams mode)")
	case c.Recovery > 0 && c.Recovery < time.Second:
		bad("Recovery: %v is shorter than a second", c.Recovery)
	}
	if c.Presence == nil {
		c.Presence = adapter.NewMemoryPresence()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, errors.Join(errs...)
}

// orDefault sets *v to def when it is 0, and reports a negative *v.
func orDefault[T int | int64 | time.Duration](bad func(string, ...any), name string, v *T, def T) {
	switch {
	case *v < 0:
		bad("%s must not be negative", name)
	case *v == 0:
		*v = def
	}
}
