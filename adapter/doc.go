// Package adapter holds the backends that let herald nodes act as one
// server: a Broker that carries emits to every node that has sockets in the
// target rooms, and a Presence store that knows which users are online.
//
// NewMemoryBroker and NewMemoryPresence are the single-node defaults that
// socketio.Server uses when its Config names no backend. Cluster backends
// (Redis) implement the same interfaces.
//
// # Concurrency
//
// Every type in this package is safe for concurrent use. A Broker calls the
// deliver function given to Subscribe for one message at a time, in the
// order the messages were published from one goroutine, and never while
// holding a lock of its own, so deliver may call back into the Broker.
//
// # Ownership
//
// Backends that talk to Redis take a client the caller owns; they never
// close it. Close on a backend stops its own goroutines only.
package adapter
