// Package redistest runs a real redis-server for one test, on a free
// 127.0.0.1 port, and lets the test break it: Kill, Restart on the same
// port, Pause and Resume.
//
// Start finds redis-server with testenv.RequireRedis: a missing binary skips
// the test with how to install it, or fails it when HERALD_INTEGRATION=1.
// The server runs as a child process in its own process group, with
// `--save "" --appendonly no`, its working directory and log file in
// t.TempDir(), and is killed by t.Cleanup. It never touches another redis
// (the system one on 6379 included): Start checks that the server answering
// on the port is the process it started.
//
// StartCluster runs several servers in cluster mode and forms a Redis
// Cluster of masters from them (see Cluster). StartSentinel runs a master,
// a replica and Redis Sentinel, for failover tests (see Sentinel).
//
// Concurrency: one goroutine per started process waits for it to exit; it
// ends when the process does, and Kill (registered with t.Cleanup) waits for
// it, so goleak sees no leftover goroutine. All methods of Server are safe
// for concurrent use.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/testenv"
)

// Errors of the start-up. Start and Restart report them through t.Fatal, so
// they are not exported.
var (
	// errExited: redis-server exited before it answered.
	errExited = errors.New("redistest: redis-server exited before it answered")
	// errPortInUse: redis-server could not bind its port; Start retries on
	// another port, Restart retries on the same one until its timeout.
	errPortInUse = errors.New("redistest: port in use")
	// errTimeout: redis-server did not answer within the start timeout.
	errTimeout = errors.New("redistest: redis-server did not answer in time")
)

const (
	// DefaultStartTimeout bounds how long Start and Restart wait for the
	// server to answer, retries included.
	DefaultStartTimeout = 10 * time.Second
	// startAttempts is how many free ports Start tries before giving up.
	startAttempts = 5
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	stopTimeout = 5 * time.Second
	// killTimeout is how long Kill waits for the process to be reaped.
	killTimeout = 10 * time.Second
	// probeInterval is the pause between two readiness probes or two
	// attempts to bind a port that is still in use.
	probeInterval = 20 * time.Millisecond
	// probeTimeout bounds one readiness probe (dial, write, read).
	probeTimeout = 500 * time.Millisecond
)

// Option changes how Start runs redis-server.
type Option func(*config)

type config struct {
	args         []string
	startTimeout time.Duration

	// Set by StartCluster for its nodes (see clusterNode).
	// dirArgs, when set, returns arguments for the server's working
	// directory; they go before args, so that WithArgs wins over them.
	dirArgs func(dir string) []string
	// pickPort picks the port of each start attempt; nil means testenv.FreePort.
	pickPort func() (int, error)

	// Set by StartSentinel for its sentinels (see sentinelNode).
	// confFile, when set, returns the path of a configuration file, which
	// goes first on the command line (the only place redis-server reads one
	// from), writing it into the server's directory when it is missing.
	confFile func(dir string) (string, error)
	// sentinels is the number of sentinel processes StartSentinel runs
	// (WithSentinels); Start ignores it.
	sentinels int
}

// WithArgs appends command-line arguments to redis-server, after the ones
// Start sets, so they win over them; for example
// WithArgs("--notify-keyspace-events", "KEA"). Do not pass --port, --bind,
// --dir, --logfile or --daemonize: Start relies on its own values.
func WithArgs(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// WithStartTimeout sets how long Start and Restart wait for the server to
// answer, retries included; zero or negative means DefaultStartTimeout.
func WithStartTimeout(d time.Duration) Option {
	return func(c *config) { c.startTimeout = d }
}

// Server is a redis-server started by Start. Its port stays the same across
// Restart.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cfg  config

	mu   sync.Mutex
	proc *process // nil or exited after Kill/Stop
}

// process is one run of redis-server.
type process struct {
	cmd  *exec.Cmd
	out  *os.File      // stdout and stderr of the process
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result, readable after done
}

// Start runs redis-server on a free 127.0.0.1 port and returns once it
// answers PING. It skips or fails t when redis-server is missing (see
// testenv.Require) and fails t when the server does not come up; it retries
// on another port when the chosen one was taken in the meantime. The server
// is killed by t.Cleanup.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin := testenv.RequireRedis(t)
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	for _, o := range opts {
		o(&s.cfg)
	}
	if s.cfg.startTimeout <= 0 {
		s.cfg.startTimeout = DefaultStartTimeout
	}
	t.Cleanup(s.Kill)

	pick := testenv.FreePort
	if s.cfg.pickPort != nil {
		pick = s.cfg.pickPort
	}
	deadline := time.Now().Add(s.cfg.startTimeout)
	var err error
	for attempt := 0; attempt < startAttempts; attempt++ {
		if s.port, err = pick(); err != nil {
			break
		}
		var p *process
		p, err = s.run(deadline)
		if err == nil {
			s.mu.Lock()
			s.proc = p
			s.mu.Unlock()
			return s
		}
		if !errors.Is(err, errPortInUse) {
			break
		}
	}
	t.Fatalf("redistest: start: %v", err)
	return nil
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Port returns the server's TCP port.
func (s *Server) Port() int { return s.port }

// URL returns "redis://127.0.0.1:port/0", for redis.ParseURL.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Dir returns the server's working directory, which holds its log file.
func (s *Server) Dir() string { return s.dir }

// Log returns the server's log file: every run since Start, followed by what
// the processes printed on stdout and stderr. Use it in failure messages.
func (s *Server) Log() string {
	var b strings.Builder
	for _, name := range []string{"redis.log", "redis.out"} {
		data, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(&b, "redistest: %v\n", err)
		}
		b.Write(data)
	}
	return b.String()
}

// Client returns a go-redis client of the server's database 0, closed by
// t.Cleanup (before the server is killed when t is the test given to Start
// or one of its subtests).
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("redistest: close client: %v", err)
		}
	})
	return c
}

// Kill sends SIGKILL to the server's process group and waits until the
// process has exited: connections are reset, new ones refused, and the data
// is lost. Killing a paused server works. Kill is idempotent and does
// nothing once the server has exited.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
}

// Stop shuts the server down with SIGTERM (resuming it if paused) and waits
// until it has exited, killing it if that takes longer than a few seconds.
// Stop is idempotent and does nothing once the server has exited.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil || p.exited() {
		return
	}
	p.signal(syscall.SIGTERM)
	p.signal(syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		s.t.Logf("redistest: redis-server on %s ignored SIGTERM for %v, killing it", s.Addr(), stopTimeout)
		s.kill()
	}
}

// Restart kills the server if it is still running, then starts a new one on
// the same port and returns once it answers. The new server is empty,
// unless WithArgs turned persistence on (say --appendonly yes): it runs in
// the same directory, so it loads what the old one wrote there. It
// retries while the port is still in use (by a connection in TIME_WAIT or
// another program) until the start timeout, then fails t.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kill()
	deadline := time.Now().Add(s.cfg.startTimeout)
	for {
		p, err := s.run(deadline)
		if err == nil {
			s.proc = p
			return
		}
		if !errors.Is(err, errPortInUse) || !time.Now().Before(deadline) {
			t.Fatalf("redistest: restart: %v", err)
			return
		}
		time.Sleep(probeInterval)
	}
}

// Pause stops the server with SIGSTOP: connections are still accepted by the
// kernel but nothing is answered until Resume. Pause returns once the
// process is stopped. It does nothing when the server is not running.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil || p.exited() {
		return
	}
	p.signal(syscall.SIGSTOP)
	if err := p.waitState('T', killTimeout); err != nil {
		s.t.Errorf("redistest: pause: %v", err)
	}
}

// Resume continues a server stopped by Pause (SIGCONT). It does nothing when
// the server is not running.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil || p.exited() {
		return
	}
	p.signal(syscall.SIGCONT)
}

// kill is Kill with s.mu held.
func (s *Server) kill() {
	p := s.proc
	if p == nil {
		return
	}
	p.signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(killTimeout):
		s.t.Errorf("redistest: redis-server on %s (pid %d) did not exit %v after SIGKILL", s.Addr(), p.cmd.Process.Pid, killTimeout)
	}
}

// run starts one redis-server on s.port and waits until it answers, until
// deadline. It returns errPortInUse when the server could not bind the port.
func (s *Server) run(deadline time.Time) (*process, error) {
	logPath := filepath.Join(s.dir, "redis.log")
	logStart := testenv.FileSize(logPath)
	out, err := os.OpenFile(filepath.Join(s.dir, "redis.out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	var args []string
	if s.cfg.confFile != nil {
		conf, err := s.cfg.confFile(s.dir)
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("redistest: %w", err)
		}
		args = append(args, conf)
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", logPath,
	)
	if s.cfg.dirArgs != nil {
		args = append(args, s.cfg.dirArgs(s.dir)...)
	}
	args = append(args, s.cfg.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = testenv.ChildProcAttr(syscall.SIGKILL)
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("redistest: %w", err)
	}
	p := &process{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		p.out.Close()
		close(p.done)
	}()

	err = waitReady(s.Addr(), cmd.Process.Pid, p.done, deadline)
	if err == nil {
		return p, nil
	}
	p.signal(syscall.SIGKILL)
	<-p.done
	if errors.Is(err, errExited) {
		log := testenv.ReadFrom(logPath, logStart)
		if strings.Contains(log, "Address already in use") {
			return nil, fmt.Errorf("%w: %s", errPortInUse, s.Addr())
		}
		return nil, fmt.Errorf("%w (%v); log:\n%s%s", err, p.err, log, testenv.ReadFrom(out.Name(), 0))
	}
	return nil, fmt.Errorf("%w; log:\n%s", err, testenv.ReadFrom(logPath, logStart))
}

// exited reports whether the process has exited and been reaped.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process group, unless the process has been
// reaped (its id could then belong to somebody else).
func (p *process) signal(sig syscall.Signal) {
	if p.exited() {
		return
	}
	// ESRCH: the process has just exited.
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// waitState waits until /proc says the process is in state (for example
// 'T', stopped). Without /proc (not Linux) it returns at once.
func (p *process) waitState(state byte, timeout time.Duration) error {
	path := fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid)
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		// The state follows the command name, which is in parentheses.
		if i := strings.LastIndexByte(string(data), ')'); i >= 0 && i+2 < len(data) && data[i+2] == state {
			return nil
		}
		if p.exited() {
			return errExited
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("process %d not in state %c after %v", p.cmd.Process.Pid, state, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitReady probes addr until the redis-server there answers PING and says
// its process id is pid, the process exits (errExited) or deadline passes
// (errTimeout).
func waitReady(addr string, pid int, done <-chan struct{}, deadline time.Time) error {
	var last error
	for {
		got, err := probe(addr)
		if err == nil && got == pid {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%s is served by process %d, not %d", addr, got, pid)
		}
		last = err
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w: %s: %w", errTimeout, addr, last)
		}
		select {
		case <-done:
			return errExited
		case <-time.After(probeInterval):
		}
	}
}

// probe sends PING and INFO server over RESP and returns the process_id the
// server reports.
func probe(addr string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(probeTimeout)); err != nil {
		return 0, err
	}
	if _, err := io.WriteString(conn, "*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"); err != nil {
		return 0, err
	}
	r := bufio.NewReader(conn)
	pong, err := readReply(r)
	if err != nil {
		return 0, err
	}
	if pong != "PONG" {
		return 0, fmt.Errorf("PING answered %q", pong)
	}
	info, err := readReply(r)
	if err != nil {
		return 0, err
	}
	return parsePID(info)
}

// readReply reads one simple string, error or bulk string reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis error: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 || n > 1<<20 {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	default:
		return "", fmt.Errorf("unexpected reply %q", line)
	}
}

// parsePID finds "process_id:N" in an INFO reply.
func parsePID(info string) (int, error) {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("INFO server has no process_id")
}
