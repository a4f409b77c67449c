package timers_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-rt/herald/internal/timers"
)

// eventually bounds a wait that must end: a test that hangs is reported
// as a failure, not as a timing.
const eventually = 10 * time.Second

func newHeap(t *testing.T) *timers.Heap {
	t.Helper()
	h := timers.New()
	t.Cleanup(h.Close)
	return h
}

// hold blocks the Heap's goroutine in a callback until the returned
// function is called: timers scheduled meanwhile all fire after it, in
// the order of their deadlines, whatever the clock did between their
// Schedule calls.
func hold(t *testing.T, h *timers.Heap) (release func()) {
	t.Helper()
	var gate timers.Timer
	entered, released := make(chan struct{}), make(chan struct{})
	h.Schedule(&gate, 0, func() {
		close(entered)
		<-released
	})
	recv(t, entered, "the gate's callback")
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	return release
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(eventually):
		t.Fatalf("%s: nothing within %v", what, eventually)
		panic("unreachable")
	}
}

// ago returns a delay n hours in the past: timers scheduled with ago(3),
// ago(2), ago(1) are all due at once and fire in that order, however long
// the Schedule calls took.
func ago(n int) time.Duration { return -time.Duration(n) * time.Hour }

func TestFiresAfterDelay(t *testing.T) {
	h := newHeap(t)
	var tm timers.Timer
	fired := make(chan struct{})
	h.Schedule(&tm, time.Millisecond, func() { close(fired) })
	recv(t, fired, "timer")
	if n := h.Len(); n != 0 {
		t.Errorf("Len after firing = %d, want 0", n)
	}
}

func TestFiresInDeadlineOrder(t *testing.T) {
	h := newHeap(t)
	const n = 200
	ts := make([]timers.Timer, n)
	got := make(chan int, n)
	release := hold(t, h)
	for _, i := range rand.Perm(n) {
		h.Schedule(&ts[i], ago(n-i), func() { got <- i })
	}
	if l := h.Len(); l != n {
		t.Fatalf("Len = %d, want %d", l, n)
	}
	release()
	for want := range n {
		if i := recv(t, got, "timer"); i != want {
			t.Fatalf("timer %d fired in position %d", i, want)
		}
	}
}

func TestFiresInDeadlineOrderAsScheduled(t *testing.T) {
	// Deadlines in the future, scheduled in increasing order, fired by
	// the clock rather than all at once.
	h := newHeap(t)
	const n = 20
	ts := make([]timers.Timer, n)
	got := make(chan int, n)
	for i := range n {
		h.Schedule(&ts[i], time.Duration(i)*time.Millisecond, func() { got <- i })
	}
	for want := range n {
		if i := recv(t, got, "timer"); i != want {
			t.Fatalf("timer %d fired in position %d", i, want)
		}
	}
}

func TestScheduleRearms(t *testing.T) {
	h := newHeap(t)
	var tm timers.Timer
	got := make(chan string, 2)
	h.Schedule(&tm, time.Hour, func() { got <- "first" })
	h.Schedule(&tm, 0, func() { got <- "second" }) // replaces the first
	if s := recv(t, got, "timer"); s != "second" {
		t.Fatalf("fired %q, want second", s)
	}
	// Nothing else is armed: a later sentinel fires next.
	var sentinel timers.Timer
	h.Schedule(&sentinel, 0, func() { got <- "sentinel" })
	if s := recv(t, got, "sentinel"); s != "sentinel" {
		t.Fatalf("fired %q, want sentinel", s)
	}
	if n := h.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

func TestScheduleMoves(t *testing.T) {
	for _, tc := range []struct {
		name string
		move int // index of a, b, c moved
		to   int // new deadline, ago(to)
		want string
	}{
		{"head to tail", 0, 0, "bca"},
		{"tail to head", 2, 4, "cab"},
		{"middle to head", 1, 4, "bac"},
		{"middle to tail", 1, 0, "acb"},
		{"same place", 1, 2, "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHeap(t)
			var ts [3]timers.Timer
			got := make(chan byte, 3)
			release := hold(t, h)
			for i := range ts {
				h.Schedule(&ts[i], ago(3-i), func() { got <- "abc"[i] })
			}
			i := tc.move
			h.Schedule(&ts[i], ago(tc.to), func() { got <- "abc"[i] })
			if n := h.Len(); n != 3 {
				t.Fatalf("Len = %d, want 3", n)
			}
			release()
			var order []byte
			for range 3 {
				order = append(order, recv(t, got, "timer"))
			}
			if string(order) != tc.want {
				t.Errorf("fired %s, want %s", order, tc.want)
			}
		})
	}
}

func TestStop(t *testing.T) {
	h := newHeap(t)
	var zero timers.Timer
	if h.Stop(&zero) {
		t.Error("Stop of a timer never scheduled reported true")
	}

	const n = 50
	ts := make([]timers.Timer, n)
	got := make(chan int, n)
	release := hold(t, h)
	for _, i := range rand.Perm(n) {
		h.Schedule(&ts[i], ago(n-i), func() { got <- i })
	}
	stopped := map[int]bool{}
	for _, i := range []int{0, n - 1, n / 2, 7, 8, 9} {
		if !h.Stop(&ts[i]) {
			t.Errorf("Stop(%d) of an armed timer reported false", i)
		}
		if h.Stop(&ts[i]) {
			t.Errorf("second Stop(%d) reported true", i)
		}
		stopped[i] = true
	}
	if l := h.Len(); l != n-len(stopped) {
		t.Fatalf("Len = %d, want %d", l, n-len(stopped))
	}
	release()
	for want := range n {
		if stopped[want] {
			continue
		}
		if i := recv(t, got, "timer"); i != want {
			t.Fatalf("timer %d fired where %d was due", i, want)
		}
	}
	var sentinel timers.Timer
	h.Schedule(&sentinel, 0, func() { got <- -1 })
	if i := recv(t, got, "sentinel"); i != -1 {
		t.Fatalf("stopped timer %d fired", i)
	}
}

func TestStopFired(t *testing.T) {
	h := newHeap(t)
	var tm timers.Timer
	fired := make(chan struct{})
	h.Schedule(&tm, 0, func() { close(fired) })
	recv(t, fired, "timer")
	if h.Stop(&tm) {
		t.Error("Stop of a fired timer reported true")
	}
	// A fired timer can be scheduled again.
	again := make(chan struct{})
	h.Schedule(&tm, 0, func() { close(again) })
	recv(t, again, "timer scheduled again")
}

func TestStopInOwnCallback(t *testing.T) {
	h := newHeap(t)
	var tm timers.Timer
	res := make(chan bool)
	h.Schedule(&tm, 0, func() { res <- h.Stop(&tm) })
	if recv(t, res, "callback") {
		t.Error("Stop of the running timer reported true")
	}
}

func TestCallbackReschedulesItself(t *testing.T) {
	h := newHeap(t)
	var tm timers.Timer
	ticks := make(chan int, 5)
	n := 0
	var tick func()
	tick = func() {
		n++ // the Heap's goroutine only
		ticks <- n
		if n < 5 {
			h.Schedule(&tm, time.Millisecond, tick)
		}
	}
	h.Schedule(&tm, 0, tick)
	for want := 1; want <= 5; want++ {
		if got := recv(t, ticks, "tick"); got != want {
			t.Fatalf("tick %d, want %d", got, want)
		}
	}
	var sentinel timers.Timer
	done := make(chan struct{})
	h.Schedule(&sentinel, 10*time.Millisecond, func() { close(done) })
	recv(t, done, "sentinel")
	select {
	case got := <-ticks:
		t.Fatalf("tick %d after the last", got)
	default:
	}
}

func TestCallbackSchedulesOthers(t *testing.T) {
	// A callback that arms a timer due before the next one in the heap.
	h := newHeap(t)
	var a, b, c timers.Timer
	got := make(chan string, 3)
	h.Schedule(&c, time.Hour, func() { got <- "c" })
	h.Schedule(&a, 0, func() {
		got <- "a"
		h.Schedule(&b, 0, func() { got <- "b" })
	})
	for _, want := range []string{"a", "b"} {
		if s := recv(t, got, want); s != want {
			t.Fatalf("fired %s, want %s", s, want)
		}
	}
	if !h.Stop(&c) {
		t.Error("the later timer is no longer armed")
	}
}

func TestClose(t *testing.T) {
	h := timers.New()
	const n = 10
	ts := make([]timers.Timer, n)
	var fired atomic.Int32
	release := hold(t, h)
	for i := range ts {
		h.Schedule(&ts[i], ago(1), func() { fired.Add(1) })
	}
	closed := make(chan struct{})
	go func() {
		h.Close() // waits for the held callback
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a callback was running")
	case <-time.After(10 * time.Millisecond):
	}
	release()
	recv(t, closed, "Close")
	if n := fired.Load(); n != 0 {
		t.Errorf("%d timers fired after Close", n)
	}
	if n := h.Len(); n != 0 {
		t.Errorf("Len after Close = %d, want 0", n)
	}
	for i := range ts {
		if h.Stop(&ts[i]) {
			t.Errorf("Stop(%d) after Close reported true", i)
		}
	}
	var late timers.Timer
	h.Schedule(&late, 0, func() { fired.Add(1) })
	if n := h.Len(); n != 0 {
		t.Errorf("Len after a Schedule on a closed Heap = %d, want 0", n)
	}
	h.Close() // idempotent
	if n := fired.Load(); n != 0 {
		t.Errorf("%d timers fired after Close", n)
	}
}

func TestCloseIdle(t *testing.T) {
	h := timers.New()
	h.Close()
	h.Close()
}

func TestManyTimersFireOnce(t *testing.T) {
	h := newHeap(t)
	const n = 10_000
	ts := make([]timers.Timer, n)
	counts := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	wg.Add(n)
	release := hold(t, h) // nothing fires before every timer is armed
	for _, i := range rand.Perm(n) {
		d := rand.N(50 * time.Millisecond)
		h.Schedule(&ts[i], d, func() {
			counts[i].Add(1)
			wg.Done()
		})
	}
	// Move a tenth of them, as heartbeats do.
	for _, i := range rand.Perm(n)[:n/10] {
		h.Schedule(&ts[i], rand.N(50*time.Millisecond), func() {
			counts[i].Add(1)
			wg.Done()
		})
	}
	release()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(eventually):
		missing := 0
		for i := range counts {
			if counts[i].Load() == 0 {
				missing++
			}
		}
		t.Fatalf("%d of %d timers had not fired after %v (Len %d)", missing, n, eventually, h.Len())
	}
	// Anything fired twice would have fired before a sentinel due last.
	var sentinel timers.Timer
	last := make(chan struct{})
	h.Schedule(&sentinel, 60*time.Millisecond, func() { close(last) })
	recv(t, last, "sentinel")
	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			t.Errorf("timer %d fired %d times", i, c)
		}
	}
	if l := h.Len(); l != 0 {
		t.Errorf("Len = %d, want 0", l)
	}
}

func TestConcurrentScheduleStop(t *testing.T) {
	h := newHeap(t)
	const (
		workers = 8
		perW    = 200
		rounds  = 50
	)
	ts := make([]timers.Timer, workers*perW)
	var fired atomic.Int64
	f := func() { fired.Add(1) }
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			own := ts[w*perW : (w+1)*perW]
			for range rounds {
				for i := range own {
					switch rand.N(3) {
					case 0:
						h.Schedule(&own[i], rand.N(time.Millisecond), f)
					case 1:
						h.Schedule(&own[i], time.Hour, f)
					default:
						h.Stop(&own[i])
					}
				}
				_ = h.Len()
			}
			for i := range own {
				h.Stop(&own[i])
			}
		})
	}
	wg.Wait()
	if n := h.Len(); n != 0 {
		t.Errorf("Len after every timer was stopped = %d, want 0", n)
	}
	// The Heap still works.
	var tm timers.Timer
	ok := make(chan struct{})
	h.Schedule(&tm, 0, func() { close(ok) })
	recv(t, ok, "timer after the concurrent phase")
	t.Logf("%d callbacks ran", fired.Load())
}
