package adapter

import (
	"context"
	"errors"
)

// Presence knows which users have at least one connected socket. A user is
// online while any of their sockets is connected, on any node; many tabs of
// one user count as one user.
//
// Add and Remove are idempotent per socket: adding a socket twice, or
// removing one that is not there, changes nothing and reports no
// transition. That is what keeps duplicate disconnect events from counting
// a user twice.
type Presence interface {
	// Add records socketID of userID. first reports whether the user was
	// offline before (the user_online transition).
	Add(ctx context.Context, userID, socketID string) (first bool, err error)
	// Remove forgets socketID of userID. last reports whether that was the
	// user's last socket (the user_offline transition).
	Remove(ctx context.Context, userID, socketID string) (last bool, err error)
	// IsOnline reports whether userID has a connected socket.
	IsOnline(ctx context.Context, userID string) (bool, error)
	// Users returns the online users, sorted.
	Users(ctx context.Context) ([]string, error)
	// Counts returns how many users are online and how many sockets they
	// have in all.
	Counts(ctx context.Context) (users, sockets int, err error)
}

// UserSocketCounter is implemented by a Presence that counts one user's
// sockets across the cluster (MemoryPresence, RedisPresence), for a limit
// on connections per user.
type UserSocketCounter interface {
	// UserSockets returns how many sockets userID has connected. A
	// cluster store may count the sockets of a node that died for up to
	// its expiry time.
	UserSockets(ctx context.Context, userID string) (int, error)
}

// ErrUserLimit is returned by UserSocketLimiter.AddLimited when the user
// has the maximum number of sockets already.
var ErrUserLimit = errors.New("adapter: the user has the maximum number of sockets")

// UserSocketLimiter is implemented by a Presence that adds a socket only
// while its user has fewer than a maximum number of sockets, checked and
// added in one atomic step (MemoryPresence; RedisPresence across the
// cluster), so that concurrent handshakes of one user cannot pass the limit
// together.
type UserSocketLimiter interface {
	// AddLimited is Add, unless userID has max sockets or more already:
	// then it adds nothing and fails with ErrUserLimit. A socket already
	// added is not counted twice.
	AddLimited(ctx context.Context, userID, socketID string, max int) (first bool, err error)
}

// ErrPartial is returned, wrapped, by a cluster Presence's reads together
// with an answer that covers this node's own sockets only: the store did
// not answer, or failed and has not answered since (it is then not asked,
// so that a stalled store does not slow every read). Callers that can use
// a partial answer check errors.Is(err, ErrPartial) and use the value.
var ErrPartial = errors.New("adapter: partial answer: this node's own sockets only")
