// Package socketio is herald's Socket.IO v4 server: unmodified
// socket.io-client 4.x frontends connect to it over WebSocket or HTTP
// long-polling, authenticate with a JWT at the handshake, and receive the
// events the Go backend sends to their user.
//
//	srv, err := socketio.New(socketio.Config{Verifier: verifier})
//	mux.Handle(srv.Path(), srv)                               // "/socket.io/"
//	mux.Handle("GET /api/v1/websocket/stats", srv.StatsHandler())
//	...
//	srv.EmitToUser(ctx, userID, events.JobProgress, events.JobProgressPayload{JobID: id, Progress: 40})
//
// # Authentication
//
// Every handshake must present a token: socket.io-client's
// io(url, {auth: {token}}), else an "Authorization: Bearer" header, else
// (opt-in, Config.TokenQueryParam) a query parameter. A rejected client gets
// connect_error with err.message "unauthorized" and err.data.code one of
// "token_missing", "token_invalid" or "token_expired"; nothing else about
// the failure reaches it. During Shutdown the code is "server_shutting_down".
//
// # Rooms and presence
//
// Every socket joins its user's room, UserRoom(id) = "user:<id>", so
// EmitToUser reaches every tab and device of that user. A user is online
// while at least one of their sockets is connected; Config.OnPresence hears
// each transition once, and clients hear user_online/user_offline only when
// Config.BroadcastPresence is set (Config.PresenceVisible filters who may
// see whom).
//
// # Protocol
//
// The Server speaks Engine.IO v4 (package engineio) and Socket.IO v5
// itself, answering as Node's engine.io 6.6 and socket.io 4.8 do; where it
// deliberately differs, and the bound on every buffer a client can grow,
// are in docs/protocol.md. An idle WebSocket costs no goroutine on Linux
// (an epoll poller watches it); emits to many sockets are encoded once.
//
// # Concurrency
//
// Every method of Server and Socket is safe for concurrent use. The
// goroutines a Server starts (its timers, the WebSocket poller and
// writers, presence notifications, event handlers) end when Shutdown
// returns. Handlers of one socket run one at a time in the
// order the client sent the events; different sockets' handlers run
// concurrently. OnPresence runs on one goroutine, in transition order,
// never under the Server's locks.
//
// # Shutdown
//
// Shutdown refuses new handshakes, closes every connection (clients see
// "transport close" and reconnect, elsewhere if another node runs), marks
// their users offline and stops the Server's goroutines. http.Server's own
// Shutdown does not close hijacked WebSocket connections, so call both:
//
//	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
//	defer cancel()
//	_ = srv.Shutdown(ctx)     // sockets first: they are hijacked connections
//	_ = httpSrv.Shutdown(ctx) // then the HTTP server
//
// The Server never closes the Broker or Presence it is given; the caller
// closes them after Shutdown.
package socketio
