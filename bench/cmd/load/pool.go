package main

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-rt/herald/bench/internal/eio"
)

// conn is one connected client: a WebSocket (*eio.Conn) or a long-polling
// session (*eio.PollConn), with the concurrency rules of package eio.
type conn interface {
	Next() (eio.Packet, error)
	Pong() error
	SendClose(deadline time.Time) error
	CloseNow()
	Release()
}

var (
	_ conn = (*eio.Conn)(nil)
	_ conn = (*eio.PollConn)(nil)
)

// pool is the connections of the idle, fanout, pollfanout and roundsfanout
// scenarios: each one has a goroutine that reads it, answers pings and
// hands events to onEvent.
type pool struct {
	r       *runner
	clients []*client // by connection index; nil when it did not connect
	readers sync.WaitGroup
	// connect opens connection i (the handshake to CONNECT); newPool
	// makes it a WebSocket, usePolling a long-polling session.
	connect func(ctx context.Context, i int) (conn, error)
	// polling: closeAll sends the close packets from closeWorkers
	// goroutines rather than one (each is an HTTP POST, not a frame).
	polling bool
	// onEvent handles an event packet's data in the client's reader
	// goroutine; nil = events are ignored.
	onEvent func(c *client, data []byte)
	// newClient prepares client i before it connects (fanout: its slice
	// of the latency samples).
	newClient func(i int) *client

	closing   atomic.Bool // set before the pool closes its connections
	connected atomic.Int64
	failed    atomic.Int64 // refused or broken handshakes
	aborted   atomic.Int64 // handshakes cut short by the timeout
	dropped   atomic.Int64 // connections that ended before the pool closed them
	malformed atomic.Int64 // packets that did not parse
}

// client is one connection. The fields after conn belong to its reader
// goroutine; others read them only after the reader ended.
type client struct {
	conn conn

	count      int      // bench events received
	lastSeq    int64    // seq of the previous bench event of this round
	outOfOrder int      // bench events whose seq was not above the previous one
	lastRecv   int64    // wall clock of the last bench event, Unix ns
	samples    []uint32 // latency of event k, µs + 1 (0 = none)

	// pollfanout and roundsfanout (rounds.go): the seqs received, by seq.
	seen       []bool
	distinct   int // seqs received at least once
	duplicates int // bench events whose seq had come before
	unexpected int // bench events without a seq of the run
}

// newPool returns a pool of WebSocket connections.
func newPool(r *runner) *pool {
	p := &pool{r: r, clients: make([]*client, r.cfg.conns)}
	p.connect = func(ctx context.Context, i int) (conn, error) {
		c, err := r.dialer.Connect(ctx, i, r.token(i))
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return c, nil
	}
	return p
}

// usePolling makes the pool's connections long-polling sessions.
func (p *pool) usePolling() {
	p.polling = true
	p.connect = func(ctx context.Context, i int) (conn, error) {
		c, err := p.r.poller.Connect(ctx, i, p.r.token(i))
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// connectAll opens every connection, -concurrency handshakes at a time,
// and starts each one's reader. It returns the time from the first dial to
// the end of the last handshake and the connect latencies (µs, dial start
// to CONNECT received). It stops dialing when ctx ends.
func (p *pool) connectAll(ctx context.Context) (time.Duration, []uint32) {
	n := len(p.clients)
	workers := min(p.r.cfg.concurrency, n)
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		latency = make([]uint32, 0, n)
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			local := make([]uint32, 0, n/workers+1)
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					break
				}
				c := &client{}
				if p.newClient != nil {
					c = p.newClient(i)
				}
				t0 := time.Now()
				conn, err := p.connect(ctx, i)
				if err != nil {
					if ctx.Err() != nil || eio.Aborted(err) {
						p.aborted.Add(1)
					} else {
						p.failed.Add(1)
						p.r.errs.add(err)
					}
					continue
				}
				local = append(local, micros(time.Since(t0)))
				c.conn = conn
				p.clients[i] = c
				p.connected.Add(1)
				p.readers.Add(1)
				go p.read(c)
			}
			mu.Lock()
			latency = append(latency, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return time.Since(start), latency
}

// read is a connection's reader goroutine.
func (p *pool) read(c *client) {
	defer p.readers.Done()
	defer c.conn.Release()
	defer c.conn.CloseNow()
	for {
		pk, err := c.conn.Next()
		if err != nil {
			if errors.Is(err, eio.ErrMalformed) {
				p.malformed.Add(1)
				continue
			}
			if !p.closing.Load() {
				p.dropped.Add(1)
				p.r.errs.add(&eio.Error{Stage: "read", Err: err})
			}
			return
		}
		switch pk.Kind {
		case eio.Ping:
			_ = c.conn.Pong() // a broken connection fails the next read
		case eio.Event:
			if p.onEvent != nil {
				p.onEvent(c, pk.Data)
			}
		}
	}
}

// closeWorkers is how many goroutines send the close packets of a pool of
// long-polling sessions: a few, so that the POSTs do not wait for one
// another's round trips, but not one per session, which would need a
// second TCP connection per session while its GET is parked.
const closeWorkers = 8

// closeAll ends every connection: a close frame (long-polling: a POST of
// the close packet) to each, then it waits for the readers until
// closeGrace has passed and closes what is left at once. After it returns
// no reader runs.
func (p *pool) closeAll() {
	p.closing.Store(true)
	deadline := time.Now().Add(closeGrace)
	workers := 1
	if p.polling {
		workers = closeWorkers
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(p.clients) {
					return
				}
				if c := p.clients[i]; c != nil {
					_ = c.conn.SendClose(deadline)
				}
			}
		})
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { p.readers.Wait(); close(done) }()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	p.r.logf("closing: %v passed, closing the rest at once", closeGrace)
	for _, c := range p.clients {
		if c != nil {
			c.conn.CloseNow()
		}
	}
	<-done
}
