package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// SentinelMasterName is the name under which the sentinels of
	// StartSentinel monitor the master (FailoverOptions.MasterName).
	SentinelMasterName = "herald"
	// SentinelDownAfter is the sentinels' down-after-milliseconds: a master
	// that does not answer for this long is considered down, and the
	// failover starts (quorum 1).
	SentinelDownAfter = time.Second
	// SentinelFailoverTimeout is the sentinels' failover-timeout.
	SentinelFailoverTimeout = 5 * time.Second
	// SentinelReadyTimeout bounds how long StartSentinel waits for the
	// replica to be in sync and for every sentinel to know the master, the
	// replica and the other sentinels, once the processes answer.
	SentinelReadyTimeout = 20 * time.Second

	// sentinelConf is the name of a sentinel's configuration file, in its
	// directory. The sentinel rewrites it as it learns.
	sentinelConf = "sentinel.conf"
	// sentinelPollInterval is the pause between two checks of the set-up.
	sentinelPollInterval = 50 * time.Millisecond
	// sentinelCmdTimeout bounds one command of the checks.
	sentinelCmdTimeout = 2 * time.Second
)

// Sentinel is a Redis deployment for failover tests, started by
// StartSentinel: a master, one replica of it, and Redis Sentinel processes
// that monitor the master as SentinelMasterName with quorum 1. Every
// process is a *Server on 127.0.0.1, killed by t.Cleanup.
//
// Kill the master (Master().Kill()) and the sentinels promote the replica:
// they consider the master down after SentinelDownAfter, then the sentinel
// that starts the failover waits a random delay of up to a second, promotes
// the replica and confirms it through INFO, which it polls every second.
// The switch comes 2 to 3.5 s after the kill (about 2.2 or 3.1 s with one
// sentinel, most often 2.2 s with three). WaitFailover waits for it. Master and Replica keep naming the
// servers by the role they were started with: after a failover, Replica()
// is the master.
//
// Methods are safe for concurrent use.
type Sentinel struct {
	master, replica *Server
	sentinels       []*Server
}

// WithSentinels makes StartSentinel run n sentinel processes (1 to 9)
// instead of one. Every sentinel monitors the master with quorum 1; with
// more than one, StartSentinel also waits until they know each other, so
// that the failover is authorized by a majority of them. Start and
// StartCluster ignore it.
func WithSentinels(n int) Option {
	return func(c *config) { c.sentinels = n }
}

// StartSentinel starts a master, a replica of it (--replicaof) and the
// sentinels (one, or as many as WithSentinels says), and returns once the
// replica is in sync and every sentinel reports the master up with the
// replica connected, knows the other sentinels and passes SENTINEL
// CKQUORUM, at most SentinelReadyTimeout after the processes answer. That
// takes about 0.2 s with one sentinel, about 2.2 s with three (they find
// each other through hello messages sent every two seconds).
//
// It skips or fails t when redis-server is missing, like Start. opts apply
// to the master and the replica, after --repl-diskless-sync-delay 0 (which
// WithArgs can override); of them, the sentinels use only WithStartTimeout. Each sentinel runs `redis-server sentinel.conf
// --sentinel` on a free port, with the configuration written into its
// directory (Dir), a t.TempDir():
//
//	sentinel resolve-hostnames no
//	sentinel monitor herald 127.0.0.1 <master port> 1
//	sentinel down-after-milliseconds herald 1000
//	sentinel failover-timeout herald 5000
func StartSentinel(t testing.TB, opts ...Option) *Sentinel {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	n := cfg.sentinels
	if n == 0 {
		n = 1
	}
	if n < 1 || n > 9 {
		t.Fatalf("redistest: StartSentinel: WithSentinels(%d): want 1 to 9", n)
		return nil
	}
	s := &Sentinel{}
	// Redis waits repl-diskless-sync-delay (5 s) for more replicas before a
	// full sync; there is only one. Master and replica get it, since the
	// replica becomes the master. opts come after, so that they win.
	dataOpts := append([]Option{WithArgs("--repl-diskless-sync-delay", "0")}, opts...)
	s.master = Start(t, dataOpts...)
	s.replica = Start(t, append(dataOpts,
		WithArgs("--replicaof", "127.0.0.1", strconv.Itoa(s.master.Port())))...)
	sentinelOpts := []Option{sentinelNode(s.master.Port()), WithStartTimeout(cfg.startTimeout)}
	for range n {
		s.sentinels = append(s.sentinels, Start(t, sentinelOpts...))
	}
	if err := s.waitReady(SentinelReadyTimeout); err != nil {
		t.Fatalf("redistest: sentinel not ready after %v: %v\n%s", SentinelReadyTimeout, err, s.Logs())
		return nil
	}
	return s
}

// sentinelNode is the Option that makes Start run a sentinel of the master
// on 127.0.0.1:masterPort.
func sentinelNode(masterPort int) Option {
	return func(c *config) {
		c.confFile = func(dir string) (string, error) {
			path := filepath.Join(dir, sentinelConf)
			if _, err := os.Stat(path); err == nil {
				return path, nil // a restart: keep what the sentinel learnt
			}
			conf := fmt.Sprintf("sentinel resolve-hostnames no\n"+
				"sentinel monitor %[1]s 127.0.0.1 %[2]d 1\n"+
				"sentinel down-after-milliseconds %[1]s %[3]d\n"+
				"sentinel failover-timeout %[1]s %[4]d\n",
				SentinelMasterName, masterPort,
				SentinelDownAfter.Milliseconds(), SentinelFailoverTimeout.Milliseconds())
			return path, os.WriteFile(path, []byte(conf), 0o600)
		}
		c.dirArgs = func(string) []string { return []string{"--sentinel"} }
	}
}

// MasterName returns the name the sentinels monitor the master under,
// SentinelMasterName.
func (s *Sentinel) MasterName() string { return SentinelMasterName }

// SentinelAddrs returns the sentinels' "127.0.0.1:port", for
// FailoverOptions.SentinelAddrs.
func (s *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, sen := range s.sentinels {
		addrs[i] = sen.Addr()
	}
	return addrs
}

// Sentinels returns the sentinel processes, in the order of SentinelAddrs.
// The slice is a copy.
func (s *Sentinel) Sentinels() []*Server {
	return append([]*Server(nil), s.sentinels...)
}

// Master returns the server started as the master.
func (s *Sentinel) Master() *Server { return s.master }

// Replica returns the server started as the replica; after a failover it
// is the master.
func (s *Sentinel) Replica() *Server { return s.replica }

// Client returns a go-redis failover client (redis.NewFailoverClient) of
// the master through the sentinels, with go-redis's default options,
// closed by t.Cleanup (before the servers are killed when t is the test
// given to StartSentinel or one of its subtests).
func (s *Sentinel) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    SentinelMasterName,
		SentinelAddrs: s.SentinelAddrs(),
	})
	t.Cleanup(func() {
		// After a failover, Close closes again the connections to the old
		// master that go-redis closed when it switched (its pool's Filter
		// leaves them in the pool): "use of closed network connection".
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("redistest: close failover client: %v", err)
		}
	})
	return c
}

// WaitFailover waits until every sentinel reports the former replica as the
// master (SENTINEL GET-MASTER-ADDR-BY-NAME and SENTINEL MASTER: the
// failover has switched the master) and the replica reports role:master,
// at most timeout, and fails t with every process's log otherwise. It
// returns how long it waited.
func (s *Sentinel) WaitFailover(t testing.TB, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := s.poll(timeout, s.checkFailover); err != nil {
		t.Fatalf("redistest: no failover to %s after %v: %v\n%s", s.replica.Addr(), timeout, err, s.Logs())
	}
	return time.Since(start)
}

// Logs returns the last lines of every process's log (master, replica,
// sentinels), for failure messages.
func (s *Sentinel) Logs() string {
	return tailLogs(append([]*Server{s.master, s.replica}, s.sentinels...))
}

// waitReady waits until the replica is in sync and every sentinel is
// ready to fail the master over.
func (s *Sentinel) waitReady(timeout time.Duration) error {
	return s.poll(timeout, s.checkReady)
}

// poll calls check with a client of the replica, of the master and of each
// sentinel until it returns nil or timeout passes, and returns its last
// error then.
func (s *Sentinel) poll(timeout time.Duration, check func(master, replica *redis.Client, sentinels []*redis.SentinelClient) error) error {
	master, replica := checkClient(s.master.Addr()), checkClient(s.replica.Addr())
	defer master.Close()
	defer replica.Close()
	sentinels := make([]*redis.SentinelClient, len(s.sentinels))
	for i, sen := range s.sentinels {
		sentinels[i] = redis.NewSentinelClient(checkOptions(sen.Addr()))
		defer sentinels[i].Close()
	}
	deadline := time.Now().Add(timeout)
	for {
		err := check(master, replica, sentinels)
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(sentinelPollInterval)
	}
}

// checkReady returns nil when the replica is in sync and every sentinel
// can fail the master over to it, or what is not yet so.
func (s *Sentinel) checkReady(master, replica *redis.Client, sentinels []*redis.SentinelClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), sentinelCmdTimeout)
	defer cancel()
	info, err := infoFields(ctx, replica)
	if err != nil {
		return fmt.Errorf("replica %s: %w", s.replica.Addr(), err)
	}
	if err := wantFields(info, "role", "slave", "master_link_status", "up", "master_sync_in_progress", "0"); err != nil {
		return fmt.Errorf("replica %s: %w", s.replica.Addr(), err)
	}
	if info, err = infoFields(ctx, master); err != nil {
		return fmt.Errorf("master %s: %w", s.master.Addr(), err)
	}
	if err := wantFields(info, "role", "master", "connected_slaves", "1"); err != nil {
		return fmt.Errorf("master %s: %w", s.master.Addr(), err)
	}
	if !strings.Contains(info["slave0"], "state=online") {
		return fmt.Errorf("master %s: slave0:%s, want state=online", s.master.Addr(), info["slave0"])
	}
	for i, sc := range sentinels {
		if err := s.checkSentinel(ctx, sc); err != nil {
			return fmt.Errorf("sentinel %s: %w", s.sentinels[i].Addr(), err)
		}
	}
	return nil
}

// checkSentinel checks that a sentinel sees the master up at its address,
// the replica connected and in sync, the other sentinels, and can reach
// its quorum and a majority to authorize a failover.
func (s *Sentinel) checkSentinel(ctx context.Context, sc *redis.SentinelClient) error {
	m, err := sc.Master(ctx, SentinelMasterName).Result()
	if err != nil {
		return fmt.Errorf("SENTINEL MASTER: %w", err)
	}
	if addr := net.JoinHostPort(m["ip"], m["port"]); addr != s.master.Addr() {
		return fmt.Errorf("master at %s, want %s", addr, s.master.Addr())
	}
	if err := wantFields(m, "flags", "master", "role-reported", "master",
		"num-slaves", "1", "num-other-sentinels", strconv.Itoa(len(s.sentinels)-1)); err != nil {
		return fmt.Errorf("SENTINEL MASTER: %w", err)
	}
	replicas, err := sc.Replicas(ctx, SentinelMasterName).Result()
	if err != nil {
		return fmt.Errorf("SENTINEL REPLICAS: %w", err)
	}
	if len(replicas) != 1 {
		return fmt.Errorf("SENTINEL REPLICAS lists %d replicas, want 1", len(replicas))
	}
	r := replicas[0]
	if addr := net.JoinHostPort(r["ip"], r["port"]); addr != s.replica.Addr() {
		return fmt.Errorf("replica at %s, want %s", addr, s.replica.Addr())
	}
	if err := wantFields(r, "flags", "slave", "role-reported", "slave", "master-link-status", "ok"); err != nil {
		return fmt.Errorf("SENTINEL REPLICAS: %w", err)
	}
	if res, err := sc.CkQuorum(ctx, SentinelMasterName).Result(); err != nil {
		return fmt.Errorf("SENTINEL CKQUORUM: %w", err)
	} else if !strings.HasPrefix(res, "OK") {
		return fmt.Errorf("SENTINEL CKQUORUM: %s", res)
	}
	return nil
}

// checkFailover returns nil when every sentinel names the replica as the
// master and the replica says it is one.
func (s *Sentinel) checkFailover(_, replica *redis.Client, sentinels []*redis.SentinelClient) error {
	ctx, cancel := context.WithTimeout(context.Background(), sentinelCmdTimeout)
	defer cancel()
	want := s.replica.Addr()
	for i, sc := range sentinels {
		addr, err := sc.GetMasterAddrByName(ctx, SentinelMasterName).Result()
		if err != nil {
			return fmt.Errorf("sentinel %s: GET-MASTER-ADDR-BY-NAME: %w", s.sentinels[i].Addr(), err)
		}
		if len(addr) != 2 || net.JoinHostPort(addr[0], addr[1]) != want {
			return fmt.Errorf("sentinel %s: master at %v, want %s", s.sentinels[i].Addr(), addr, want)
		}
		m, err := sc.Master(ctx, SentinelMasterName).Result()
		if err != nil {
			return fmt.Errorf("sentinel %s: SENTINEL MASTER: %w", s.sentinels[i].Addr(), err)
		}
		if got := net.JoinHostPort(m["ip"], m["port"]); got != want {
			return fmt.Errorf("sentinel %s: failover in progress, not switched yet (SENTINEL MASTER at %s, flags %s)", s.sentinels[i].Addr(), got, m["flags"])
		}
	}
	info, err := infoFields(ctx, replica)
	if err != nil {
		return fmt.Errorf("replica %s: %w", want, err)
	}
	if err := wantFields(info, "role", "master"); err != nil {
		return fmt.Errorf("replica %s: %w", want, err)
	}
	return nil
}

// checkClient returns a client for the checks: one connection, no
// retries (the caller polls).
func checkClient(addr string) *redis.Client {
	return redis.NewClient(checkOptions(addr))
}

func checkOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:         addr,
		DialTimeout:  probeTimeout,
		ReadTimeout:  sentinelCmdTimeout,
		WriteTimeout: sentinelCmdTimeout,
		MaxRetries:   -1,
		PoolSize:     1,
	}
}

// infoFields returns the fields of INFO replication.
func infoFields(ctx context.Context, c *redis.Client) (map[string]string, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO replication: %w", err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields, nil
}

// wantFields checks fields against key, value pairs and says which differ.
func wantFields(fields map[string]string, kv ...string) error {
	var bad []string
	for i := 0; i+1 < len(kv); i += 2 {
		if got := fields[kv[i]]; got != kv[i+1] {
			bad = append(bad, fmt.Sprintf("%s:%s (want %s)", kv[i], got, kv[i+1]))
		}
	}
	if bad != nil {
		return errors.New(strings.Join(bad, " "))
	}
	return nil
}
