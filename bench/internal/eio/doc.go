// Package eio is the benchmark's own Socket.IO client: Engine.IO v4 over
// WebSocket (Dialer, Conn; gorilla/websocket) or over HTTP long-polling
// only (PollDialer, PollConn; net/http, never upgraded), the Socket.IO v5
// packets a load generator needs, and scanners that read the "bench"
// event's "seq" and "sentAt" without decoding the JSON.
//
// It is built for many connections per process: Connect does the whole
// handshake in the calling goroutine and starts none (a PollDialer's
// net/http transport runs its own per TCP connection), a connection holds
// no read buffer while it waits for a message or a payload (buffers come
// from a shared pool), and Parse, CutPayload, SplitEvent and BenchFields
// do not allocate.
//
// # Concurrency
//
// A Conn has one reader: Next and Close must not be called concurrently with
// each other. Pong and Send write and must not be called concurrently with
// each other either (the reading goroutine is the natural caller). SendClose
// and CloseNow are safe from any goroutine at any time; they are how another
// goroutine ends a connection that is being read.
//
// A PollConn is the same: Next from one reading goroutine; Pong and Send
// POST, one at a time (two POSTs at once are an overlap, which the server
// punishes by closing the session), and the reading goroutine is the
// natural caller (it does not poll meanwhile); SendClose and CloseNow from
// any goroutine.
package eio
