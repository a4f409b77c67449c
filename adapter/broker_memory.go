package adapter

import (
	"context"
	"errors"
	"sync"
)

// MemoryBroker is the single-node Broker: Publish delivers on the calling
// goroutine, so a message has reached this node's sockets when Publish
// returns.
type MemoryBroker struct {
	mu      sync.RWMutex
	deliver func(Message)
	closed  bool
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns a Broker for one node.
func NewMemoryBroker() *MemoryBroker { return &MemoryBroker{} }

// Subscribe implements Broker.
func (b *MemoryBroker) Subscribe(deliver func(Message)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkSubscribe(deliver, b.deliver, b.closed); err != nil {
		return err
	}
	b.deliver = deliver
	return nil
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	deliver, closed := b.deliver, b.closed
	b.mu.RUnlock()
	switch {
	case closed:
		return ErrClosed
	case deliver == nil:
		return errors.New("adapter: publish before subscribe")
	}
	deliver(m)
	return nil
}

// Close implements Broker.
func (b *MemoryBroker) Close(context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// checkSubscribe is the validation every Broker's Subscribe does: a
// deliver function, an open broker, and no subscriber yet.
func checkSubscribe(deliver, current func(Message), closed bool) error {
	switch {
	case deliver == nil:
		return errors.New("adapter: nil deliver function")
	case closed:
		return ErrClosed
	case current != nil:
		return errors.New("adapter: broker already has a subscriber")
	}
	return nil
}
