// Package timers runs many one-shot timers on one goroutine, from one heap:
// the heartbeats, connect timeouts and token expiries of every connection
// of a server cost a heap entry each, not a goroutine or a runtime timer.
//
// A Heap's callbacks run one at a time on the Heap's goroutine, so they
// must be quick and must not block (queue a packet, close a connection);
// anything slower belongs on a goroutine of its own.
package timers

import (
	"sync"
	"time"
)

// Timer is one entry of a Heap. The zero value is a stopped timer; a Timer
// belongs to the Heap it was first scheduled on and must not be copied
// after that.
type Timer struct {
	when time.Duration // since the Heap's epoch
	idx  int           // position in the heap, -1 when not scheduled
	f    func()
}

// Heap is a min-heap of timers with one goroutine that fires them. The
// zero value is not usable: call New.
type Heap struct {
	epoch time.Time

	mu      sync.Mutex
	h       []*Timer
	wake    chan struct{}
	stopped bool
	done    chan struct{}
}

// New starts a Heap; Stop ends its goroutine.
func New() *Heap {
	h := &Heap{epoch: time.Now(), wake: make(chan struct{}, 1), done: make(chan struct{})}
	go h.run()
	return h
}

// Schedule arms t to call f after d, replacing what t was armed with.
// Scheduling on a stopped Heap does nothing.
func (h *Heap) Schedule(t *Timer, d time.Duration, f func()) {
	when := time.Since(h.epoch) + d
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return
	}
	wasHead := len(h.h) > 0 && h.h[0] == t
	t.f = f
	t.when = when
	if h.scheduled(t) {
		h.fix(t.idx)
	} else {
		t.idx = len(h.h)
		h.h = append(h.h, t)
		h.up(t.idx)
	}
	first := wasHead || h.h[0] == t
	h.mu.Unlock()
	if first {
		h.signal()
	}
}

// Stop disarms t. It reports whether t was armed; a callback already
// running is not waited for.
func (h *Heap) Stop(t *Timer) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.scheduled(t) {
		return false
	}
	h.remove(t.idx)
	t.f = nil
	return true
}

// Len returns how many timers are armed.
func (h *Heap) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.h)
}

// Close stops the Heap's goroutine and waits for a running callback to
// return; the timers still armed never fire. Close is idempotent.
func (h *Heap) Close() {
	h.mu.Lock()
	if !h.stopped {
		h.stopped = true
		for _, t := range h.h {
			t.idx = -1
			t.f = nil
		}
		h.h = nil
	}
	h.mu.Unlock()
	h.signal()
	<-h.done
}

func (h *Heap) scheduled(t *Timer) bool {
	return t.idx >= 0 && t.idx < len(h.h) && h.h[t.idx] == t
}

func (h *Heap) signal() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *Heap) run() {
	defer close(h.done)
	clock := time.NewTimer(time.Hour)
	defer clock.Stop()
	for {
		h.mu.Lock()
		if h.stopped {
			h.mu.Unlock()
			return
		}
		now := time.Since(h.epoch)
		var due func()
		wait := time.Duration(-1)
		if len(h.h) > 0 {
			if t := h.h[0]; t.when <= now {
				h.remove(0)
				due, t.f = t.f, nil
			} else {
				wait = t.when - now
			}
		}
		h.mu.Unlock()
		if due != nil {
			due()
			continue
		}
		if wait < 0 {
			wait = time.Hour
		}
		clock.Reset(wait)
		select {
		case <-clock.C:
		case <-h.wake:
			if !clock.Stop() {
				select {
				case <-clock.C:
				default:
				}
			}
		}
	}
}

// Heap operations; h.mu is held.

func (h *Heap) less(i, j int) bool { return h.h[i].when < h.h[j].when }

func (h *Heap) swap(i, j int) {
	h.h[i], h.h[j] = h.h[j], h.h[i]
	h.h[i].idx = i
	h.h[j].idx = j
}

func (h *Heap) up(j int) {
	for {
		i := (j - 1) / 2
		if i == j || !h.less(j, i) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h *Heap) down(i0 int) bool {
	i, n := i0, len(h.h)
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			break
		}
		j := j1
		if j2 := j1 + 1; j2 < n && h.less(j2, j1) {
			j = j2
		}
		if !h.less(j, i) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}

func (h *Heap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *Heap) remove(i int) {
	n := len(h.h) - 1
	t := h.h[i]
	if n != i {
		h.swap(i, n)
	}
	// Shrink before sifting: t, now last, must not be sifted back in.
	h.h[n] = nil
	h.h = h.h[:n]
	if n != i {
		h.fix(i)
	}
	t.idx = -1
}
