//go:build !linux

package eio

import "syscall"

func bindNoPort(network, address string, rc syscall.RawConn) error { return nil }
