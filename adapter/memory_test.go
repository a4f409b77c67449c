package adapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/herald-rt/herald/adapter"
)

func TestMemoryPresenceTransitions(t *testing.T) {
	ctx := context.Background()
	p := adapter.NewMemoryPresence()
	steps := []struct {
		op         string
		user, sock string
		want       bool // first for add, last for remove
	}{
		{"add", "alice", "s1", true},
		{"add", "alice", "s1", false}, // duplicate add
		{"add", "alice", "s2", false}, // second tab
		{"add", "bob", "s3", true},
		{"remove", "alice", "s1", false},
		{"remove", "alice", "s1", false}, // duplicate disconnect event
		{"remove", "alice", "s9", false}, // unknown socket
		{"remove", "carol", "s1", false}, // unknown user
		{"remove", "alice", "s2", true},
		{"remove", "alice", "s2", false},
	}
	for i, s := range steps {
		var got bool
		var err error
		if s.op == "add" {
			got, err = p.Add(ctx, s.user, s.sock)
		} else {
			got, err = p.Remove(ctx, s.user, s.sock)
		}
		if err != nil || got != s.want {
			t.Fatalf("step %d %s(%s,%s) = %v, %v; want %v", i, s.op, s.user, s.sock, got, err, s.want)
		}
	}
	users, sockets, err := p.Counts(ctx)
	if err != nil || users != 1 || sockets != 1 {
		t.Fatalf("Counts = %d, %d, %v; want 1 user, 1 socket", users, sockets, err)
	}
	if on, _ := p.IsOnline(ctx, "alice"); on {
		t.Fatal("alice online after her last socket left")
	}
	if list, _ := p.Users(ctx); !slices.Equal(list, []string{"bob"}) {
		t.Fatalf("Users = %v", list)
	}
}

// TestMemoryPresenceConcurrent adds and removes many sockets of few users
// from many goroutines: each user sees exactly as many online transitions
// as offline ones, and ends offline.
func TestMemoryPresenceConcurrent(t *testing.T) {
	ctx := context.Background()
	p := adapter.NewMemoryPresence()
	var mu sync.Mutex
	online := map[string]int{}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				user := fmt.Sprintf("u%d", i%4)
				sock := fmt.Sprintf("g%d-%d", g, i)
				first, _ := p.Add(ctx, user, sock)
				last, _ := p.Remove(ctx, user, sock)
				mu.Lock()
				if first {
					online[user]++
				}
				if last {
					online[user]--
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for u, n := range online {
		if n != 0 {
			t.Errorf("%s: %d more online than offline transitions", u, n)
		}
	}
	if users, sockets, _ := p.Counts(ctx); users != 0 || sockets != 0 {
		t.Fatalf("Counts = %d, %d after everyone left", users, sockets)
	}
}

func TestMemoryPresenceCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := adapter.NewMemoryPresence()
	if _, err := p.Add(ctx, "u", "s"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Add: %v", err)
	}
	if _, err := p.Users(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Users: %v", err)
	}
}

func TestMemoryBroker(t *testing.T) {
	ctx := context.Background()
	b := adapter.NewMemoryBroker()
	if err := b.Publish(ctx, adapter.Message{Event: "e"}); err == nil {
		t.Fatal("Publish before Subscribe succeeded")
	}
	if err := b.Subscribe(nil); err == nil {
		t.Fatal("Subscribe(nil) succeeded")
	}
	var got []string
	if err := b.Subscribe(func(m adapter.Message) { got = append(got, string(m.Args[0])) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(func(adapter.Message) {}); err == nil {
		t.Fatal("second Subscribe succeeded")
	}
	for i := range 3 {
		if err := b.Publish(ctx, adapter.Message{Event: "e", Args: []json.RawMessage{[]byte(fmt.Sprint(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []string{"0", "1", "2"}) {
		t.Fatalf("delivered %v", got)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Publish(cctx, adapter.Message{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Publish with cancelled ctx: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := b.Publish(ctx, adapter.Message{}); !errors.Is(err, adapter.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
}
