package adapter

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// publisher sends publishes to Redis in pipelines: one round trip carries
// every publish that arrived while the previous round trip was under way
// (group commit). A lone caller pays nothing for it, and goes out at once;
// callers at the same moment share a write, a read and Redis's work, which
// a PUBLISH-and-wait per emit cannot (BENCHMARKS.md). Each caller still
// gets its own publish's reply, so Publish keeps its promise: an error
// means Redis may not have the message.
//
// The caller that finds no round trip under way leads: it sends the
// batches itself until its own publish is answered, and hands what is
// left to a goroutine. Batches go out in arrival order, so publishes from
// one goroutine reach Redis in the order made.
type publisher struct {
	client  redis.UniversalClient
	timeout time.Duration // bounds one round trip
	honours bool          // client ends commands at their deadline (deadline.go)

	mu      sync.Mutex
	queue   []*pubReq
	leading bool // someone is sending batches
	closed  bool
	idle    chan struct{} // closed when leading ends, for close
}

// maxPipeline bounds the publishes in one round trip.
const maxPipeline = 256

type pubReq struct {
	ctx     context.Context
	sharded bool
	channel string
	payload []byte
	n       int64 // receivers, Redis's answer
	err     error
	done    chan struct{} // closed once n and err are set
}

// publish sends PUBLISH (SPUBLISH when sharded) of payload to channel and
// returns Redis's answer, the number of clients that received it, or ctx's
// error if ctx ends first (the message may then still be published). ctx
// should have a deadline: a lone publish is bounded by it, one in a batch
// by p.timeout.
func (p *publisher) publish(ctx context.Context, sharded bool, channel string, payload []byte) (int64, error) {
	r := &pubReq{ctx: ctx, sharded: sharded, channel: channel, payload: payload, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return 0, ErrClosed
	}
	p.queue = append(p.queue, r)
	lead := !p.leading
	p.leading = true
	p.mu.Unlock()
	if lead {
		p.lead(r)
	}
	select {
	case <-r.done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// lead sends batches until own is answered, then leaves the rest, if any,
// to a new goroutine.
func (p *publisher) lead(own *pubReq) {
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.leading = false
			if p.idle != nil {
				close(p.idle)
				p.idle = nil
			}
			p.mu.Unlock()
			return
		}
		if own != nil && isDone(own) {
			p.mu.Unlock()
			go p.lead(nil)
			return
		}
		n := min(len(p.queue), maxPipeline)
		batch := p.queue[:n:n]
		p.queue = p.queue[n:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
		p.mu.Unlock()
		p.send(batch)
	}
}

// close refuses every later publish (ErrClosed) and returns a channel
// closed once the publishes already queued are answered and nobody, the
// goroutine a leader hands over to included, sends batches any more. Each
// batch is bounded by p.timeout and each lone publish by its caller's
// context.
func (p *publisher) close() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if !p.leading {
		idle := make(chan struct{})
		close(idle)
		return idle
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle
}

func isDone(r *pubReq) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// send makes one round trip for batch and answers every request in it.
func (p *publisher) send(batch []*pubReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.finish(0, err)
			continue
		}
		live = append(live, r)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		r := live[0]
		r.finish(bounded(r.ctx, p.honours, func(ctx context.Context) (int64, error) {
			return publishCmd(ctx, p.client, r).Result()
		}))
		return
	}
	// Not one caller's context: a caller that gives up must not fail the
	// others' publishes.
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	cmds, err := bounded(ctx, p.honours, func(ctx context.Context) ([]redis.Cmder, error) {
		cmds := make([]redis.Cmder, len(live))
		_, err := p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, r := range live {
				cmds[i] = publishCmd(ctx, pipe, r)
			}
			return nil
		})
		// Every command carries its own error, a failed round trip's
		// included.
		return cmds, err
	})
	for i, r := range live {
		if cmds == nil { // the deadline came first
			r.finish(0, err)
			continue
		}
		r.finish(cmds[i].(*redis.IntCmd).Result())
	}
}

func publishCmd(ctx context.Context, c redis.Cmdable, r *pubReq) *redis.IntCmd {
	if r.sharded {
		return c.SPublish(ctx, r.channel, r.payload)
	}
	return c.Publish(ctx, r.channel, r.payload)
}

func (r *pubReq) finish(n int64, err error) {
	r.n, r.err = n, err
	close(r.done)
}
