package socketio

import (
	"net/http"
	"net/url"
	"sync"

	"github.com/herald-rt/herald/internal/timers"
	"github.com/herald-rt/herald/socketio/engineio"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// client is one Engine.IO session seen by Socket.IO: it decodes the
// session's packets, routes them to its sockets (one per namespace it
// joined) and encodes what they send. It is the session's
// engineio.Handler, so its OnMessage and OnClose calls never overlap.
type client struct {
	srv     *Server
	conn    *engineio.Session
	ip      string         // the client's address, for Config.HandshakeRate
	decoder parser.Decoder // used by OnMessage only

	attachments int64 // bytes of the binary packet being received (OnMessage only)

	connectTimer timers.Timer

	mu      sync.Mutex
	sockets []*Socket // one per namespace joined; usually one
	closed  bool
	pending bool // counted in Server.pending: no namespace joined yet
}

// onSession is the engine's OnSession: a new Engine.IO session must join a
// namespace within Config.ConnectTimeout, or it is closed.
func (s *Server) onSession(conn *engineio.Session) engineio.Handler {
	c := &client{srv: s, conn: conn, decoder: s.parser.NewDecoder()}
	r := &http.Request{RemoteAddr: conn.RemoteAddr(), Header: conn.Header(), URL: &url.URL{}}
	if s.cfg.ClientIP != nil {
		r.URL.RawQuery = conn.Query().Encode()
	}
	c.ip = s.clientIP(r)
	c.pending = true
	s.pending.add(c.ip)
	s.timers.Schedule(&c.connectTimer, s.cfg.ConnectTimeout, func() {
		c.mu.Lock()
		idle := len(c.sockets) == 0 && !c.closed
		c.mu.Unlock()
		if idle {
			s.log.Debug("no namespace joined in time: closing", "sid", conn.ID())
			conn.Close()
		}
	})
	return c
}

// OnMessage decodes one Engine.IO message; a complete packet is routed as
// Node's socket.io routes it: a CONNECT for a namespace not joined yet
// connects, any other packet goes to its namespace's socket, and anything
// else (a packet for a namespace not joined, a second CONNECT, a
// CONNECT_ERROR from the client, a packet that does not decode) closes the
// connection.
func (c *client) OnMessage(_ *engineio.Session, data []byte, binary bool) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	if c.srv.cfg.Parser == ParserDefault && (binary || len(data) > 0 && (data[0] == '5' || data[0] == '6')) {
		// Binary packets and their attachments: only from a client that
		// joined a namespace, and at most MaxHTTPBufferSize of them
		// held at once.
		c.mu.Lock()
		joined := len(c.sockets) > 0
		c.mu.Unlock()
		if c.attachments += int64(len(data)); !joined || c.attachments > c.srv.cfg.MaxHTTPBufferSize {
			c.srv.log.Debug("binary packet refused: closing the connection", "sid", c.conn.ID(), "joined", joined)
			c.close()
			return
		}
	}
	p, err := c.decoder.Add(parser.Message{Data: data, Binary: binary})
	if err != nil {
		c.srv.log.Debug("invalid packet: closing the connection", "sid", c.conn.ID(), "err", err)
		c.close()
		return
	}
	if p == nil {
		return // a binary packet waits for its attachments
	}
	c.attachments = 0
	sock := c.socketIn(p.Nsp)
	switch {
	case sock == nil && p.Type == parser.Connect:
		c.srv.connect(c, p)
	case sock != nil && p.Type != parser.Connect && p.Type != parser.ConnectError:
		sock.onPacket(p)
	default:
		c.srv.log.Debug("unexpected packet: closing the connection", "sid", c.conn.ID(), "type", p.Type, "nsp", p.Nsp)
		c.close()
	}
}

// OnClose disconnects the client's sockets with the session's reason.
func (c *client) OnClose(_ *engineio.Session, reason string) {
	c.srv.timers.Stop(&c.connectTimer)
	c.mu.Lock()
	c.closed = true
	socks := c.sockets
	c.sockets = nil
	c.joinedLocked()
	c.mu.Unlock()
	c.decoder.Reset()
	for _, sock := range socks {
		sock.onClose(reason)
	}
}

// close closes the connection, as Node's client.close(): the sockets
// disconnect at once ("forced server close"), the session gracefully.
func (c *client) close() {
	c.conn.Close()
	c.mu.Lock()
	c.closed = true
	socks := c.sockets
	c.sockets = nil
	c.mu.Unlock()
	for _, sock := range socks {
		sock.onClose(reasonForcedServerClose)
	}
}

func (c *client) socketIn(nsp string) *Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sock := range c.sockets {
		if sock.nsp.name == nsp {
			return sock
		}
	}
	return nil
}

// addSocket attaches a connected socket; it reports false when the client
// has closed meanwhile.
func (c *client) addSocket(sock *Socket) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.sockets = append(c.sockets, sock)
	c.srv.timers.Stop(&c.connectTimer)
	c.joinedLocked()
	return true
}

// joinedLocked ends the client's count as a pending connection. c.mu is
// held.
func (c *client) joinedLocked() {
	if c.pending {
		c.pending = false
		c.srv.pending.done(c.ip)
	}
}

func (c *client) removeSocket(sock *Socket) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.sockets {
		if x == sock {
			c.sockets = append(c.sockets[:i], c.sockets[i+1:]...)
			return
		}
	}
}

// send encodes p and queues it on the connection.
func (c *client) send(p *parser.Packet) error {
	msgs, err := c.srv.parser.Encode(p)
	if err != nil {
		return err
	}
	return c.conn.Send(engineMessages(msgs)...)
}

// engineMessages turns a parser's output into Engine.IO messages.
func engineMessages(msgs []parser.Message) []*engineio.Message {
	out := make([]*engineio.Message, len(msgs))
	for i, m := range msgs {
		if m.Binary {
			out[i] = engineio.NewBinaryMessage(m.Data)
		} else {
			out[i] = engineio.NewTextMessage(m.Data)
		}
	}
	return out
}
