package socketio

import (
	"encoding/json"
	"sync"

	"github.com/herald-rt/herald/socketio/internal/parser"
)

// Acknowledgements in both directions. A server emit that asks for one
// (EmitWithAck) carries an id; the client answers with an ACK packet of
// that id, whose arguments reach the waiting caller. A client event that
// asks for one gets the handler's result in an ACK packet of its id.

// maxPendingAcks bounds the EmitWithAck calls of one socket waiting for
// their answer.
const maxPendingAcks = 4096

// acks are a socket's EmitWithAck calls waiting for the client.
type acks struct {
	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan []json.RawMessage
}

// add registers a waiting call and returns its id and the channel its
// answer comes on; ok is false when too many calls wait.
func (a *acks) add() (id uint64, ch chan []json.RawMessage, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.waiting) >= maxPendingAcks {
		return 0, nil, false
	}
	if a.waiting == nil {
		a.waiting = make(map[uint64]chan []json.RawMessage)
	}
	id = a.next
	a.next++
	ch = make(chan []json.RawMessage, 1)
	a.waiting[id] = ch
	return id, ch, true
}

// drop forgets a call that stopped waiting.
func (a *acks) drop(id uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.waiting, id)
}

// answer hands a client's ACK packet to the call waiting for it; an ACK
// nobody waits for is ignored, as in Node.
func (a *acks) answer(p *parser.Packet) {
	if !p.HasID {
		return
	}
	a.mu.Lock()
	ch, ok := a.waiting[p.ID]
	delete(a.waiting, p.ID)
	a.mu.Unlock()
	if !ok {
		return
	}
	args, err := parser.SplitArray(p.Data)
	if err != nil {
		args = nil
	}
	ch <- args
}

// ackPacket returns the ACK of the client's event id with args.
func ackPacket(nsp string, id uint64, args ...json.RawMessage) *parser.Packet {
	b := []byte{'['}
	for i, a := range args {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, a...)
	}
	b = append(b, ']')
	return &parser.Packet{Type: parser.Ack, Nsp: nsp, ID: id, HasID: true, Data: b}
}
