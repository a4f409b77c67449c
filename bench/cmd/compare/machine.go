package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The machine and the limits the benchmark runs under.

// machine describes where the benchmark ran.
type machine struct {
	NProc        int    `json:"nproc"`
	CPUModel     string `json:"cpuModel"`
	Kernel       string `json:"kernel"`
	MemTotal     string `json:"memTotal"`
	GoVersion    string `json:"goVersion"`
	NodeVersion  string `json:"nodeVersion"`
	RedisVersion string `json:"redisVersion,omitempty"`
}

// readMachine describes this machine; a part it cannot read says why.
func readMachine(ctx context.Context, root string, withRedis bool) machine {
	m := machine{NProc: runtime.NumCPU()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err != nil {
		m.CPUModel = fmt.Sprintf("(%v)", err)
	} else if v, ok := parseStatusField(data, "model name"); ok {
		m.CPUModel = v
	} else {
		m.CPUModel = "(no model name in /proc/cpuinfo)"
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err != nil {
		m.Kernel = fmt.Sprintf("(%v)", err)
	} else {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemTotal, _ = parseStatusField(data, "MemTotal")
	}
	version := func(argv ...string) string {
		out, err := runCommand(ctx, 30*time.Second, root, argv...)
		if err != nil {
			return fmt.Sprintf("(%s failed)", strings.Join(argv, " "))
		}
		s, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return s
	}
	m.GoVersion = version("go", "version")
	m.NodeVersion = version("node", "--version")
	if withRedis {
		m.RedisVersion = version("redis-server", "--version")
	}
	return m
}

// pinning decides whether children can be pinned: taskset must exist and
// this process must be allowed on CPUs 0 and 1. It returns "" when they
// can, else why not.
func pinning() string {
	if _, err := lookPath("taskset", "apt-get install util-linux"); err != nil {
		return "taskset not found"
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fmt.Sprintf("cannot read the CPU affinity: %v", err)
	}
	list, ok := parseStatusField(data, "Cpus_allowed_list")
	if !ok {
		return "no Cpus_allowed_list in /proc/self/status"
	}
	cpus, err := parseCPUList(list)
	if err != nil {
		return err.Error()
	}
	if !slices.Contains(cpus, 0) || !slices.Contains(cpus, 1) {
		return fmt.Sprintf("CPUs 0 and 1 are not both available (allowed: %s)", list)
	}
	return ""
}

// noFile is the open-files limit the children run under.
type noFile struct {
	limit uint64 // the soft limit the children inherit
	why   string // why it is not higher, when it is below what was wanted
}

// raiseNoFile raises this process's RLIMIT_NOFILE so that every child,
// which inherits it, may open want files: the soft limit to the hard one,
// and the hard one up to want (at most /proc/sys/fs/nr_open) when that is
// allowed (root, CAP_SYS_RESOURCE). It always sets the limit with
// syscall.Setrlimit, so that the children inherit the raised soft limit
// rather than the one the program started with.
func raiseNoFile(want uint64) noFile {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return noFile{why: fmt.Sprintf("getrlimit: %v", err)}
	}
	var why string
	if want > rl.Max {
		target := want
		if data, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil && n < target {
				target = n
				why = fmt.Sprintf("/proc/sys/fs/nr_open is %d", n)
			}
		}
		raised := syscall.Rlimit{Cur: target, Max: target}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err == nil {
			return noFile{limit: target, why: why}
		} else if errors.Is(err, syscall.EPERM) {
			why = fmt.Sprintf("the hard limit is %d and raising it was refused (%v: needs root with CAP_SYS_RESOURCE; raise it with `ulimit -Hn` or the container's nofile limit)", rl.Max, err)
		} else {
			why = fmt.Sprintf("the hard limit is %d and raising it failed: %v", rl.Max, err)
		}
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return noFile{why: fmt.Sprintf("setrlimit: %v", err)}
	}
	return noFile{limit: rl.Cur, why: why}
}

// localPorts returns how many ephemeral ports one source address has
// (net.ipv4.ip_local_port_range), 0 if unknown.
func localPorts() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 0
	}
	return hi - lo + 1
}

// findRoot returns the directory of herald's go.mod, from the working
// directory upwards.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("compare: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/herald-rt/herald\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("compare: run it inside the herald repository (no go.mod of github.com/herald-rt/herald above the working directory)")
		}
		dir = parent
	}
}

// commandLine returns how the command was run, shell-quoted; a binary of
// `go run` shows as `go run ./bench/cmd/compare`.
func commandLine(argv []string) string {
	prog := argv[0]
	if strings.Contains(prog, "go-build") {
		prog = "go run ./bench/cmd/compare"
	}
	parts := []string{prog}
	for _, a := range argv[1:] {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:@+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
