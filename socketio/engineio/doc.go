// Package engineio is herald's Engine.IO v4 server: the transport layer of
// Socket.IO, usable on its own as Node's engine.io package is. A client
// (engine.io-client, or socket.io-client underneath) opens a session over
// HTTP long-polling or WebSocket, upgrades from the one to the other, and
// exchanges message packets, text or binary, with heartbeats to detect
// dead peers.
//
//	srv, err := engineio.NewServer(engineio.Config{
//		OnSession: func(s *engineio.Session) engineio.Handler { return echo{} },
//	})
//	mux.Handle("/engine.io/", srv)
//	...
//	func (echo) OnMessage(s *engineio.Session, data []byte, binary bool) {
//		if binary {
//			_ = s.Send(engineio.NewBinaryMessage(data))
//		} else {
//			_ = s.Send(engineio.NewTextMessage(data))
//		}
//	}
//
// # Wire behaviour
//
// Where the protocol's description is silent, the server answers as Node's
// engine.io 6.6 does, byte for byte where a client can tell: the open
// packet's members and their order, the error bodies ({"code","message"}),
// the noop that answers a parked poll when the client closes or upgrades,
// 400 for a poll on a session that has upgraded, the close packet to a
// parked poll when the server closes. It departs from Node where Node's
// behaviour is a race or unbounded: a poll that comes right after a
// response is never taken for an overlap, and every buffer and request has
// a bound (Config.MaxPayload, MaxBufferedBytes, MaxPayloadPackets,
// PollBodyTimeout).
//
// # Concurrency
//
// Every method is safe for concurrent use. A Handler's calls for one
// session never overlap; see Handler. Sending never waits for the network:
// Session.Send queues, and a slow client is closed once its queue passes
// Config.MaxBufferedBytes. One timer goroutine serves every session's
// heartbeat. On Linux an idle WebSocket has no goroutine: one epoll
// watcher serves them all, and a worker reads a connection only while it
// has data (elsewhere, and over TLS, each WebSocket has a reader
// goroutine); a writer runs while frames are queued. Long-polling runs on
// the requests' goroutines.
//
// # Shutdown
//
// Server.Close refuses new sessions, closes every session and waits for
// the Server's goroutines. http.Server.Shutdown does not close WebSockets
// (they are hijacked connections): call Close first.
package engineio
