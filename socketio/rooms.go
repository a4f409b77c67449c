package socketio

import (
	"slices"
	"sync"
)

// nspState is one served namespace on this node: its sockets and the index
// of their rooms, which local deliveries read. A socket's own room (its
// id) is not indexed: lookups resolve it through the socket table.
type nspState struct {
	name string // "/" or a name of Config.Namespaces
	key  string // adapter.Message's name: "" for "/"
	obs  roomObserver

	mu      sync.RWMutex
	sockets map[string]*Socket
	rooms   map[string]map[*Socket]struct{}
}

func newNspState(name string, obs roomObserver) *nspState {
	return &nspState{
		name:    name,
		key:     messageNamespace(name),
		obs:     obs,
		sockets: make(map[string]*Socket),
		rooms:   make(map[string]map[*Socket]struct{}),
	}
}

// roomObserver is implemented by a Broker that subscribes per room
// (adapter.RedisBroker in sharded mode): it hears of every room that gains
// its first socket on this node, or loses its last.
type roomObserver interface {
	ObserveNamespaceRoom(nsp, room string, joined bool)
}

// add registers sock with the rooms it starts in, unless it has
// disconnected already.
func (n *nspState) add(sock *Socket, rooms []string) {
	n.mu.Lock()
	if !sock.Connected() {
		n.mu.Unlock()
		return
	}
	n.sockets[sock.id] = sock
	n.mu.Unlock()
	for _, r := range rooms {
		n.join(sock, r)
	}
}

// join adds sock to room; it reports false when sock was in it already,
// or has disconnected (Socket.onClose cancels the socket before it leaves
// its rooms, under n.mu: a join either comes before and is undone, or sees
// the cancel).
func (n *nspState) join(sock *Socket, room string) bool {
	if room == sock.id {
		return false
	}
	n.mu.Lock()
	if !sock.Connected() {
		n.mu.Unlock()
		return false
	}
	members := n.rooms[room]
	if _, in := members[sock]; in {
		n.mu.Unlock()
		return false
	}
	created := members == nil
	if created {
		members = make(map[*Socket]struct{}, 1)
		n.rooms[room] = members
	}
	members[sock] = struct{}{}
	sock.rooms = append(sock.rooms, room)
	n.mu.Unlock()
	if created && n.obs != nil {
		n.obs.ObserveNamespaceRoom(n.key, room, true)
	}
	return true
}

// leave removes sock from room.
func (n *nspState) leave(sock *Socket, room string) {
	n.mu.Lock()
	deleted := n.leaveLocked(sock, room)
	n.mu.Unlock()
	if deleted && n.obs != nil {
		n.obs.ObserveNamespaceRoom(n.key, room, false)
	}
}

// leaveLocked removes sock from room and reports whether the room is now
// empty (and gone). n.mu is held.
func (n *nspState) leaveLocked(sock *Socket, room string) bool {
	members, ok := n.rooms[room]
	if !ok {
		return false
	}
	if _, in := members[sock]; !in {
		return false
	}
	delete(members, sock)
	if i := slices.Index(sock.rooms, room); i >= 0 {
		sock.rooms = slices.Delete(sock.rooms, i, i+1)
	}
	if len(members) == 0 {
		delete(n.rooms, room)
		return true
	}
	return false
}

// remove takes sock out of the namespace and every room.
func (n *nspState) remove(sock *Socket) {
	n.mu.Lock()
	var deleted []string
	for _, r := range slices.Clone(sock.rooms) {
		if n.leaveLocked(sock, r) {
			deleted = append(deleted, r)
		}
	}
	if n.sockets[sock.id] == sock {
		delete(n.sockets, sock.id)
	}
	n.mu.Unlock()
	if n.obs != nil {
		for _, r := range deleted {
			n.obs.ObserveNamespaceRoom(n.key, r, false)
		}
	}
}

// roomsOf returns a copy of sock's rooms, its own room first.
func (n *nspState) roomsOf(sock *Socket) []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return append([]string{sock.id}, sock.rooms...)
}

// inRoom reports whether sock is in room.
func (n *nspState) inRoom(sock *Socket, room string) bool {
	if room == sock.id {
		return true
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	_, in := n.rooms[room][sock]
	return in
}

// members returns the connected sockets in rooms (every socket of the
// namespace when rooms is empty) that are in none of except, each once.
func (n *nspState) members(rooms, except []string) []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	excluded := func(sock *Socket) bool {
		for _, r := range except {
			if r == sock.id {
				return true
			}
			if _, in := n.rooms[r][sock]; in {
				return true
			}
		}
		return false
	}
	var out []*Socket
	if len(rooms) == 0 {
		out = make([]*Socket, 0, len(n.sockets))
		for _, sock := range n.sockets {
			if !excluded(sock) {
				out = append(out, sock)
			}
		}
		return out
	}
	var seen map[*Socket]struct{}
	if len(rooms) > 1 {
		seen = make(map[*Socket]struct{})
	}
	add := func(sock *Socket) {
		if seen != nil {
			if _, dup := seen[sock]; dup {
				return
			}
			seen[sock] = struct{}{}
		}
		if !excluded(sock) {
			out = append(out, sock)
		}
	}
	for _, r := range rooms {
		if sock, ok := n.sockets[r]; ok {
			add(sock) // a socket's own room
		}
		for sock := range n.rooms[r] {
			add(sock)
		}
	}
	return out
}
