package redistest_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/internal/testenv"
)

// failoverTimeout bounds WaitFailover in these tests: the sentinels need
// SentinelDownAfter to see the master down, up to a second of random delay
// before they start, and a few hundred milliseconds to promote the replica.
const failoverTimeout = 15 * time.Second

func TestSentinelStart(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := redistest.StartSentinel(t)
	t.Logf("master, replica and sentinel ready in %v", time.Since(start))

	if s.MasterName() != "herald" || s.MasterName() != redistest.SentinelMasterName {
		t.Errorf("MasterName = %q, want herald", s.MasterName())
	}
	addrs := append([]string{s.Master().Addr(), s.Replica().Addr()}, s.SentinelAddrs()...)
	if len(addrs) != 3 || len(s.Sentinels()) != 1 || s.Sentinels()[0].Addr() != addrs[2] {
		t.Fatalf("addresses %v, Sentinels %v: want a master, a replica and one sentinel", addrs, s.Sentinels())
	}
	seen := map[string]bool{}
	for _, addr := range addrs {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		if host != "127.0.0.1" || port == "6379" || port == "26379" || seen[addr] {
			t.Errorf("address %s in %v: want distinct 127.0.0.1 addresses, not the default ports", addr, addrs)
		}
		seen[addr] = true
	}

	// The generated configuration, rewritten by the sentinel as it learns.
	conf, err := os.ReadFile(filepath.Join(s.Sentinels()[0].Dir(), "sentinel.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"sentinel monitor herald 127.0.0.1 " + strconv.Itoa(s.Master().Port()) + " 1",
		"sentinel down-after-milliseconds herald 1000",
		"sentinel failover-timeout herald 5000",
		"sentinel resolve-hostnames no",
	} {
		if !strings.Contains(string(conf), line) {
			t.Errorf("sentinel.conf lacks %q:\n%s", line, conf)
		}
	}

	// The failover client writes to the master; the replica follows.
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Master().Client(t).Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Errorf("GET k on the master = %q, %v; want v", got, err)
	}
	rc := s.Replica().Client(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := rc.Get(ctx, "k").Result()
		if err == nil && got == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET k on the replica = %q, %v; want v", got, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := rc.Set(ctx, "k", "w", 0).Err(); err == nil || !strings.Contains(err.Error(), "READONLY") {
		t.Errorf("SET on the replica = %v, want a READONLY error", err)
	}
	if !strings.Contains(s.Logs(), "+monitor master herald") {
		t.Errorf("Logs do not show the sentinel monitoring the master:\n%s", s.Logs())
	}
}

// testFailover kills the master of s and checks that the failover client
// follows the promotion, keeping what was replicated; it returns how long
// the client could not write.
func testFailover(t *testing.T, s *redistest.Sentinel) time.Duration {
	t.Helper()
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Make sure the replica has it before the master dies.
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v", n, err)
	}

	s.Master().Kill()
	killed := time.Now()
	waited := s.WaitFailover(t, failoverTimeout)
	// The client may need a moment more: it learns the new master on its
	// next dial.
	var outage time.Duration
	for {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.Set(ctx, "after", "2", 0).Err()
		cancel()
		if err == nil {
			outage = time.Since(killed)
			break
		}
		if time.Since(killed) > failoverTimeout {
			t.Fatalf("SET through the failover client still fails %v after the kill: %v\n%s", failoverTimeout, err, s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("sentinels switched the master %v after the kill; the failover client wrote again after %v", waited, outage)
	if waited < redistest.SentinelDownAfter {
		t.Errorf("failover after %v, sooner than down-after-milliseconds %v", waited, redistest.SentinelDownAfter)
	}

	if got, err := c.Get(ctx, "before").Result(); err != nil || got != "1" {
		t.Errorf("GET before on the new master = %q, %v; want 1 (replicated)", got, err)
	}
	rc := s.Replica().Client(t)
	if got, err := rc.Get(ctx, "after").Result(); err != nil || got != "2" {
		t.Errorf("GET after on the replica = %q, %v; want 2: the client writes elsewhere", got, err)
	}
	if role, err := rc.Do(ctx, "ROLE").Slice(); err != nil || len(role) == 0 || role[0] != "master" {
		t.Errorf("ROLE of the replica = %v, %v; want master", role, err)
	}
	for _, sen := range s.Sentinels() {
		sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr()})
		addr, err := sc.GetMasterAddrByName(ctx, s.MasterName()).Result()
		_ = sc.Close()
		if err != nil || len(addr) != 2 || net.JoinHostPort(addr[0], addr[1]) != s.Replica().Addr() {
			t.Errorf("sentinel %s: master at %v, %v; want %s", sen.Addr(), addr, err, s.Replica().Addr())
		}
	}
	return outage
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	testFailover(t, redistest.StartSentinel(t))
}

func TestSentinelFailoverThreeSentinels(t *testing.T) {
	t.Parallel()
	start := time.Now()
	s := redistest.StartSentinel(t, redistest.WithSentinels(3))
	t.Logf("master, replica and 3 sentinels ready in %v", time.Since(start))
	if n := len(s.SentinelAddrs()); n != 3 {
		t.Fatalf("%d sentinels, want 3", n)
	}
	testFailover(t, s)
}

// TestSentinelCleanup: every process is gone once the test that started
// them has ended.
func TestSentinelCleanup(t *testing.T) {
	t.Parallel()
	var addrs []string
	t.Run("start", func(t *testing.T) {
		s := redistest.StartSentinel(t)
		addrs = append([]string{s.Master().Addr(), s.Replica().Addr()}, s.SentinelAddrs()...)
		_ = s.Client(t)
	})
	for _, addr := range addrs {
		wantRefused(t, addr)
	}
}

func TestStartSentinelSkipsWithoutRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(testenv.IntegrationEnv, "")
	var sub *testing.T
	t.Run("start", func(t *testing.T) {
		sub = t
		redistest.StartSentinel(t)
		t.Error("StartSentinel returned without redis-server on PATH")
	})
	if !sub.Skipped() {
		t.Error("StartSentinel did not skip without redis-server on PATH")
	}
}
