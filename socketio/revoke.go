package socketio

import (
	"context"
	"fmt"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
)

// DisconnectUser disconnects every socket of userID, in every namespace, on
// every node: each receives server_disconnect ({reason}), then a Socket.IO
// DISCONNECT, so socket.io-client reports "io server disconnect" and does
// not reconnect by itself. Use it when a user's access is revoked; the
// user's tokens should be rejected by the Verifier from then on, or the
// client can simply connect again. reason (at most events.MaxMessageLength
// bytes) reaches the clients and the logs. It fails like EmitToUser; the
// sockets of this node are disconnected even when the Broker fails.
//
// With a Redis broker it is Node's disconnectSockets request, which Node
// socket.io servers sharing the Redis honour too (without the reason).
func (s *Server) DisconnectUser(ctx context.Context, userID, reason string) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	if err := s.errIfClosed(); err != nil {
		return err
	}
	return publishDisconnect(ctx, s.cfg.Broker, append([]string{""}, s.cfg.Namespaces...), UserRoom(userID), reason)
}

// DisconnectUser is Server.DisconnectUser from a process without sockets.
// It disconnects the user's sockets in "/" and in the namespaces given (the
// Emitter does not know which ones the servers serve).
func (e *Emitter) DisconnectUser(ctx context.Context, userID, reason string, namespaces ...string) error {
	if err := validateUserID(userID); err != nil {
		return err
	}
	nsps := []string{""}
	for _, n := range namespaces {
		if err := checkNamespace(n); err != nil {
			return fmt.Errorf("%w: %q %v", ErrUnknownNamespace, n, err)
		}
		nsps = append(nsps, n)
	}
	return publishDisconnect(ctx, e.broker, nsps, UserRoom(userID), reason)
}

func publishDisconnect(ctx context.Context, b adapter.Broker, nsps []string, room, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := (events.ServerDisconnectPayload{Reason: reason}).Validate(); err != nil {
		return fmt.Errorf("%w: %w", events.ErrInvalidPayload, err)
	}
	for _, nsp := range nsps {
		m := adapter.Message{Namespace: nsp, Rooms: []string{room}, Disconnect: true, Reason: reason}
		if err := b.Publish(ctx, m); err != nil {
			return fmt.Errorf("socketio: disconnect %s: %w", room, err)
		}
	}
	return nil
}

// disconnectLocal carries out a disconnect request on this node's sockets,
// on a goroutine of its own: a Broker may deliver under its locks, and a
// disconnect persists sessions through it.
func (s *Server) disconnectLocal(m adapter.Message) {
	nsp := s.nsps[wireNamespace(m.Namespace)]
	if nsp == nil {
		return
	}
	s.goroutine(func(context.Context) {
		socks := nsp.members(m.Rooms, m.Except)
		s.log.Info("disconnecting sockets on request", "rooms", m.Rooms, "namespace", nsp.name, "reason", m.Reason, "sockets", len(socks))
		for _, sock := range socks {
			if m.Close {
				sock.client.close()
				continue
			}
			data, err := events.ServerDisconnect.Encode(events.ServerDisconnectPayload{Reason: m.Reason}, s.cfg.Now())
			if err == nil {
				err = s.sendEvent(sock, events.ServerDisconnect.Name(), data)
			}
			if err != nil {
				s.log.Debug("server_disconnect not sent", "sid", sock.id, "err", err)
			}
			sock.Disconnect()
		}
	})
}
