package eio

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT (linux/in.h; Linux 4.2+),
// not in package syscall.
const ipBindAddressNoPort = 24

// bindNoPort lets the kernel choose the local port at connect time, with the
// whole 4-tuple known, rather than at bind time: a source address then
// shares ports across destinations and reuses TIME_WAIT ones as an unbound
// dial would. Best effort: an older kernel just ignores it.
func bindNoPort(network, address string, rc syscall.RawConn) error {
	return rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
}
