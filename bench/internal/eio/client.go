package eio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Stages of a connection, named in Error.
const (
	StageDial    = "dial"    // TCP connect and WebSocket upgrade
	StageOpen    = "open"    // waiting for the Engine.IO open packet
	StageConnect = "connect" // waiting for the Socket.IO CONNECT answer
)

// Error is a failed Connect: the stage it failed in and why. A refused
// Socket.IO CONNECT is a *RefusedError instead.
type Error struct {
	Stage string
	Err   error
}

func (e *Error) Error() string { return "eio: " + e.Stage + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// RefusedError is the server's connect_error ("44{...}").
type RefusedError struct {
	Message string // the error's "message"
	Code    string // its "data.code", when there is one
}

func (e *RefusedError) Error() string {
	if e.Code == "" {
		return "eio: connect_error: " + e.Message
	}
	return "eio: connect_error: " + e.Message + " (" + e.Code + ")"
}

// ErrUnexpected is wrapped when the server sends a packet that has no place
// at that point of the handshake.
var ErrUnexpected = errors.New("eio: unexpected packet")

// DialerConfig configures a Dialer.
type DialerConfig struct {
	// URL is the server: http://host:port or ws://host:port (https and wss
	// too). A path in it is ignored; see Path.
	URL string
	// Path is the Socket.IO path; "" = "/socket.io/".
	Path string
	// Sources are local addresses to dial from, used round robin on the
	// index given to Connect, so that more connections fit than one address
	// has ephemeral ports. nil = the kernel chooses.
	Sources []net.IP
	// ReadBufferSize is the per-connection read buffer of the WebSocket;
	// 0 = 1024. Messages are read into pooled buffers, not this one.
	// A PollDialer does not use it.
	ReadBufferSize int
}

// Dialer opens Socket.IO connections over WebSocket. It is safe for
// concurrent use.
type Dialer struct {
	url string
	ws  []*websocket.Dialer
}

// NewDialer checks cfg and returns a Dialer.
func NewDialer(cfg DialerConfig) (*Dialer, error) {
	u, err := endpoint(cfg, "ws", "websocket")
	if err != nil {
		return nil, err
	}
	if cfg.ReadBufferSize == 0 {
		cfg.ReadBufferSize = 1024
	}
	d := &Dialer{url: u}
	pool := &sync.Pool{} // gorilla's write buffers, held only while writing
	newWS := func(nd *net.Dialer) *websocket.Dialer {
		return &websocket.Dialer{
			NetDialContext:  nd.DialContext,
			ReadBufferSize:  cfg.ReadBufferSize,
			WriteBufferSize: 1024,
			WriteBufferPool: pool,
		}
	}
	if len(cfg.Sources) == 0 {
		d.ws = append(d.ws, newWS(&net.Dialer{}))
	}
	for _, ip := range cfg.Sources {
		d.ws = append(d.ws, newWS(&net.Dialer{
			LocalAddr: &net.TCPAddr{IP: ip},
			Control:   bindNoPort,
		}))
	}
	return d, nil
}

// endpoint returns the Engine.IO URL of cfg for transport, with the
// scheme scheme ("ws" or "http") or its secure form.
func endpoint(cfg DialerConfig, scheme, transport string) (string, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return "", fmt.Errorf("eio: url: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = scheme
	case "https", "wss":
		u.Scheme = scheme + "s"
	default:
		return "", fmt.Errorf("eio: url %q: scheme must be http, https, ws or wss", cfg.URL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("eio: url %q: no host", cfg.URL)
	}
	u.Path = cfg.Path
	if u.Path == "" {
		u.Path = "/socket.io/"
	}
	u.RawPath = ""
	u.RawQuery = "EIO=4&transport=" + transport
	u.Fragment = ""
	return u.String(), nil
}

// URL is the WebSocket URL the Dialer connects to.
func (d *Dialer) URL() string { return d.url }

// ConnectPacket returns the Socket.IO CONNECT packet that authenticates
// with token: `40{"token":"<token>"}`. Make them once, before the clock
// starts; Connect does not modify it.
func ConnectPacket(token string) []byte {
	b, _ := json.Marshal(struct {
		Token string `json:"token"`
	}{token}) // a struct of one string always marshals
	return append([]byte("40"), b...)
}

// Connect dials the server from source address i (round robin), reads the
// Engine.IO open packet, sends connect (from ConnectPacket) and reads until
// the server's CONNECT ("40{"sid":...}") or connect_error, answering pings
// on the way. It runs in the calling goroutine and starts none. ctx bounds
// the whole handshake (its deadline and its cancellation).
//
// A failure is a *RefusedError (the server said no) or an *Error (the
// stage and cause); the connection is then closed. A failure because ctx
// ended wraps ctx's error (context.DeadlineExceeded also when the
// deadline's read timeout came first); Aborted tells.
func (d *Dialer) Connect(ctx context.Context, i int, connect []byte) (*Conn, error) {
	wd := d.ws[uint(i)%uint(len(d.ws))]
	ws, resp, err := wd.DialContext(ctx, d.url, nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		if cerr := ctxErr(ctx); cerr != nil {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return nil, &Error{Stage: StageDial, Err: err}
	}
	c := &Conn{ws: ws}
	ws.SetReadLimit(maxMessage)
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
		_ = ws.SetWriteDeadline(dl)
	}
	// Cancellation interrupts a blocked read through the deadline.
	stop := context.AfterFunc(ctx, func() {
		_ = ws.SetReadDeadline(time.Unix(1, 0))
		_ = ws.SetWriteDeadline(time.Unix(1, 0))
	})
	if err := c.handshake(connect); err != nil {
		stop()
		c.CloseNow()
		if cerr := ctxErr(ctx); cerr != nil {
			err = &Error{Stage: stageOf(err), Err: fmt.Errorf("%w (%w)", cerr, err)}
		}
		return nil, err
	}
	if !stop() { // ctx ended while the handshake finished
		c.CloseNow()
		return nil, &Error{Stage: StageConnect, Err: ctx.Err()}
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})
	return c, nil
}

// ctxErr is ctx.Err(), or context.DeadlineExceeded once the deadline has
// passed: a read deadline set from it can fire before ctx's own timer.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// Aborted reports whether err, from Connect, is due to the end of its ctx
// rather than to the server.
func Aborted(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func stageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Stage
	}
	return StageConnect
}

func (c *Conn) handshake(connect []byte) error {
	p, err := c.Next()
	if err != nil {
		return &Error{Stage: StageOpen, Err: err}
	}
	if p.Kind != Open {
		return &Error{Stage: StageOpen, Err: fmt.Errorf("%w: %v before open", ErrUnexpected, p.Kind)}
	}
	if err := c.Send(connect); err != nil {
		return &Error{Stage: StageConnect, Err: err}
	}
	for {
		p, err := c.Next()
		if err != nil {
			return &Error{Stage: StageConnect, Err: err}
		}
		switch p.Kind {
		case Ping:
			if err := c.Pong(); err != nil {
				return &Error{Stage: StageConnect, Err: err}
			}
		case Noop:
		case Connect:
			if len(p.Namespace) == 0 {
				return nil
			}
		case ConnectError:
			if len(p.Namespace) == 0 {
				return parseConnectError(p.Data)
			}
		default:
			return &Error{Stage: StageConnect, Err: fmt.Errorf("%w: %v before connect", ErrUnexpected, p.Kind)}
		}
	}
}

func parseConnectError(data []byte) error {
	var e struct {
		Message string `json:"message"`
		Data    struct {
			Code string `json:"code"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		// Old servers send a string; keep what we can.
		return &RefusedError{Message: string(data)}
	}
	return &RefusedError{Message: e.Message, Code: e.Data.Code}
}

// maxMessage bounds one WebSocket message (the bench payload with a large
// pad still fits).
const maxMessage = 16 << 20

// bufPool holds the buffers messages are read into: a Conn takes one when a
// message arrives and gives it back at the next Next, so idle connections
// hold none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 512); return &b }}

// Conn is one connected Socket.IO client.
type Conn struct {
	ws  *websocket.Conn
	buf *[]byte // the current message's buffer, nil between messages
}

// Next reads the next text message and parses it. The Packet's bytes are
// valid until the next call. Binary messages (attachments) are skipped. A
// packet that does not parse is returned with its error and Kind Invalid;
// the connection stays usable. Any other error is final: a
// *websocket.CloseError when the server closed the WebSocket, else the
// read error.
func (c *Conn) Next() (Packet, error) {
	if c.buf != nil {
		bufPool.Put(c.buf)
		c.buf = nil
	}
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			return Packet{ID: -1}, err
		}
		if typ != websocket.TextMessage {
			continue // NextReader discards the rest
		}
		c.buf = bufPool.Get().(*[]byte)
		b, err := readAll(r, c.buf)
		if err != nil {
			return Packet{ID: -1}, err
		}
		return Parse(b)
	}
}

// readAll reads r to the end into *buf, growing it when needed.
func readAll(r io.Reader, buf *[]byte) ([]byte, error) {
	b := (*buf)[:cap(*buf)]
	n := 0
	for {
		if n == len(b) {
			nb := make([]byte, 2*len(b))
			copy(nb, b)
			b, *buf = nb, nb
		}
		m, err := r.Read(b[n:])
		n += m
		if err == io.EOF {
			return b[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var (
	pongPacket = []byte("3")
	closeFrame = websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
)

// Send writes one text message (a complete Engine.IO packet).
func (c *Conn) Send(packet []byte) error {
	return c.ws.WriteMessage(websocket.TextMessage, packet)
}

// Pong answers the server's ping.
func (c *Conn) Pong() error { return c.Send(pongPacket) }

// SendClose starts the WebSocket closing handshake: it sends a close frame
// (normal closure), waiting at most until deadline. The reader then gets
// the server's close frame as a *websocket.CloseError. Safe from any
// goroutine.
func (c *Conn) SendClose(deadline time.Time) error {
	return c.ws.WriteControl(websocket.CloseMessage, closeFrame, deadline)
}

// CloseNow closes the TCP connection at once. Safe from any goroutine, and
// more than once.
func (c *Conn) CloseNow() {
	_ = c.ws.Close()
	// c.buf goes back to the pool only from the reading goroutine (Next).
}

// Close ends a connection that no other goroutine reads: it sends a close
// frame, reads until the server's close frame or until wait has passed,
// and closes the TCP connection. It reports whether the server answered.
func (c *Conn) Close(wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	answered := false
	if c.SendClose(deadline) == nil {
		_ = c.ws.SetReadDeadline(deadline)
		for {
			_, err := c.Next()
			if err == nil || errors.Is(err, ErrMalformed) {
				continue
			}
			var ce *websocket.CloseError
			answered = errors.As(err, &ce)
			break
		}
	}
	c.CloseNow()
	c.Release()
	return answered
}

// Release gives the current message buffer back to the pool; call it from
// the reading goroutine once it stops calling Next.
func (c *Conn) Release() {
	if c.buf != nil {
		bufPool.Put(c.buf)
		c.buf = nil
	}
}

// IsNormalClose reports whether err, from Next, is the server's close frame
// answering ours (or announcing a normal close).
func IsNormalClose(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived)
}
