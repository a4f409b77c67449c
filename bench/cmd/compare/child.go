package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child processes: the servers, redis-server and the load generator.

const (
	// stopGrace is how long a child has to exit after SIGTERM before it is
	// killed.
	stopGrace = 10 * time.Second
	// waitDelay bounds how long Wait waits for a killed child's output
	// pipes, which a grandchild could hold open.
	waitDelay = 5 * time.Second
	// tailBytes is how much of a child's stderr and stdout is kept for
	// error messages.
	tailBytes = 8 << 10
)

// child is a running child process. Its fields are set by startChild;
// exitErr and exited are valid once done is closed.
type child struct {
	name    string
	cmd     *exec.Cmd
	stdout  *lineWatcher
	stderr  *tailBuffer
	started time.Time
	done    chan struct{}
	exitErr error
	exited  time.Time
}

// children tracks the live children, so that every one is stopped when the
// orchestrator exits, whatever path it takes. Safe for concurrent use.
type children struct {
	mu   sync.Mutex
	live map[*child]struct{}
}

// pin is the CPU a child is pinned to with taskset; -1 means unpinned.
type pin int

const noPin pin = -1

// startChild starts argv in dir with env (nil = the orchestrator's),
// pinned to cpu with `taskset -c` unless cpu is noPin. taskset executes the
// program in its own process, so the child's pid is the program's. stdout
// lines are watched for watchPrefix ("" = none); verbose copies stderr to
// the orchestrator's stderr, prefixed with name.
func (cs *children) start(name string, cpu pin, dir string, env []string, watchPrefix string, verbose bool, argv ...string) (*child, error) {
	if cpu != noPin {
		argv = append([]string{"taskset", "-c", strconv.Itoa(int(cpu))}, argv...)
	}
	c := &child{
		name:   name,
		stdout: newLineWatcher(watchPrefix),
		stderr: &tailBuffer{max: tailBytes},
		done:   make(chan struct{}),
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = c.stdout
	cmd.Stderr = c.stderr
	if verbose {
		cmd.Stderr = &prefixWriter{prefix: name + ": ", next: c.stderr}
	}
	// Own process group: the terminal's Ctrl-C reaches the orchestrator
	// only, which stops the children in order; Pdeathsig kills the child if
	// the orchestrator dies without doing so (it fires when the starting
	// OS thread exits, which Go threads do only when locked, and we lock
	// none).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = waitDelay
	c.cmd = cmd
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("compare: start %s: %w", name, err)
	}
	c.started = time.Now()
	cs.mu.Lock()
	if cs.live == nil {
		cs.live = make(map[*child]struct{})
	}
	cs.live[c] = struct{}{}
	cs.mu.Unlock()
	go func() {
		c.exitErr = cmd.Wait()
		c.exited = time.Now()
		cs.mu.Lock()
		delete(cs.live, c)
		cs.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// stopAll stops every live child at once (SIGTERM, SIGKILL after
// stopGrace) and returns when all have exited.
func (cs *children) stopAll() {
	cs.mu.Lock()
	live := make([]*child, 0, len(cs.live))
	for c := range cs.live {
		live = append(live, c)
	}
	cs.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range live {
		wg.Go(func() { c.stop() })
	}
	wg.Wait()
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exitedNow reports whether the child has exited.
func (c *child) exitedNow() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stopResult says how a child ended.
type stopResult struct {
	took   time.Duration // from SIGTERM to exit
	killed bool          // SIGKILL was needed
	err    error         // the exit status: nil for 0
}

// stop sends SIGTERM, then SIGKILL to the child's process group after
// stopGrace, and waits for the exit. On a child that already exited it
// returns how it ended.
func (c *child) stop() stopResult {
	if c.exitedNow() {
		return stopResult{err: c.exitErr}
	}
	start := time.Now()
	_ = c.cmd.Process.Signal(syscall.SIGTERM) // fails only if it just exited
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-c.done:
		return stopResult{took: time.Since(start), err: c.exitErr}
	case <-t.C:
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	<-c.done // Wait returns: the process is dead and waitDelay bounds the pipes
	return stopResult{took: time.Since(start), killed: true, err: c.exitErr}
}

// describe returns the child's exit status and the end of its stderr, for
// an error message.
func (c *child) describe() string {
	var b strings.Builder
	if c.exitedNow() {
		if c.exitErr != nil {
			fmt.Fprintf(&b, "%s exited: %v", c.name, c.exitErr)
		} else {
			fmt.Fprintf(&b, "%s exited with status 0", c.name)
		}
	} else {
		fmt.Fprintf(&b, "%s still running", c.name)
	}
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		fmt.Fprintf(&b, "; stderr ends with:\n%s", indent(s))
	}
	if s := strings.TrimSpace(c.stdout.tail.String()); s != "" {
		fmt.Fprintf(&b, "\nstdout ends with:\n%s", indent(s))
	}
	return b.String()
}

// indent indents every line of s by four spaces.
func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// waitLine waits up to timeout for the child to print its watched line
// and returns the rest of it (after the prefix).
func (c *child) waitLine(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-c.stdout.found:
		return line, nil
	case <-c.done:
		// The line may have been printed just before the exit.
		select {
		case line := <-c.stdout.found:
			return line, nil
		default:
		}
		return "", fmt.Errorf("compare: %s exited before printing %q: %s", c.name, c.stdout.prefix, c.describe())
	case <-t.C:
		return "", fmt.Errorf("compare: %s did not print %q within %v: %s", c.name, c.stdout.prefix, timeout, c.describe())
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

// wait waits for the child to exit, at most until ctx is done; then it
// stops it.
func (c *child) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.exitErr
	case <-ctx.Done():
		c.stop()
		return fmt.Errorf("compare: %s stopped: %w", c.name, context.Cause(ctx))
	}
}

// tailBuffer is an io.Writer that keeps the last max bytes written. Safe
// for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// Bytes returns a copy of what the buffer holds.
func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}

// lineWatcher is an io.Writer that reports the first line starting with
// prefix on found (the rest of the line, trimmed), and keeps the last
// output in tail. Safe for concurrent use.
type lineWatcher struct {
	prefix string
	found  chan string // buffered: receives at most one line
	tail   *tailBuffer

	mu      sync.Mutex
	partial []byte // the current line, until its '\n'
	sent    bool
}

func newLineWatcher(prefix string) *lineWatcher {
	return &lineWatcher{prefix: prefix, found: make(chan string, 1), tail: &tailBuffer{max: tailBytes}}
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	_, _ = w.tail.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent || w.prefix == "" {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
		if rest, ok := strings.CutPrefix(line, w.prefix); ok {
			w.found <- strings.TrimSpace(rest)
			w.sent = true
			w.partial = nil
			break
		}
	}
	if len(w.partial) > tailBytes {
		// A line this long is not the one we watch for.
		w.partial = w.partial[:0]
	}
	return len(p), nil
}

// prefixWriter copies complete lines to os.Stderr with a prefix, and
// everything to next.
type prefixWriter struct {
	prefix string
	next   *tailBuffer

	mu      sync.Mutex
	partial []byte
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	_, _ = w.next.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(os.Stderr, "%s%s\n", w.prefix, w.partial[:i])
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// runCommand runs argv in dir to completion, at most timeout, and returns
// its combined output; the error carries the output's end.
func runCommand(ctx context.Context, timeout time.Duration, dir string, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
		tail := out
		if len(tail) > tailBytes {
			tail = tail[len(tail)-tailBytes:]
		}
		return out, fmt.Errorf("compare: %s: %w\n%s", strings.Join(argv, " "), err, indent(strings.TrimSpace(string(tail))))
	}
	return out, nil
}

// errNotFound says that a program the benchmark needs is missing.
var errNotFound = errors.New("compare: program not found")

// lookPath is exec.LookPath with a how-to-fix message.
func lookPath(name, install string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s (%s)", errNotFound, name, install)
	}
	return p, nil
}
