//go:build unix

package main

import (
	"math"
	"syscall"
)

// fileLimit is the soft RLIMIT_NOFILE (which the Go runtime raised to the
// hard limit at startup).
func fileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(l.Cur)
}
