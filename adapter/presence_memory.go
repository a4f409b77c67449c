package adapter

import (
	"context"
	"slices"
	"sync"
)

// MemoryPresence is the single-node Presence.
type MemoryPresence struct {
	mu      sync.Mutex
	users   map[string]*userSockets
	sockets int
}

// userSockets are one user's socket ids: the first inline, the others, for
// a user with several tabs, in a map (one online user costs no map).
type userSockets struct {
	first string
	more  map[string]struct{}
}

func (u *userSockets) has(id string) bool {
	if u.first == id {
		return true
	}
	_, ok := u.more[id]
	return ok
}

func (u *userSockets) len() int {
	n := len(u.more)
	if u.first != "" {
		n++
	}
	return n
}

// add adds a socket id that is not there yet.
func (u *userSockets) add(id string) {
	if u.first == "" {
		u.first = id
		return
	}
	if u.more == nil {
		u.more = make(map[string]struct{}, 1)
	}
	u.more[id] = struct{}{}
}

// remove removes a socket id that is there.
func (u *userSockets) remove(id string) {
	if u.first == id {
		u.first = ""
		for other := range u.more { // promote one, so that first is set while any is
			u.first = other
			delete(u.more, other)
			break
		}
		return
	}
	delete(u.more, id)
}

var (
	_ Presence          = (*MemoryPresence)(nil)
	_ UserSocketCounter = (*MemoryPresence)(nil)
	_ UserSocketLimiter = (*MemoryPresence)(nil)
)

// NewMemoryPresence returns an empty Presence for one node.
func NewMemoryPresence() *MemoryPresence {
	return &MemoryPresence{users: make(map[string]*userSockets)}
}

// Add implements Presence.
func (p *MemoryPresence) Add(ctx context.Context, userID, socketID string) (bool, error) {
	return p.AddLimited(ctx, userID, socketID, -1)
}

// AddLimited implements UserSocketLimiter; a negative max means no limit.
func (p *MemoryPresence) AddLimited(ctx context.Context, userID, socketID string, max int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	set, ok := p.users[userID]
	switch {
	case ok && set.has(socketID):
		return false, nil
	case max >= 0 && ok && set.len() >= max, max == 0:
		return false, ErrUserLimit
	case !ok:
		set = &userSockets{}
		p.users[userID] = set
	}
	set.add(socketID)
	p.sockets++
	return set.len() == 1, nil
}

// Remove implements Presence.
func (p *MemoryPresence) Remove(ctx context.Context, userID, socketID string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	set, ok := p.users[userID]
	if !ok || !set.has(socketID) {
		return false, nil
	}
	set.remove(socketID)
	p.sockets--
	if set.len() > 0 {
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
	if set, ok := p.users[userID]; ok {
		return set.len(), nil
	}
	return 0, nil
}
