package main

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"typical", "Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   51234 kB\nRssAnon:\t 1 kB\n", 51234, false},
		{"zero", "VmRSS:\t0 kB\n", 0, false},
		{"no trailing newline", "VmRSS:\t12 kB", 12, false},
		{"missing (kernel thread)", "Name:\tkthreadd\nState:\tS\n", 0, true},
		{"empty", "", 0, true},
		{"not a number", "VmRSS:\tlots kB\n", 0, true},
		{"negative", "VmRSS:\t-5 kB\n", 0, true},
		{"other unit", "VmRSS:\t5 MB\n", 0, true},
		{"no unit", "VmRSS:\t5\n", 0, true},
		{"extra field", "VmRSS:\t5 kB x\n", 0, true},
		{"overflow", "VmRSS:\t99999999999999999999999 kB\n", 0, true},
		{"binary", "VmRSS:\x00\xff kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseVmRSS(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errProc) {
				t.Errorf("error %v is not errProc", err)
			}
			if got != tt.want {
				t.Errorf("parseVmRSS(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	// Fields after the name: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime ...
	const tail = " S 1 1 1 0 -1 4194304 75 0 0 0 1234 567 8 9 20 0 1 0 210557\n"
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"typical", "42 (node)" + tail, 1801, false},
		{"spaces and parens in the name", "42 (a) b (c d))" + tail, 1801, false},
		{"exactly stime last", "42 (x) S 1 1 1 0 -1 0 0 0 0 0 3 4", 7, false},
		{"no name", "42 node" + tail, 0, true},
		{"empty", "", 0, true},
		{"truncated", "42 (x) S 1 1 1 0 -1 0 0 0 0 0 3", 0, true},
		{"utime not a number", "42 (x) S 1 1 1 0 -1 0 0 0 0 0 x 4 0", 0, true},
		{"negative stime", "42 (x) S 1 1 1 0 -1 0 0 0 0 0 3 -4 0", 0, true},
		{"only a paren", ")", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseStatCPU(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errProc) {
				t.Errorf("error %v is not errProc", err)
			}
			if got != tt.want {
				t.Errorf("parseStatCPU(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"0-1", []int{0, 1}, false},
		{"0", []int{0}, false},
		{"1,3-4,7\n", []int{1, 3, 4, 7}, false},
		{"", nil, true},
		{"a", nil, true},
		{"3-1", nil, true},
		{"0-", nil, true},
		{"-1", nil, true},
		{"1,,2", nil, true},
		{"0-99999999", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseCPUList(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseCPUList(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("parseCPUList(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseStatusField(t *testing.T) {
	data := []byte("processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nCpus_allowed_list:\t0-1\nbroken line\n")
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"model name", "Some CPU @ 2.0GHz", true},
		{"Cpus_allowed_list", "0-1", true},
		{"processor", "0", true},
		{"missing", "", false},
		{"broken line", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseStatusField(data, tt.name)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseStatusField(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestTicksToDuration(t *testing.T) {
	if got := ticksToDuration(150); got != 1500*time.Millisecond {
		t.Errorf("ticksToDuration(150) = %v, want 1.5s", got)
	}
}

// TestOwnProcess reads this test process's /proc files: they parse.
func TestOwnProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc (not Linux)")
	}
	kib, err := rssKiB(os.Getpid())
	if err != nil || kib <= 0 {
		t.Errorf("rssKiB(self) = %d, %v; want > 0", kib, err)
	}
	if _, err := cpuTicks(os.Getpid()); err != nil {
		t.Errorf("cpuTicks(self): %v", err)
	}
	if _, err := rssKiB(-1); err == nil {
		t.Error("rssKiB(-1): no error")
	}
	if _, err := cpuTicks(-1); err == nil {
		t.Error("cpuTicks(-1): no error")
	}
}
