// Package benchapi is the part of bench/SPEC.md that herald's bench server
// and the load generator share: the body of POST /bench/emit and the
// "bench" event.
package benchapi

import (
	"fmt"

	"github.com/herald-rt/herald/events"
)

// Payload is the payload of the "bench" event; herald adds "timestamp"
// (RFC 3339) to it on the wire.
type Payload struct {
	Seq    int    `json:"seq"`
	SentAt int64  `json:"sentAt"` // microseconds since the Unix epoch, just before the emit
	Pad    string `json:"pad"`
}

// Event is the "bench" event.
var Event = events.Define[Payload]("bench")

// MaxEmits bounds count*(to-from) of one POST /bench/emit.
const MaxEmits = 10_000_000

// MaxPad bounds the pad of one POST /bench/emit, in bytes.
const MaxPad = 1 << 20

// MaxSeq bounds the seq of one POST /bench/emit (its first event's seq).
const MaxSeq = 1_000_000_000

// EmitRequest is the body of POST /bench/emit: count rounds of one event to
// each user Prefix+N, N in [From, To); round i carries seq Seq+i. Absent
// fields are zero.
type EmitRequest struct {
	Prefix string `json:"prefix"`
	From   int    `json:"from"`
	To     int    `json:"to"`
	Count  int    `json:"count"`
	Pad    int    `json:"pad"`
	// Seq is the seq of the first round, so that a client that POSTs one
	// round at a time numbers every event of its run apart.
	Seq int `json:"seq,omitempty"`
}

// Check returns what is wrong with r, or "".
func (r EmitRequest) Check() string {
	switch {
	case r.To < r.From:
		return "to: must not be less than from"
	case r.Count < 1:
		return "count: must be at least 1"
	case r.To-r.From < 0 || r.To-r.From > MaxEmits || r.Count > MaxEmits/max(r.To-r.From, 1):
		// to-from < 0 is an overflow; count alone is bounded too, so
		// that from == to cannot make an endless empty loop.
		return fmt.Sprintf("count*(to-from): must be at most %d (and count too)", MaxEmits)
	case r.Pad < 0 || r.Pad > MaxPad:
		return fmt.Sprintf("pad: must be 0..%d", MaxPad)
	case r.Seq < 0 || r.Seq > MaxSeq:
		return fmt.Sprintf("seq: must be 0..%d", MaxSeq)
	}
	return ""
}
