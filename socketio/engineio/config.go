package engineio

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// Transport names.
const (
	Polling   = "polling"
	WebSocket = "websocket"
)

// Defaults for the zero values of Config fields. The protocol's own are
// those of Node's engine.io 6.6.
const (
	DefaultPingInterval      = 25 * time.Second
	DefaultPingTimeout       = 20 * time.Second
	DefaultUpgradeTimeout    = 10 * time.Second
	DefaultMaxPayload        = 1_000_000
	DefaultMaxBufferedBytes  = 4 << 20
	DefaultPollBodyTimeout   = 20 * time.Second
	DefaultMaxPayloadPackets = 10_000
	// DefaultCompressionThreshold is the smallest long-polling response
	// that is compressed when the client accepts gzip or deflate.
	DefaultCompressionThreshold = 1024
)

// pollCloseTimeout is how long a long-polling session closed by the server
// waits for the client's next poll, to tell it (Node's closeTimeout).
const pollCloseTimeout = 30 * time.Second

// ErrInvalidConfig wraps every problem NewServer finds in a Config.
var ErrInvalidConfig = errors.New("engineio: invalid config")

// Config configures a Server. The zero value of every field has a
// documented meaning; NewServer copies the Config.
type Config struct {
	// PingInterval is how often the server pings a client; 0 means
	// DefaultPingInterval.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong before it
	// closes the session ("ping timeout"); 0 means DefaultPingTimeout.
	PingTimeout time.Duration
	// UpgradeTimeout bounds an upgrade from long-polling to WebSocket,
	// from the WebSocket's handshake to the client's upgrade packet; the
	// WebSocket is closed past it and the session goes on polling. 0 means
	// DefaultUpgradeTimeout.
	UpgradeTimeout time.Duration
	// MaxPayload is the largest message a client may send, in bytes: a
	// WebSocket message, or a long-polling request body. 0 means
	// DefaultMaxPayload (Node's maxHttpBufferSize).
	MaxPayload int64
	// Transports lists the transports served, Polling and WebSocket; nil
	// means both, clients starting with long-polling and upgrading.
	Transports []string
	// PerMessageDeflate compresses WebSocket messages of at least 1 KiB
	// (RFC 7692, no context takeover). False, the default, saves the CPU
	// and the memory it costs.
	PerMessageDeflate bool
	// CompressionThreshold is the smallest long-polling response that is
	// gzip- or deflate-compressed for a client that accepts it, as Node's
	// httpCompression does; 0 means DefaultCompressionThreshold and -1
	// disables compression.
	CompressionThreshold int
	// MaxBufferedBytes bounds the packets that wait to be written to one
	// session, in bytes (WebSocket frames, or long-polling payload). A
	// client that does not read fast enough to stay under it is closed
	// ("transport error") and counted as a slow consumer. 0 means
	// DefaultMaxBufferedBytes.
	MaxBufferedBytes int64
	// PollBodyTimeout bounds how long a long-polling POST may take to
	// deliver its body; the request is cut past it and its session
	// closed. 0 means DefaultPollBodyTimeout.
	PollBodyTimeout time.Duration
	// MaxPayloadPackets bounds the packets of one long-polling POST: the
	// request answers 400 past it and its session is closed. 0 means
	// DefaultMaxPayloadPackets.
	MaxPayloadPackets int

	// AllowOrigin, when set, decides which cross-origin requests get the
	// CORS headers (with credentials) and preflight answers that browsers
	// need to reach the server from another origin. Nil sends none. It
	// does not refuse anything: refusing a request is the caller's
	// (see Server.ServeHTTP).
	AllowOrigin func(origin string) bool

	// OnSession is called for every new session, before its open packet
	// leaves, on the goroutine of the request that made it; its Handler
	// receives the session's messages and its close. Required.
	OnSession func(s *Session) Handler

	// Logger receives the server's logs; nil means none.
	Logger *slog.Logger
}

func (c Config) normalize() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.OnSession == nil {
		bad("OnSession is required")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PingInterval", &c.PingInterval, DefaultPingInterval},
		{"PingTimeout", &c.PingTimeout, DefaultPingTimeout},
		{"UpgradeTimeout", &c.UpgradeTimeout, DefaultUpgradeTimeout},
		{"PollBodyTimeout", &c.PollBodyTimeout, DefaultPollBodyTimeout},
	} {
		switch {
		case *d.v < 0:
			bad("%s must not be negative", d.name)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	switch {
	case c.MaxPayload < 0:
		bad("MaxPayload must not be negative")
	case c.MaxPayload == 0:
		c.MaxPayload = DefaultMaxPayload
	}
	switch {
	case c.MaxBufferedBytes < 0:
		bad("MaxBufferedBytes must not be negative")
	case c.MaxBufferedBytes == 0:
		c.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	switch {
	case c.MaxPayloadPackets < 0:
		bad("MaxPayloadPackets must not be negative")
	case c.MaxPayloadPackets == 0:
		c.MaxPayloadPackets = DefaultMaxPayloadPackets
	}
	switch {
	case c.CompressionThreshold < -1:
		bad("CompressionThreshold must be positive, 0 (the default) or -1 (off)")
	case c.CompressionThreshold == 0:
		c.CompressionThreshold = DefaultCompressionThreshold
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{Polling, WebSocket}
	}
	c.Transports = slices.Clone(c.Transports)
	for _, t := range c.Transports {
		if t != Polling && t != WebSocket {
			bad("unknown transport %q (want %q or %q)", t, Polling, WebSocket)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, errors.Join(errs...)
}
