//go:build linux

package engineio

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// poller tells when idle WebSockets have something to read, so that an
// idle connection costs no goroutine (and no goroutine stack): one epoll
// instance, one goroutine blocked in epoll_wait, and for each connection
// that becomes readable a goroutine that reads what has arrived and then
// re-arms the connection. Connections are registered one-shot, so at most
// one goroutine reads a connection at a time.
//
// The connection stays in Go's own netpoller too: a read that finds a
// partial frame blocks its goroutine there until the rest arrives, as any
// read on a net.Conn does.
type poller struct {
	epfd  int
	wakeR int // a pipe whose read end stops the wait
	wakeW int
	spawn func(func()) bool // runs a readiness handler on a goroutine

	mu     sync.Mutex
	next   uint64
	conns  map[uint64]func()
	closed bool
	done   chan struct{}

	// epollMu keeps epoll_ctl calls off a closed epoll descriptor (whose
	// number another poller may have by then).
	epollMu sync.RWMutex
	epollOK bool
}

const pollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

// newPoller starts the poller's goroutine; close stops it. spawn runs each
// readiness handler on a goroutine.
func newPoller(spawn func(func()) bool) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	p := &poller{epfd: epfd, wakeR: fds[0], wakeW: fds[1], spawn: spawn, conns: make(map[uint64]func()), done: make(chan struct{})}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN} // key 0: the wake pipe
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wakeR, &ev); err != nil {
		p.closeFDs()
		return nil, err
	}
	p.epollOK = true
	go p.run()
	return p, nil
}

var errNotPollable = errors.New("engineio: connection has no file descriptor to poll")

// fdOf returns the file descriptor of a plain TCP connection (a TLS one
// buffers inside Go and cannot be polled).
func fdOf(nc net.Conn) (int, error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return 0, errNotPollable
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return 0, err
	}
	fd := -1
	if err := raw.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return 0, err
	}
	return fd, nil
}

// reserve returns the key under which ready will be called: on a goroutine
// of its own, each time the file descriptor registered under key (add)
// becomes readable or closed. ready must call rearm when it has read what
// there was, unless the connection is done.
func (p *poller) reserve(ready func()) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, net.ErrClosed
	}
	p.next++
	p.conns[p.next] = ready
	return p.next, nil
}

// add registers fd under key.
func (p *poller) add(fd int, key uint64) error {
	if err := p.ctl(syscall.EPOLL_CTL_ADD, fd, key); err != nil {
		p.forget(key)
		return err
	}
	return nil
}

// rearm waits for fd's next readiness.
func (p *poller) rearm(fd int, key uint64) error {
	return p.ctl(syscall.EPOLL_CTL_MOD, fd, key)
}

// remove unregisters fd, before it is closed.
func (p *poller) remove(fd int, key uint64) {
	p.forget(key)
	_ = p.ctl(syscall.EPOLL_CTL_DEL, fd, key)
}

func (p *poller) ctl(op, fd int, key uint64) error {
	p.epollMu.RLock()
	defer p.epollMu.RUnlock()
	if !p.epollOK {
		return net.ErrClosed
	}
	ev := epollEvent(key)
	return syscall.EpollCtl(p.epfd, op, fd, &ev)
}

func (p *poller) forget(key uint64) {
	p.mu.Lock()
	delete(p.conns, key)
	p.mu.Unlock()
}

// epollEvent carries key in the event's data, so that a readiness that
// races a close and the reuse of its file descriptor finds no connection
// rather than the wrong one.
func epollEvent(key uint64) syscall.EpollEvent {
	return syscall.EpollEvent{Events: pollEvents, Fd: int32(key), Pad: int32(key >> 32)}
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if key == 0 {
				return // close
			}
			p.mu.Lock()
			ready := p.conns[key]
			p.mu.Unlock()
			if ready != nil {
				p.spawn(ready)
			}
		}
	}
}

// close stops the poller's goroutine; the connections still registered
// are the caller's to close.
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_, _ = syscall.Write(p.wakeW, []byte{0})
	<-p.done
	p.epollMu.Lock()
	p.epollOK = false
	p.closeFDs()
	p.epollMu.Unlock()
}

func (p *poller) closeFDs() {
	syscall.Close(p.wakeR)
	syscall.Close(p.wakeW)
	syscall.Close(p.epfd)
}
