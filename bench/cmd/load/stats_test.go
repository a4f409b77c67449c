package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/bench/internal/eio"
)

func TestPercentileMs(t *testing.T) {
	hundred := make([]uint32, 100)
	for i := range hundred {
		hundred[i] = uint32(100-i) * 1000 // 100 ms .. 1 ms, unsorted
	}
	tests := []struct {
		samples []uint32
		q       float64
		want    float64
	}{
		{nil, 0.5, 0},
		{[]uint32{1234}, 0.99, 1.234},
		{[]uint32{3, 1, 2}, 0.5, 0.002},
		{hundred, 0.5, 50},
		{hundred, 0.99, 99},
		{hundred, 1, 100},
		{[]uint32{1, 2}, 0, 0.001},
	}
	for _, tt := range tests {
		if got := percentileMs(tt.samples, tt.q); got != tt.want {
			t.Errorf("percentileMs(%d samples, %v) = %v, want %v", len(tt.samples), tt.q, got, tt.want)
		}
	}
}

func TestClampMicros(t *testing.T) {
	for _, tt := range []struct {
		in   int64
		want uint32
	}{{-5, 0}, {0, 0}, {7, 7}, {1 << 40, 1<<32 - 2}} {
		if got := clampMicros(tt.in); got != tt.want {
			t.Errorf("clampMicros(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
	if got := micros(1500 * time.Microsecond); got != 1500 {
		t.Errorf("micros = %d", got)
	}
}

func TestRate(t *testing.T) {
	if got := rate(10, 0); got != 0 {
		t.Errorf("rate(10, 0) = %v", got)
	}
	if got := rate(1000, 3); got != 333.3 {
		t.Errorf("rate(1000, 3) = %v", got)
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&eio.RefusedError{Message: "unauthorized", Code: "token_invalid"}, "connect_error: unauthorized (token_invalid)"},
		{&eio.RefusedError{Message: "no"}, "connect_error: no"},
		{&eio.Error{Stage: eio.StageDial, Err: fmt.Errorf("dial tcp 127.0.0.1:1: %w", syscall.ECONNREFUSED)}, "dial: connection refused"},
		{&eio.Error{Stage: eio.StageOpen, Err: io.ErrUnexpectedEOF}, "open: unexpected EOF"},
		{&eio.Error{Stage: "read", Err: &websocket.CloseError{Code: 1006}}, "read: closed by the server (1006)"},
		{context.DeadlineExceeded, "context deadline exceeded"},
		{errors.New(string(make([]byte, 200))), string(make([]byte, 100)) + "..."},
	}
	for _, tt := range tests {
		if got := errorKind(tt.err); got != tt.want {
			t.Errorf("errorKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
