//go:build linux

package engineio

import (
	"net"
	"syscall"
	"unsafe"
)

// maxIovecs is how many buffers one writev takes (Linux's IOV_MAX).
const maxIovecs = 1024

// rawConn returns the raw connection of a plain TCP connection, for
// writeNow, or nil.
func rawConn(nc net.Conn) syscall.RawConn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeNow writes what of msgs the socket takes at once, with one
// non-blocking writev, and returns the rest (the frame it stopped in cut
// at the first byte not written). It never waits: a client that does not
// read leaves the rest to the writer goroutine.
func (ws *wsConn) writeNow(msgs []*Message) (rest []*Message, err error) {
	if len(msgs) > maxIovecs {
		rest = msgs[maxIovecs:]
		msgs = msgs[:maxIovecs]
	}
	iovs := make([]syscall.Iovec, 0, len(msgs))
	for _, m := range msgs {
		f := m.frame()
		iovs = append(iovs, syscall.Iovec{Base: &f[0]})
		iovs[len(iovs)-1].SetLen(len(f))
	}
	var n int
	var errno syscall.Errno
	werr := ws.raw.Write(func(fd uintptr) bool {
		for {
			r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iovs[0])), uintptr(len(iovs)))
			if e == syscall.EINTR {
				continue
			}
			n, errno = int(r), e
			return true // never wait for the socket
		}
	})
	switch {
	case werr != nil:
		return nil, werr
	case errno == syscall.EAGAIN:
		n = 0
	case errno != 0:
		return nil, errno
	}
	ws.writes.Add(1)
	for i, m := range msgs {
		f := m.frame()
		if n >= len(f) {
			n -= len(f)
			continue
		}
		left := []*Message{}
		if n > 0 {
			left = append(left, &Message{buf: f[n:]}) // the rest of a frame
			i++
		}
		left = append(left, msgs[i:]...)
		return append(left, rest...), nil
	}
	return rest, nil
}
