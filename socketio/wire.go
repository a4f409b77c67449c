package socketio

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// herald's own write path for WebSocket connections.
//
// Upstream (servers/engine v3.0.5) writes every packet through a chain of
// per-packet work: an engine packet, emitter events, a write queue served
// by a goroutine per connection, the packet encoder, and one write system
// call per message. In a fan-out that chain was about a third of the CPU
// and the system calls another quarter (BENCHMARKS.md). herald keeps
// upstream for everything but room deliveries, and for those writes the
// WebSocket frame itself, the same bytes for every recipient, through the
// connection below.
//
// wireConn is the hijacked TCP connection of a WebSocket session, one that
// opened as a WebSocket or one that upgraded to it (wire_upgrade.go).
// Everything written to it, by upstream's WebSocket library or by herald,
// is queued in order, and one writer at a time hands the queue to the
// kernel: upstream's goroutine when it writes with nothing in flight (it
// may block, as it always has), otherwise a goroutine herald starts for its
// frames, which exists only while there is something to write. Messages
// that arrive while a write is in progress leave together in the next one,
// and a herald caller never waits for a slow client. A frame from herald
// goes in only where it cannot reorder or split anything of upstream's
// (writeFrame).
//
// A handshake's messages leave in two writes instead of four (hold): the
// upgrade response with the OPEN packet, and the Socket.IO CONNECT answer
// with the packets herald's connection handler sends (the "authenticated"
// greeting). Each write the server saves is a system call here and a
// wake-up and a read on the client.
type wireConn struct {
	net.Conn
	gate *connGate

	// pending counts upstream's engine packets created (the "packetCreate"
	// event, counted by herald from registration on, plus the OPEN packet
	// that precedes it; for an upgrade, what wire_upgrade.go counts) and
	// not yet written here as complete WebSocket messages. While it is not
	// zero, herald's frames go through upstream too, behind those packets.
	pending atomic.Int64

	mu   sync.Mutex
	cond sync.Cond // signalled when the flusher writes or stops
	// out is what was accepted and not yet handed to the kernel, written
	// with one writev: herald's frames by reference (one frame serves
	// every recipient and is never changed), upstream's bytes copied.
	out      net.Buffers
	outLen   int
	spare    net.Buffers // out's array, for the next batch
	flushing bool        // a flusher goroutine owns the write side
	closed   bool
	err      error // the first write error; every later write returns it
	frames   frameTracker
	onClose  func() // run by Close, if set

	// While holds > 0, or untilIdle and pending > 0, writes wait in out
	// (see hold). holdTimer ends any hold after wireHoldMax.
	holds     int
	untilIdle bool
	holdTimer *time.Timer

	writes int // writes handed to the kernel (for tests)
}

// wireMaxBuffered is how much a connection holds before upstream's writes
// wait (as they would in a blocked write system call) and herald's frames
// go through upstream's queue instead.
const wireMaxBuffered = 1 << 20

// wireCloseFlush bounds how long Close waits to write what is buffered.
const wireCloseFlush = 2 * time.Second

// wireHoldMax bounds how long a hold keeps writes back, whatever happens
// to the handshake that asked for it: a hold only groups writes, it never
// has to wait for anything to stay correct.
const wireHoldMax = 50 * time.Millisecond

func newWireConn(c net.Conn, g *connGate) *wireConn {
	w := &wireConn{Conn: c, gate: g}
	w.cond.L = &w.mu
	w.pending.Store(1) // the OPEN packet, created before herald listens
	return w
}

// holdUntilIdle keeps writes back until upstream has written every packet
// it created (pending is zero): at the upgrade, the response then leaves
// with the OPEN packet.
func (c *wireConn) holdUntilIdle(max time.Duration) {
	c.mu.Lock()
	c.untilIdle = true
	c.armHoldLocked(max)
	c.mu.Unlock()
}

// hold keeps writes back until the matching release, and after it until
// upstream has written every packet created so far. herald holds from a
// successful authentication to the end of its connection handler, so that
// the CONNECT answer and the greeting leave in one write.
func (c *wireConn) hold(max time.Duration) {
	c.mu.Lock()
	c.holds++
	c.armHoldLocked(max)
	c.mu.Unlock()
}

// release ends one hold (an unmatched release does nothing).
func (c *wireConn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holds == 0 {
		return
	}
	c.holds--
	if c.holds == 0 {
		c.untilIdle = true
		c.settleLocked()
	}
}

// armHoldLocked ends every hold after max (wireHoldMax but in tests).
func (c *wireConn) armHoldLocked(max time.Duration) {
	if c.holdTimer == nil {
		c.holdTimer = time.AfterFunc(max, c.endHold)
	} else {
		c.holdTimer.Reset(max)
	}
}

// holdingLocked reports whether writes are kept back now.
func (c *wireConn) holdingLocked() bool {
	return c.holds > 0 || (c.untilIdle && c.pending.Load() != 0)
}

// settleLocked ends the hold if nothing keeps it any more, and writes what
// it kept, from the calling goroutine, unless a writer is in flight.
func (c *wireConn) settleLocked() {
	if c.holdingLocked() {
		return
	}
	c.untilIdle = false
	c.holdTimer.Stop()
	if c.outLen > 0 && !c.flushing && c.err == nil && !c.closed {
		c.flushing = true
		c.drainLocked()
	}
}

// endHold, after wireHoldMax, drops every hold (a handshake that failed
// between hold and release, a packet upstream never wrote) and writes.
func (c *wireConn) endHold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holds, c.untilIdle = 0, false
	c.settleLocked()
}

// Read waits for the connection's gate (see gate.go), then reads.
func (c *wireConn) Read(p []byte) (int, error) {
	c.gate.wait()
	return c.Conn.Read(p)
}

// Write takes bytes from upstream's WebSocket library, whose writes may
// block. With nothing in flight it writes p itself, as the bare connection
// would (no copy, no goroutine), then whatever herald appended meanwhile;
// otherwise p joins the buffer, which the writer in flight takes next. It
// waits only while the connection holds wireMaxBuffered bytes.
func (c *wireConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closed && c.outLen >= wireMaxBuffered {
		c.cond.Wait()
	}
	if c.err != nil {
		defer c.mu.Unlock()
		return 0, c.err
	}
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	if n := c.frames.feed(p); n > 0 {
		c.pending.Add(-int64(n))
	}
	if c.holds > 0 || c.untilIdle {
		if c.holdingLocked() && c.outLen+len(p) < wireMaxBuffered {
			c.appendLocked(append([]byte(nil), p...)) // the caller reuses p
			c.mu.Unlock()
			return len(p), nil
		}
		c.holds, c.untilIdle = 0, false
		c.holdTimer.Stop()
		if !c.flushing {
			// Write p behind what was held, in this goroutine: p is
			// written before this call returns, so it needs no copy.
			c.appendLocked(p)
			c.flushing = true
			c.drainLocked()
			err := c.err
			c.mu.Unlock()
			if err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	if c.flushing {
		c.appendLocked(append([]byte(nil), p...)) // the caller reuses p
		c.mu.Unlock()
		return len(p), nil
	}
	c.flushing = true
	c.writes++
	c.mu.Unlock()
	_, err := c.Conn.Write(p)
	c.mu.Lock()
	c.failLocked(err)
	c.drainLocked()
	err = c.err
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// writeFrame appends a complete WebSocket frame from herald and reports
// whether it did; it never waits for the network. It refuses, so that the
// caller goes through upstream, when upstream has packets not yet written
// (the frame would overtake them), when upstream is in the middle of a
// message (the frame would split it), when the connection is full, failed
// or closed.
func (c *wireConn) writeFrame(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil || c.closed || c.pending.Load() != 0 || !c.frames.atBoundary() || c.outLen >= wireMaxBuffered {
		return false
	}
	c.appendLocked(frame)
	if !c.flushing && !c.holdingLocked() {
		c.flushing = true
		go c.flush()
	}
	return true
}

// appendLocked queues p, which nobody may change any more.
func (c *wireConn) appendLocked(p []byte) {
	if c.out == nil {
		c.out, c.spare = c.spare, nil
	}
	c.out = append(c.out, p)
	c.outLen += len(p)
}

// flush is the writer goroutine herald starts for its frames.
func (c *wireConn) flush() {
	c.mu.Lock()
	c.drainLocked()
	c.mu.Unlock()
}

// drainLocked, called by the writer in flight with c.mu held, writes the
// buffer until it is empty or a write fails, then gives up the write side.
func (c *wireConn) drainLocked() {
	for c.outLen > 0 && c.err == nil {
		out := c.out
		c.out, c.outLen = nil, 0
		c.writes++
		c.mu.Unlock()
		batch := out
		_, err := batch.WriteTo(c.Conn) // consumes batch, not out
		clear(out)                      // let go of the frames
		c.mu.Lock()
		if c.spare == nil && cap(out) <= 1024 {
			c.spare = out[:0]
		}
		c.failLocked(err)
		c.cond.Broadcast()
	}
	c.flushing = false
	c.cond.Broadcast()
}

// failLocked records the first write error and closes the connection: the
// reader then fails too, and upstream closes the session as it does when
// its own write fails.
func (c *wireConn) failLocked(err error) {
	if err == nil || c.err != nil {
		return
	}
	c.err = err
	c.out, c.outLen = nil, 0
	_ = c.Conn.Close()
}

// Close writes what is buffered, held or not, for at most wireCloseFlush,
// then closes the connection.
func (c *wireConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	if c.onClose != nil {
		defer c.onClose()
	}
	c.holds, c.untilIdle = 0, false
	if c.holdTimer != nil {
		c.holdTimer.Stop()
	}
	if c.outLen > 0 && !c.flushing && c.err == nil { // what a hold kept
		c.flushing = true
		_ = c.Conn.SetWriteDeadline(time.Now().Add(wireCloseFlush))
		c.drainLocked()
	}
	if c.flushing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(wireCloseFlush))
		for c.flushing {
			c.cond.Wait()
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// SetWriteDeadline does nothing: writes happen later, in the flusher. A
// client that stops reading is bounded by the heartbeat, which closes the
// connection, and Close by wireCloseFlush.
func (c *wireConn) SetWriteDeadline(time.Time) error { return nil }

// SetDeadline sets the read deadline only (see SetWriteDeadline).
func (c *wireConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

// appendTextFrame appends an unmasked, final WebSocket text frame holding
// the Engine.IO MESSAGE packet ("4") of payload, as a server sends it.
func appendTextFrame(b []byte, payload []byte) []byte {
	b = appendFrameHeader(b, 0x81, 1+len(payload)) // FIN, text
	b = append(b, '4')
	return append(b, payload...)
}

// appendFrameHeader appends the header of an unmasked frame whose first
// byte is b0 (FIN, RSV and opcode) and whose payload is n bytes long.
func appendFrameHeader(b []byte, b0 byte, n int) []byte {
	b = append(b, b0)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126)
		return binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// frameTracker follows what a server writes on a WebSocket connection, in
// arbitrary pieces: the HTTP upgrade response, then frames. It counts the
// data messages completed and knows whether the stream is between messages.
type frameTracker struct {
	// head counts the bytes of "\r\n\r\n" matched so far in the HTTP
	// response that comes first (the upgrade); 4 once it is over.
	head  int
	hdr   [14]byte
	nhdr  int    // header bytes collected
	left  uint64 // payload bytes of the current frame still to come
	ends  bool   // the current frame ends a data message
	inMsg bool   // a data message has begun and not ended
	bad   bool   // not a frame stream: nothing can be inserted any more
}

// feed follows p and returns how many data messages it completed.
func (t *frameTracker) feed(p []byte) int {
	done := 0
	for len(p) > 0 && !t.bad {
		if t.head < 4 {
			if p[0] == "\r\n\r\n"[t.head] {
				t.head++
			} else if p[0] == '\r' {
				t.head = 1
			} else {
				t.head = 0
			}
			p = p[1:]
			continue
		}
		if t.left > 0 {
			n := uint64(len(p))
			if n > t.left {
				n = t.left
			}
			t.left -= n
			p = p[n:]
			if t.left == 0 && t.ends {
				done++
				t.ends = false
			}
			continue
		}
		t.hdr[t.nhdr] = p[0]
		t.nhdr++
		p = p[1:]
		need := 2
		if t.nhdr >= 2 {
			switch t.hdr[1] & 0x7F {
			case 126:
				need += 2
			case 127:
				need += 8
			}
			if t.hdr[1]&0x80 != 0 {
				need += 4 // a mask key
			}
		}
		if t.nhdr < need {
			continue
		}
		t.nhdr = 0
		var length uint64
		switch l := t.hdr[1] & 0x7F; l {
		case 126:
			length = uint64(binary.BigEndian.Uint16(t.hdr[2:4]))
		case 127:
			length = binary.BigEndian.Uint64(t.hdr[2:10])
			if length > 1<<62 {
				t.bad = true
				continue
			}
		default:
			length = uint64(l)
		}
		fin := t.hdr[0]&0x80 != 0
		switch op := t.hdr[0] & 0x0F; {
		case op >= 8: // a control frame, allowed inside a message
			if !fin || length > 125 {
				t.bad = true
				continue
			}
		case op == 0: // continuation
			if !t.inMsg {
				t.bad = true
				continue
			}
			t.inMsg = !fin
			t.ends = fin
		default: // text or binary: a new message
			if t.inMsg {
				t.bad = true
				continue
			}
			t.inMsg = !fin
			t.ends = fin
		}
		t.left = length
		if length == 0 && t.ends {
			done++
			t.ends = false
		}
	}
	return done
}

// atBoundary reports whether a whole frame can be inserted here without
// splitting a frame or a fragmented message.
func (t *frameTracker) atBoundary() bool {
	return t.head == 4 && !t.bad && t.nhdr == 0 && t.left == 0 && !t.inMsg
}
