package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Reading a process's memory and CPU time from /proc (Linux only).

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which the kernel fixes at 100 on Linux (sysconf(_SC_CLK_TCK) = 100), so
// one tick is 10 ms.
const clockTicks = 100

// errProc marks /proc content that cannot be parsed.
var errProc = errors.New("compare: bad /proc data")

// parseVmRSS returns the VmRSS line of a /proc/<pid>/status, in KiB.
func parseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%w: VmRSS line %q", errProc, strings.TrimSpace(string(line)))
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kib < 0 {
			return 0, fmt.Errorf("%w: VmRSS line %q", errProc, strings.TrimSpace(string(line)))
		}
		return kib, nil
	}
	return 0, fmt.Errorf("%w: no VmRSS line (a kernel thread, or a zombie)", errProc)
}

// parseStatCPU returns utime+stime of a /proc/<pid>/stat, in clock ticks.
// The command name (field 2) is in parentheses and may itself hold spaces
// and parentheses, so the fields are counted from the last ')'.
func parseStatCPU(stat []byte) (int64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat without a command name", errProc)
	}
	// After ')': field 3 (state) is f[0], so field n is f[n-3];
	// utime is field 14, stime field 15.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: stat has %d fields after the command name, want at least 13", errProc, len(f))
	}
	var total int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: stat utime/stime %q", errProc, s)
		}
		total += n
	}
	return total, nil
}

// ticksToDuration converts clock ticks to a duration.
func ticksToDuration(ticks int64) time.Duration {
	return time.Duration(ticks) * (time.Second / clockTicks)
}

// parseCPUList parses a Linux CPU list such as "0-3,8,10-11" (the format of
// Cpus_allowed_list) into the CPU numbers, ascending as written.
func parseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("%w: empty CPU list", errProc)
	}
	var cpus []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%w: CPU list %q", errProc, s)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(hi)
			if err != nil || b < a {
				return nil, fmt.Errorf("%w: CPU list %q", errProc, s)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("%w: CPU list %q", errProc, s)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// parseStatusField returns the value of the "name:" line of a
// /proc/<pid>/status (or /proc/meminfo, /proc/cpuinfo: any "key: value"
// file), trimmed, and whether it was found.
func parseStatusField(data []byte, name string) (string, bool) {
	for line := range bytes.Lines(data) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && string(bytes.TrimSpace(k)) == name {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// rssKiB returns the resident set size of process pid, in KiB.
func rssKiB(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("compare: read RSS: %w", err)
	}
	kib, err := parseVmRSS(data)
	if err != nil {
		return 0, fmt.Errorf("compare: process %d: %w", pid, err)
	}
	return kib, nil
}

// cpuTicks returns the user+system CPU time of process pid (all its
// threads), in clock ticks.
func cpuTicks(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("compare: read CPU time: %w", err)
	}
	t, err := parseStatCPU(data)
	if err != nil {
		return 0, fmt.Errorf("compare: process %d: %w", pid, err)
	}
	return t, nil
}
