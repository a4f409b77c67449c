package adapter

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// go-redis ends a command at its context's deadline only when the client
// was built with Options.ContextTimeoutEnabled; otherwise it waits for its
// own ReadTimeout and retries (about 5 s by default against a Redis that
// stopped answering, SIGSTOP or a network partition). herald bounds every
// Redis operation on a path that serves local sockets (publishes,
// presence writes and reads, session recovery) by its own timeouts, so it
// does not rely on that option: without it, an operation runs on a
// goroutine of its own and the caller returns at the deadline.

// honoursDeadlines reports whether c ends commands at their context's
// deadline by itself.
func honoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// bounded runs op and returns its result, or ctx's error as soon as ctx
// ends, whichever comes first. Unless honours is true (the client ends
// commands at the deadline by itself) op runs on a goroutine of its own,
// which goes on after a deadline until the client's own timeouts end the
// command; its result is then dropped, and the caller treats the operation
// as one that may or may not have happened, as for any timeout. op must
// not touch the caller's state: compute its arguments before. ctx must
// have a deadline.
func bounded[T any](ctx context.Context, honours bool, op func(ctx context.Context) (T, error)) (T, error) {
	if honours {
		return op(ctx)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := op(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
