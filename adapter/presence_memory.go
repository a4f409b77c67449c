package adapter

import (
	"context"
	"slices"
	"sync"
)

// MemoryPresence is the single-node Presence.
type MemoryPresence struct {
	mu      sync.Mutex
	users   map[string]map[string]struct{} // user -> socket ids
	sockets int
}

var (
	_ Presence          = (*MemoryPresence)(nil)
	_ UserSocketCounter = (*MemoryPresence)(nil)
)

// NewMemoryPresence returns an empty Presence for one node.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{users: make(map[string]map[string]struct{})}
}

// Add implements Presence.
func (p *MemoryPresence) Add(ctx context.Context, userID, socketID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	set, ok := p.users[userID]
	if !ok {
		set = make(map[string]struct{}, 1)
		p.users[userID] = set
	}
	if _, dup := set[socketID]; dup {
		return false, nil
	}
	set[socketID] = struct{}{}
	p.sockets++
	return len(set) == 1, nil
}

// Remove implements Presence.
func (p *MemoryPresence) Remove(ctx context.Context, userID, socketID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	set, ok := p.users[userID]
	if !ok {
		return false, nil
	}
	if _, ok := set[socketID]; !ok {
		return false, nil
	}
	delete(set, socketID)
	p.sockets--
	if len(set) > 0 {
		return false, nil
	}
	delete(p.users, userID)
	return true, nil
}

// IsOnline implements Presence.
func (p *MemoryPresence) IsOnline(ctx context.Context, userID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.users[userID]
	return ok, nil
}

// Users implements Presence.
func (p *MemoryPresence) Users(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	users := make([]string, 0, len(p.users))
	for u := range p.users {
		users = append(users, u)
	}
	p.mu.Unlock()
	slices.Sort(users)
	return users, nil
}

// Counts implements Presence.
func (p *MemoryPresence) Counts(ctx context.Context) (int, int, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.users), p.sockets, nil
}

// UserSockets implements UserSocketCounter.
func (p *MemoryPresence) UserSockets(ctx context.Context, userID string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.users[userID]), nil
}
