package adapter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/redistest"
)

// countingHook counts the round trips a client makes: a pipeline, or a
// lone command.
type countingHook struct{ trips, pipelined, maxBatch atomic.Int64 }

func (h *countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "publish" || cmd.Name() == "spublish" {
			h.trips.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		h.pipelined.Add(int64(len(cmds)))
		for {
			m := h.maxBatch.Load()
			if int64(len(cmds)) <= m || h.maxBatch.CompareAndSwap(m, int64(len(cmds))) {
				break
			}
		}
		return next(ctx, cmds)
	}
}

// TestPublisherBatches: 32 goroutines publish at once, each a numbered
// sequence. A subscriber gets every message once, each goroutine's in
// order, and publishes that met on the way shared round trips.
func TestPublisherBatches(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	hook := &countingHook{}
	c.AddHook(hook)
	sub := srv.Client(t).Subscribe(context.Background(), "pubtest")
	defer sub.Close()
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	const writers, each = 32, 500
	p := &publisher{client: c, timeout: 5 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := p.publish(ctx, false, "pubtest", []byte(fmt.Sprintf("%d:%d", w, i)))
				cancel()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	next := make([]int, writers)
	ch := sub.Channel()
	timeout := time.After(30 * time.Second)
	for got := 0; got < writers*each; got++ {
		select {
		case m := <-ch:
			w, i, _ := strings.Cut(m.Payload, ":")
			wi, _ := strconv.Atoi(w)
			ii, _ := strconv.Atoi(i)
			if ii != next[wi] {
				t.Fatalf("writer %d: got message %d, want %d", wi, ii, next[wi])
			}
			next[wi]++
		case err := <-errs:
			t.Fatal(err)
		case <-timeout:
			t.Fatalf("received %d of %d", got, writers*each)
		}
	}
	wg.Wait()
	<-p.close() // the leader hands over to a goroutine that may still be finishing
	trips := hook.trips.Load()
	t.Logf("%d publishes in %d round trips (%d in pipelines, largest %d)", writers*each, trips, hook.pipelined.Load(), hook.maxBatch.Load())
	if hook.maxBatch.Load() < 2 || trips >= writers*each {
		t.Fatalf("no publishes shared a round trip: %d round trips for %d publishes", trips, writers*each)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.leading || len(p.queue) != 0 {
		t.Fatalf("after the last answer: leading %v, %d queued", p.leading, len(p.queue))
	}
}

// TestPublisherErrors: a caller whose context ends gets its error, at
// once, and the others are not affected; with Redis gone every caller gets
// an error, none waits past the timeout.
func TestPublisherErrors(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	p := &publisher{client: c, timeout: 2 * time.Second}

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.publish(done, false, "x", []byte("1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled context: %v", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if _, err := p.publish(ctx, true, "x", []byte("2")); err != nil {
		t.Fatalf("after a canceled one: %v", err)
	}

	srv.Kill()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := p.publish(ctx, false, "x", []byte("3")); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 16 {
		t.Fatalf("%d of 16 publishes failed with Redis down", failed.Load())
	}
}

// TestPublisherClose: close refuses later publishes, and its channel is
// closed only once every publish already made is answered and no
// goroutine sends batches any more (goleak in TestMain checks the rest).
func TestPublisherClose(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	p := &publisher{client: c, timeout: 5 * time.Second}
	<-p.close() // nothing in flight: at once
	if _, err := p.publish(context.Background(), false, "x", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after close: %v, want ErrClosed", err)
	}

	for round := range 20 {
		p := &publisher{client: c, timeout: 5 * time.Second}
		const writers = 16
		var answered atomic.Int64
		started := make(chan struct{}, writers)
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				started <- struct{}{}
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := p.publish(ctx, false, "x", []byte("m"))
					cancel()
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Error(err)
						return
					}
					answered.Add(1)
				}
			})
		}
		for range writers {
			<-started
		}
		for answered.Load() < int64(round+1)*10 {
			time.Sleep(time.Millisecond)
		}
		select {
		case <-p.close():
		case <-time.After(20 * time.Second):
			t.Fatal("close: publishes still in flight after 20 s")
		}
		p.mu.Lock()
		leading, queued := p.leading, len(p.queue)
		p.mu.Unlock()
		if leading || queued != 0 {
			t.Fatalf("round %d: closed while leading %v with %d queued", round, leading, queued)
		}
		wg.Wait()
	}
}
