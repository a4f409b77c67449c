package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Helpers for tests that run real programs (nginx here, redis-server in
// internal/redistest).

// FreePort returns a 127.0.0.1 TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: pick a port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("testenv: pick a port: %w", err)
	}
	return port, nil
}

// FileSize returns the size of the file at path, 0 if it cannot be read.
func FileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ReadFrom returns the file from offset on, or a note saying why it cannot.
func ReadFrom(path string, offset int64) string {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ""
		}
		return fmt.Sprintf("(%v)\n", err)
	}
	if offset > int64(len(data)) {
		offset = 0
	}
	return string(data[offset:])
}
