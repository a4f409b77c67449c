package testenv

import "syscall"

// ChildProcAttr puts the child in its own process group, so that it can be
// signalled with all its children, and has the kernel send it sig if the
// test binary dies without running its cleanups (go test -timeout, Ctrl-C:
// a separate group does not get the terminal's SIGINT).
//
// Pdeathsig fires when the OS thread that started the child exits, which
// the Go runtime only does for a goroutine that exits while locked to its
// thread (runtime.LockOSThread); the tests do not do that.
func ChildProcAttr(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}
