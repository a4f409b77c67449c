//go:build !linux

package testenv

import "syscall"

// sysProcAttr puts the child in its own process group, so that it can be
// signalled with all its children. sig is for Linux's Pdeathsig only.
func sysProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
