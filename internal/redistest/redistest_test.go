package redistest_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/internal/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ping sends a PING on a new connection and returns the reply line, waiting
// at most timeout for it.
func ping(addr string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

// serverPID returns the process_id the server at c reports.
func serverPID(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no process_id in INFO server:\n%s", info)
	return 0
}

func wantRefused(t *testing.T, addr string) {
	t.Helper()
	if _, err := ping(addr, 2*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("PING %s after the server is gone: err = %v, want connection refused", addr, err)
	}
}

func TestStartSetGet(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)

	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if host != "127.0.0.1" || port != strconv.Itoa(s.Port()) || s.Port() == 6379 {
		t.Errorf("Addr = %s, Port = %d: want 127.0.0.1 and a free port other than 6379", s.Addr(), s.Port())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Errorf("URL = %s, want %s", s.URL(), want)
	}
	opt, err := redis.ParseURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	if opt.Addr != s.Addr() || opt.DB != 0 {
		t.Errorf("ParseURL(URL) = %s db %d, want %s db 0", opt.Addr, opt.DB, s.Addr())
	}

	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k = %q, %v; want v", got, err)
	}
	// Persistence is off: nothing may be written next to the log.
	for _, param := range []string{"save", "appendonly"} {
		got, err := c.ConfigGet(ctx, param).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]string{"save": "", "appendonly": "no"}[param]; got[param] != want {
			t.Errorf("CONFIG GET %s = %q, want %q", param, got[param], want)
		}
	}
	if !strings.Contains(s.Log(), "Ready to accept connections") {
		t.Errorf("Log does not show the server starting:\n%s", s.Log())
	}
}

func TestServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, b := redistest.Start(t), redistest.Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on %s", a.Addr())
	}
	ctx := context.Background()
	if err := a.Client(t).Set(ctx, "only-a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client(t).Exists(ctx, "only-a").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS only-a on b = %d, %v; want 0", n, err)
	}
}

func TestWithArgs(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t, redistest.WithArgs("--notify-keyspace-events", "KEA"), redistest.WithStartTimeout(20*time.Second))
	got, err := s.Client(t).ConfigGet(context.Background(), "notify-keyspace-events").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Redis normalizes the flags: KEA reads back as "AKE".
	if v := got["notify-keyspace-events"]; v != "AKE" {
		t.Errorf("notify-keyspace-events = %q, want AKE", v)
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	if got, err := ping(s.Addr(), 5*time.Second); err != nil || got != "+PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	s.Kill()
	wantRefused(t, s.Addr())
	s.Kill() // idempotent
	s.Stop()
	s.Pause()
	s.Resume()
	wantRefused(t, s.Addr())
}

func TestRestartIsEmptyOnSamePort(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	addr := s.Addr()
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := serverPID(t, c)

	s.Kill()
	wantRefused(t, addr)
	s.Restart(t)
	if s.Addr() != addr {
		t.Fatalf("Addr after Restart = %s, want %s", s.Addr(), addr)
	}
	if got, err := ping(addr, 5*time.Second); err != nil || got != "+PONG" {
		t.Fatalf("PING after Restart = %q, %v", got, err)
	}
	// The same client reconnects to the new server.
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE after Restart = %d, %v; want 0", n, err)
	}
	if after := serverPID(t, c); after == before {
		t.Errorf("process_id %d did not change across Restart", after)
	}
}

func TestRestartRunningServer(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	before := serverPID(t, c)
	s.Restart(t) // kills the running server first
	if after := serverPID(t, c); after == before {
		t.Errorf("process_id %d did not change across Restart", after)
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("EXISTS k after Restart = %d, %v; want 0", n, err)
	}
}

func TestRestartWaitsForBusyPort(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	s.Kill()

	// Hold the port for a while: Restart must retry until it is free.
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("take the port of the killed server: %v", err)
	}
	// Release it once a restarted redis-server has failed to bind it.
	released := make(chan bool, 1)
	go func() {
		defer l.Close()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(s.Log(), "Address already in use") {
			if time.Now().After(deadline) {
				released <- false
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		released <- true
	}()
	s.Restart(t)
	if !<-released {
		t.Errorf("Restart did not meet the busy port; log:\n%s", s.Log())
	}
	if got, err := ping(s.Addr(), 5*time.Second); err != nil || got != "+PONG" {
		t.Fatalf("PING after Restart = %q, %v", got, err)
	}
}

func TestPauseResume(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	s.Pause()

	// The kernel accepts the connection, but nobody answers.
	conn, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	if err := conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var nerr net.Error
	if line, err := r.ReadString('\n'); !errors.As(err, &nerr) || !nerr.Timeout() {
		t.Fatalf("paused server answered %q, %v; want a read timeout", line, err)
	}

	s.Resume()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "+PONG" {
		t.Fatalf("after Resume: %q, %v; want +PONG", line, err)
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	s := redistest.Start(t)
	s.Stop()
	wantRefused(t, s.Addr())
	if !strings.Contains(s.Log(), "ready to exit") {
		t.Errorf("Stop did not shut the server down gracefully; log:\n%s", s.Log())
	}
	s.Stop() // idempotent
	s.Kill()
}

func TestStopAndKillPaused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		stop func(*redistest.Server)
	}{
		{"Stop", (*redistest.Server).Stop},
		{"Kill", (*redistest.Server).Kill},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := redistest.Start(t)
			s.Pause()
			tt.stop(s)
			wantRefused(t, s.Addr())
		})
	}
}

func TestStartSkipsWithoutRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(testenv.IntegrationEnv, "")
	var sub *testing.T
	t.Run("start", func(t *testing.T) {
		sub = t
		redistest.Start(t)
		t.Error("Start returned without redis-server on PATH")
	})
	if !sub.Skipped() {
		t.Error("Start did not skip without redis-server on PATH")
	}
}
