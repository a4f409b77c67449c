package adapter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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

func TestRecoveringMemoryBroker(t *testing.T) {
	ctx := context.Background()
	b := adapter.NewRecoveringMemoryBroker(5)
	var mu sync.Mutex
	var got []adapter.Message
	if err := b.Subscribe(func(m adapter.Message) { mu.Lock(); got = append(got, m); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	pub := func(rooms []string, event string) string {
		t.Helper()
		if err := b.Publish(ctx, adapter.Message{Rooms: rooms, Event: event, Args: []json.RawMessage{[]byte(`1`)}}); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return got[len(got)-1].Offset
	}
	seen := pub([]string{"user:1"}, "seen")
	sess := adapter.Session{SocketID: "s1", PID: "p1", Rooms: []string{"s1", "user:1"}}
	if err := b.SaveSession(ctx, sess, time.Minute); err != nil {
		t.Fatal(err)
	}
	pub([]string{"user:1"}, "m1")
	pub([]string{"user:2"}, "other")
	pub(nil, "m2")

	// A restore not taken up gives the session back.
	_, _, done, err := b.RestoreSession(ctx, "p1", seen)
	if err != nil {
		t.Fatal(err)
	}
	done(false)
	s, missed, done, err := b.RestoreSession(ctx, "p1", seen)
	if err != nil || s.SocketID != "s1" {
		t.Fatalf("restore = %+v, %v", s, err)
	}
	var names []string
	for _, m := range missed {
		names = append(names, m.Event)
	}
	if !slices.Equal(names, []string{"m1", "m2"}) {
		t.Errorf("missed = %v, want m1 m2", names)
	}
	// Held: a publish waits until done.
	published := make(chan struct{})
	go func() {
		pub(nil, "after")
		close(published)
	}()
	select {
	case <-published:
		t.Fatal("published while a restore held delivery")
	case <-time.After(100 * time.Millisecond):
	}
	done(true)
	<-published
	if _, _, _, err := b.RestoreSession(ctx, "p1", seen); !errors.Is(err, adapter.ErrNoSession) {
		t.Errorf("second restore = %v, want ErrNoSession", err)
	}
	// The log keeps 5 messages: "seen" was pushed out.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.SaveSession(ctx, adapter.Session{SocketID: "s2", PID: "p2"}, time.Minute))
	pub(nil, "x")
	pub(nil, "y")
	for _, off := range []string{seen, "garbage", "0-999", ""} {
		if _, _, _, err := b.RestoreSession(ctx, "p2", off); !errors.Is(err, adapter.ErrNoSession) {
			t.Errorf("restore from %q = %v, want ErrNoSession", off, err)
		}
	}
	// Expired sessions are gone.
	must(b.SaveSession(ctx, adapter.Session{SocketID: "s3", PID: "p3"}, time.Millisecond))
	time.Sleep(5 * time.Millisecond)
	if _, _, _, err := b.RestoreSession(ctx, "p3", pub(nil, "z")); !errors.Is(err, adapter.ErrNoSession) {
		t.Errorf("restore of an expired session = %v", err)
	}
	if err := b.SaveSession(ctx, adapter.Session{}, time.Minute); err == nil {
		t.Error("empty session accepted")
	}
	must(b.Close(ctx))
	if err := b.Publish(ctx, adapter.Message{Event: "e"}); !errors.Is(err, adapter.ErrClosed) {
		t.Errorf("Publish after Close = %v", err)
	}
}
