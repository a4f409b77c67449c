package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The redis-server of the cluster scenario.

// startRedis starts redis-server on a free loopback port, pinned with the
// servers, and waits until it answers PING.
func (b *bench) startRedis(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	c, err := b.cs.start("redis-server", b.pinTo(serverCPU), b.tmp, nil, "", false,
		"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err != nil {
		return err
	}
	b.redis = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := redisCommand(ctx, b.redis, "PING")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || c.exitedNow() {
			return fmt.Errorf("compare: redis-server on %s: %w\n%s", b.redis, err, c.describe())
		}
		if err := sleep(ctx, 50*time.Millisecond, c); err != nil {
			return err
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("compare: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// redisCommand sends one command to the Redis at addr and checks that the
// reply is a simple string (+OK, +PONG).
func redisCommand(ctx context.Context, addr string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("compare: redis %s: %w", args[0], err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(req.Bytes()); err != nil {
		return fmt.Errorf("compare: redis %s: %w", args[0], err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("compare: redis %s: %w", args[0], err)
	}
	if !strings.HasPrefix(line, "+") {
		return fmt.Errorf("compare: redis %s: %q", args[0], strings.TrimSpace(line))
	}
	return nil
}
