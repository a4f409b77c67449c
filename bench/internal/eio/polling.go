package eio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// HTTP long-polling (transport=polling, never upgraded): the handshake GET
// answers the open packet, the client POSTs what it sends, and a loop of
// GETs brings what the server sends, each answer a payload of packets
// joined by "\x1e" (CutPayload).
//
// A PollConn has at most one request in flight from its reading goroutine
// (its GET, or a POST in between: the pong), so N connections need about N
// TCP connections, which keep-alive reuses request after request.

// ErrClosed is what PollConn.Next returns once the server's close packet
// came: the session is over.
var ErrClosed = errors.New("eio: session closed by the server")

// HTTPError is a long-polling request that the server answered with a
// status other than 200.
type HTTPError struct {
	Method string
	Status int
	Body   string // its start
}

func (e *HTTPError) Error() string {
	s := "eio: " + e.Method + ": HTTP " + strconv.Itoa(e.Status)
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// pollIdleTimeout is how long a kept-alive connection may idle in the pool:
// shorter than the 5 s of Node's http.Server keepAliveTimeout, so that the
// client, not the server, closes an idle connection and no POST goes out
// on a connection the server is closing (Go retries only idempotent
// requests on one).
const pollIdleTimeout = 4 * time.Second

// maxIdlePerHost bounds the idle connections of a PollDialer's transport.
// The bound that counts is that a connection has one request in flight at
// most (see above), so the pool never holds more than about one connection
// per PollConn; net/http's default of 2 would close and redial instead.
const maxIdlePerHost = 1 << 20

// PollDialer opens Socket.IO connections over HTTP long-polling only. It
// has one http.Transport per source address, shared by its connections;
// keep-alive is on. It is safe for concurrent use.
type PollDialer struct {
	url string
	tr  []*http.Transport
	hc  []*http.Client
}

// NewPollDialer checks cfg and returns a PollDialer; cfg.URL may be http(s)
// or ws(s), the requests are HTTP. cfg.ReadBufferSize is not used.
func NewPollDialer(cfg DialerConfig) (*PollDialer, error) {
	u, err := endpoint(cfg, "http", "polling")
	if err != nil {
		return nil, err
	}
	d := &PollDialer{url: u}
	newClient := func(nd *net.Dialer) {
		tr := &http.Transport{
			// No Proxy: the servers are on loopback, whatever the
			// environment says.
			DialContext:         nd.DialContext,
			MaxIdleConnsPerHost: maxIdlePerHost,
			IdleConnTimeout:     pollIdleTimeout,
			// No Accept-Encoding, so that neither server compresses
			// (both would gzip payloads from 1 KiB for a client that
			// accepts it, as a browser does) and the run measures the
			// deliveries, not zlib.
			DisableCompression: true,
		}
		d.tr = append(d.tr, tr)
		d.hc = append(d.hc, &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		})
	}
	if len(cfg.Sources) == 0 {
		newClient(&net.Dialer{})
	}
	for _, ip := range cfg.Sources {
		newClient(&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Control: bindNoPort})
	}
	return d, nil
}

// URL is the long-polling URL the PollDialer connects to (without sid).
func (d *PollDialer) URL() string { return d.url }

// CloseIdleConnections closes the kept-alive connections that no request
// uses; call it once every PollConn has ended.
func (d *PollDialer) CloseIdleConnections() {
	for _, tr := range d.tr {
		tr.CloseIdleConnections()
	}
}

// Connect opens a long-polling session from source address i (round
// robin): the handshake GET (the open packet), a POST of connect (from
// ConnectPacket), then GETs until the server's CONNECT ("40{"sid":...}")
// or connect_error, answering pings on the way. Packets that came after
// the CONNECT in its payload are kept for Next. It runs in the calling
// goroutine and starts none (net/http's connections have their own). ctx
// bounds the handshake.
//
// Failures are as for Dialer.Connect: a *RefusedError, or an *Error with
// the stage (StageDial: the handshake GET), wrapping ctx's error when ctx
// ended (Aborted tells). After a failure past the handshake GET, the
// session is closed with a close packet, best effort.
func (d *PollDialer) Connect(ctx context.Context, i int, connect []byte) (*PollConn, error) {
	c := &PollConn{hc: d.hc[uint(i)%uint(len(d.hc))]}
	if err := c.handshake(ctx, d.url, connect); err != nil {
		c.Release()
		if c.url != "" && ctx.Err() == nil {
			_ = c.post(ctx, closePacket) // leave no session behind
		}
		if cerr := ctxErr(ctx); cerr != nil && !errors.Is(err, cerr) {
			err = &Error{Stage: stageOf(err), Err: fmt.Errorf("%w (%w)", cerr, err)}
		}
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

func (c *PollConn) handshake(ctx context.Context, base string, connect []byte) error {
	body, err := c.get(ctx, base)
	if err != nil {
		return &Error{Stage: StageDial, Err: err}
	}
	p, _, _, err := CutPayload(body)
	if err != nil {
		return &Error{Stage: StageOpen, Err: err}
	}
	if p.Kind != Open {
		return &Error{Stage: StageOpen, Err: fmt.Errorf("%w: %v before open", ErrUnexpected, p.Kind)}
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(p.Data, &open); err != nil || open.SID == "" {
		return &Error{Stage: StageOpen, Err: fmt.Errorf("%w: open packet without a sid", ErrMalformed)}
	}
	c.Release() // the rest of the handshake answer, if any, is dropped
	c.url = base + "&sid=" + url.QueryEscape(open.SID)
	if err := c.post(ctx, connect); err != nil {
		return &Error{Stage: StageConnect, Err: err}
	}
	for {
		p, err := c.next(ctx)
		if err != nil {
			return &Error{Stage: StageConnect, Err: err}
		}
		switch p.Kind {
		case Ping:
			if err := c.post(ctx, pongPacket); err != nil {
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

// PollConn is one connected long-polling Socket.IO client. See the package
// documentation for what may be called concurrently.
type PollConn struct {
	hc  *http.Client
	url string // the session's: with its sid
	// ctx ends with CloseNow, which cuts the request in flight.
	ctx    context.Context
	cancel context.CancelFunc

	// The reading goroutine's: the payload being returned.
	buf    *[]byte // its buffer, nil between payloads
	rest   []byte  // its packets not returned yet
	more   bool    // rest holds a packet
	closed bool    // the server's close packet came
}

// Next returns the next packet: from the current payload, else from a new
// GET, which waits until the server has something to send. The Packet's
// bytes are valid until the next call. A packet that does not parse is
// returned with its error and Kind Invalid; the connection stays usable.
// The server's close packet ends the session: Next returns ErrClosed then
// and from then on. Any other error is final: an *HTTPError when the server
// refused the GET (an unknown sid after a close, for one), else the
// request's error.
func (c *PollConn) Next() (Packet, error) { return c.next(c.ctx) }

func (c *PollConn) next(ctx context.Context) (Packet, error) {
	for !c.more {
		if c.closed {
			return Packet{ID: -1}, ErrClosed
		}
		c.Release()
		body, err := c.get(ctx, c.url)
		if err != nil {
			return Packet{ID: -1}, err
		}
		c.rest, c.more = body, true
	}
	p, rest, more, err := CutPayload(c.rest)
	c.rest, c.more = rest, more
	if p.Kind == Close {
		c.closed, c.rest, c.more = true, nil, false
		return Packet{ID: -1}, ErrClosed
	}
	return p, err
}

// get GETs u and returns its body, read into c.buf.
func (c *PollConn) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, httpError(resp)
	}
	c.buf = bufPool.Get().(*[]byte)
	b, err := readAll(io.LimitReader(resp.Body, maxMessage+1), c.buf)
	if err != nil {
		return nil, err
	}
	if len(b) > maxMessage {
		return nil, fmt.Errorf("eio: GET: payload larger than %d bytes", maxMessage)
	}
	return b, nil
}

// post POSTs packet, a payload of one packet, to the session.
func (c *PollConn) post(ctx context.Context, packet []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(packet))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8") // as socket.io-client's
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(resp)
	}
	// Read the "ok" to the end, so that the connection is reused.
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return err
}

// httpError reads the start of resp's body into an *HTTPError.
func httpError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return &HTTPError{Method: resp.Request.Method, Status: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
}

// Send POSTs one packet (a complete Engine.IO packet).
func (c *PollConn) Send(packet []byte) error { return c.post(c.ctx, packet) }

// Pong answers the server's ping.
func (c *PollConn) Pong() error { return c.Send(pongPacket) }

// closePacket is the Engine.IO close packet.
var closePacket = []byte("1")

// SendClose POSTs the close packet, waiting at most until deadline: the
// server ends the session and answers a GET parked meanwhile with a noop
// (Node and herald do), so the reader's next GET fails with an
// *HTTPError. Safe from any goroutine; a POST of the reader in flight at
// the same time is an overlap to the server, which then ends the session
// as well.
func (c *PollConn) SendClose(deadline time.Time) error {
	ctx, cancel := context.WithDeadline(c.ctx, deadline)
	defer cancel()
	return c.post(ctx, closePacket)
}

// CloseNow cuts the request in flight and any later one; the server sees
// its connection close. Safe from any goroutine, and more than once.
func (c *PollConn) CloseNow() { c.cancel() }

// Release gives the current payload's buffer back to the pool (the packets
// of it not returned yet are dropped); call it from the reading goroutine
// once it stops calling Next.
func (c *PollConn) Release() {
	c.rest, c.more = nil, false
	if c.buf != nil {
		bufPool.Put(c.buf)
		c.buf = nil
	}
}
