//go:build !linux

package testenv

import "syscall"

// ChildProcAttr puts the child in its own process group, so that it can be
// signalled with all its children. sig is for Linux's Pdeathsig only.
func ChildProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
