package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NginxPath is where Debian's nginx package installs the server; it is used
// when nginx is not on PATH (/usr/sbin often is not for other users than
// root).
const NginxPath = "/usr/sbin/nginx"

const (
	// nginxStartTimeout bounds how long StartNginx waits for nginx to
	// accept connections, retries on another port included, and how long
	// `nginx -t` may take.
	nginxStartTimeout = 10 * time.Second
	// nginxStartAttempts is how many free ports StartNginx tries.
	nginxStartAttempts = 5
	// nginxStopTimeout is how long Stop waits after SIGQUIT (graceful
	// shutdown) before it kills the process group.
	nginxStopTimeout = 5 * time.Second
	// nginxKillTimeout is how long Stop waits for nginx to be reaped after
	// SIGKILL.
	nginxKillTimeout = 10 * time.Second
	// nginxProbeInterval is the pause between two readiness probes.
	nginxProbeInterval = 20 * time.Millisecond
)

// errNginxPortInUse: nginx could not bind its port; StartNginx retries on
// another one.
var errNginxPortInUse = errors.New("testenv: nginx: port in use")

// RequireNginx requires nginx (on PATH, or at NginxPath) and returns its
// path.
func RequireNginx(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("nginx")
	if err != nil && isExecutable(NginxPath) {
		path, err = NginxPath, nil
	}
	Require(t, "nginx", "apt-get install nginx", err == nil)
	return path
}

// NginxConfig is the part of nginx.conf that the test writes. StartNginx
// wraps it into a complete configuration:
//
//	daemon off; master_process on; worker_processes 1;
//	pid, lock_file, error_log and every temp path inside a t.TempDir()
//	events { ... }
//	http {
//	    access_log and temp paths inside the temp dir
//	    <HTTP>
//	    server {
//	        listen 127.0.0.1:<free port>;
//	        <Server>
//	    }
//	}
//
// Both fields are inserted verbatim: nginx variables such as $http_upgrade
// need no escaping. For a Socket.IO cluster behind nginx:
//
//	testenv.NginxConfig{
//		HTTP: `upstream herald { ip_hash; server 127.0.0.1:A; server 127.0.0.1:B; }`,
//		Server: `location /socket.io/ {
//			proxy_pass http://herald;
//			proxy_http_version 1.1;
//			proxy_set_header Upgrade $http_upgrade;
//			proxy_set_header Connection "upgrade";
//			proxy_set_header Host $host;
//		}`,
//	}
type NginxConfig struct {
	// HTTP is inserted in the http block before the server block:
	// upstream blocks, maps, http-level directives. Empty means none.
	HTTP string
	// Server is the body of the one server block, which StartNginx opens
	// with `listen 127.0.0.1:PORT;` on a free port: location blocks and
	// server-level directives. Empty means nginx answers 404 to every
	// request.
	Server string
}

// Nginx is an nginx started by StartNginx, listening on Addr.
//
// Concurrency: one goroutine waits for the master process; it ends when the
// process does, and Stop (registered with t.Cleanup) waits for it. All
// methods are safe for concurrent use.
type Nginx struct {
	t    testing.TB
	dir  string
	port int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed once cmd.Wait has returned
	stopped bool
}

// StartNginx writes a complete nginx.conf around conf into a temp dir,
// checks it with `nginx -t` (failing t with nginx's output when it is
// wrong), runs nginx in the foreground on a free 127.0.0.1 port and returns
// once that port accepts connections. It skips or fails t when nginx is
// missing (see Require).
//
// nginx runs as a private instance: it reads nothing from /etc/nginx and
// writes nothing to /var/log/nginx or /var/lib/nginx. When the test runs as
// root, the workers run as the same user (the `user` directive), so they can
// use the temp dir; otherwise nginx cannot change user and has no `user`
// directive. t.Cleanup stops nginx with Stop.
func StartNginx(t testing.TB, conf NginxConfig) *Nginx {
	t.Helper()
	bin := RequireNginx(t)
	n := &Nginx{t: t, dir: t.TempDir()}
	t.Cleanup(n.Stop)
	userLine, err := nginxUser()
	if err != nil {
		t.Fatal(err)
		return nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), nginxStartTimeout)
	defer cancel()
	for attempt := 0; attempt < nginxStartAttempts; attempt++ {
		if n.port, err = FreePort(); err != nil {
			break
		}
		if err = os.WriteFile(n.confPath(), []byte(n.render(conf, userLine)), 0o600); err != nil {
			err = fmt.Errorf("testenv: nginx: %w", err)
			break
		}
		if attempt == 0 {
			// -t neither binds nor forks: once is enough.
			if err = n.test(ctx, bin); err != nil {
				break
			}
		}
		if err = n.start(ctx, bin); !errors.Is(err, errNginxPortInUse) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
		return nil
	}
	return n
}

// Addr returns nginx's "127.0.0.1:port".
func (n *Nginx) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port))
}

// URL returns "http://127.0.0.1:port", without a trailing slash.
func (n *Nginx) URL() string {
	return "http://" + n.Addr()
}

// Dir returns the temp dir that holds nginx.conf, the logs and the temp
// paths.
func (n *Nginx) Dir() string { return n.dir }

// Conf returns the nginx.conf that StartNginx wrote.
func (n *Nginx) Conf() string { return readOrNote(n.confPath()) }

// ErrorLog returns nginx's error log (level warn and above), followed by
// what nginx printed on stdout and stderr. Use it in failure messages.
func (n *Nginx) ErrorLog() string {
	return readOrNote(filepath.Join(n.dir, "error.log")) + readOrNote(filepath.Join(n.dir, "nginx.out"))
}

// AccessLog returns nginx's access log (combined format), one line per
// request that has completed.
func (n *Nginx) AccessLog() string {
	return readOrNote(filepath.Join(n.dir, "access.log"))
}

// Stop shuts nginx down gracefully (SIGQUIT to the master process: workers
// finish their requests, open WebSockets are closed after
// worker_shutdown_timeout) and waits for it; after a few seconds it kills
// the whole process group. Stop is idempotent.
func (n *Nginx) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.stopped {
		return
	}
	n.stopped = true
	pid := n.cmd.Process.Pid
	if !n.exited() {
		_ = syscall.Kill(pid, syscall.SIGQUIT)
	}
	select {
	case <-n.done:
	case <-time.After(nginxStopTimeout):
		n.t.Logf("testenv: nginx on %s did not quit %v after SIGQUIT, killing it; error log:\n%s", n.Addr(), nginxStopTimeout, n.ErrorLog())
	}
	// Kill whatever is left of the group (workers whose master died): the
	// group outlives its leader while a worker is in it, so its id cannot
	// have been reused yet.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-n.done:
	case <-time.After(nginxKillTimeout):
		n.t.Errorf("testenv: nginx on %s (pid %d) did not exit %v after SIGKILL", n.Addr(), pid, nginxKillTimeout)
	}
}

func (n *Nginx) confPath() string { return filepath.Join(n.dir, "nginx.conf") }

// args are the command-line arguments shared by `nginx -t` and the server:
// the prefix, the config and the error log used before the config is read
// are all in the temp dir.
func (n *Nginx) args() []string {
	return []string{"-p", n.dir + "/", "-c", n.confPath(), "-e", filepath.Join(n.dir, "error.log")}
}

// test runs `nginx -t` on the config.
func (n *Nginx) test(ctx context.Context, bin string) error {
	cmd := exec.CommandContext(ctx, bin, append([]string{"-t"}, n.args()...)...)
	cmd.Dir = n.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("testenv: nginx -t: %w\n%s\nnginx.conf:\n%s", err, out, numberLines(n.Conf()))
	}
	return nil
}

// start runs nginx and waits until it accepts connections on n.port. It
// returns errNginxPortInUse when nginx could not bind the port.
func (n *Nginx) start(ctx context.Context, bin string) error {
	errLog := filepath.Join(n.dir, "error.log")
	logStart := FileSize(errLog)
	out, err := os.OpenFile(filepath.Join(n.dir, "nginx.out"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("testenv: nginx: %w", err)
	}
	cmd := exec.Command(bin, n.args()...)
	cmd.Dir = n.dir
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own process group, so Stop can kill the workers too. Should the
	// test binary die, SIGQUIT makes the master stop its workers and exit.
	cmd.SysProcAttr = ChildProcAttr(syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("testenv: nginx: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()

	err = n.waitReady(ctx, cmd.Process.Pid, done)
	if err == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	n.mu.Lock()
	n.cmd, n.done = nil, nil
	n.mu.Unlock()
	log := ReadFrom(errLog, logStart)
	if strings.Contains(log, "Address already in use") {
		return fmt.Errorf("%w: %s", errNginxPortInUse, n.Addr())
	}
	return fmt.Errorf("%w; error log:\n%s%s", err, log, readOrNote(out.Name()))
}

// waitReady waits until nginx has written its pid file (which it does after
// binding its port, so the port is ours) and the port accepts a connection.
func (n *Nginx) waitReady(ctx context.Context, pid int, done <-chan struct{}) error {
	pidFile := filepath.Join(n.dir, "nginx.pid")
	want := strconv.Itoa(pid)
	var last error
	for {
		data, err := os.ReadFile(pidFile)
		switch {
		case err != nil:
			last = err
		case strings.TrimSpace(string(data)) != want:
			last = fmt.Errorf("pid file says %q, want %s", bytes.TrimSpace(data), want)
		default:
			var conn net.Conn
			if conn, last = net.DialTimeout("tcp", n.Addr(), time.Second); last == nil {
				conn.Close()
				return nil
			}
		}
		select {
		case <-done:
			return errors.New("testenv: nginx exited before it accepted connections")
		case <-ctx.Done():
			return fmt.Errorf("testenv: nginx did not accept connections on %s: %w (last: %w)", n.Addr(), ctx.Err(), last)
		case <-time.After(nginxProbeInterval):
		}
	}
}

func (n *Nginx) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// render returns the complete nginx.conf.
func (n *Nginx) render(conf NginxConfig, userLine string) string {
	path := func(name string) string { return strconv.Quote(filepath.Join(n.dir, name)) }
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by testenv.StartNginx for %s.\n", n.t.Name())
	b.WriteString("daemon off;\nmaster_process on;\nworker_processes 1;\n")
	b.WriteString(userLine)
	fmt.Fprintf(&b, "pid %s;\n", path("nginx.pid"))
	fmt.Fprintf(&b, "lock_file %s;\n", path("nginx.lock"))
	fmt.Fprintf(&b, "error_log %s warn;\n", path("error.log"))
	// Graceful shutdown must not wait for open WebSockets forever.
	b.WriteString("worker_shutdown_timeout 1s;\n")
	b.WriteString("events {\n    worker_connections 1024;\n}\n")
	b.WriteString("http {\n")
	fmt.Fprintf(&b, "    access_log %s;\n", path("access.log"))
	for _, dir := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %s;\n", dir, path(dir+"_temp"))
	}
	b.WriteString("    default_type application/octet-stream;\n")
	fmt.Fprintf(&b, "    root %s;\n", path("html"))
	b.WriteString("\n# NginxConfig.HTTP\n")
	b.WriteString(conf.HTTP)
	b.WriteString("\n# end of NginxConfig.HTTP\n\n")
	b.WriteString("    server {\n")
	fmt.Fprintf(&b, "        listen 127.0.0.1:%d;\n", n.port)
	b.WriteString("\n# NginxConfig.Server\n")
	b.WriteString(conf.Server)
	b.WriteString("\n# end of NginxConfig.Server\n")
	b.WriteString("    }\n}\n")
	return b.String()
}

// nginxUser returns the `user` directive that keeps the workers running as
// the current user when nginx starts as root (nginx's default, nobody, could
// not enter the test's temp dir), or "" when not root: nginx then cannot
// change user anyway.
func nginxUser() (string, error) {
	if os.Geteuid() != 0 {
		return "", nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("testenv: nginx: current user: %w", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", fmt.Errorf("testenv: nginx: group of %s: %w", u.Username, err)
	}
	return fmt.Sprintf("user %s %s;\n", u.Username, g.Name), nil
}

func readOrNote(path string) string { return ReadFrom(path, 0) }

// numberLines prefixes every line with its number, as nginx -t cites them.
func numberLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	var b strings.Builder
	for i, line := range lines {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}
