//go:build !linux

package engineio

import (
	"errors"
	"net"
)

// poller is Linux's epoll (poller_linux.go); elsewhere every WebSocket has
// a reader goroutine.
type poller struct{}

var errNoPoller = errors.New("engineio: no poller on this system")

func newPoller(func(func()) bool) (*poller, error) { return nil, errNoPoller }

func fdOf(net.Conn) (int, error)                 { return 0, errNoPoller }
func (p *poller) reserve(func()) (uint64, error) { return 0, errNoPoller }
func (p *poller) add(int, uint64) error          { return errNoPoller }
func (p *poller) rearm(int, uint64) error        { return errNoPoller }
func (p *poller) remove(int, uint64)             {}
func (p *poller) close()                         {}
