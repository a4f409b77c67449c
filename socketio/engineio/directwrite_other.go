//go:build !linux

package engineio

import (
	"net"
	"syscall"
)

func rawConn(net.Conn) syscall.RawConn { return nil }

// writeNow writes nothing where herald has no non-blocking writev: the
// writer goroutine writes everything.
func (ws *wsConn) writeNow(msgs []*Message) ([]*Message, error) { return msgs, nil }
