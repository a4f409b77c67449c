package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The measurements of each scenario.

// sleep pauses d, or less if ctx ends or the server exits.
func sleep(ctx context.Context, d time.Duration, c *child) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-c.done:
		return fmt.Errorf("compare: %s", c.describe())
	}
}

// sampleRSS waits settle, then returns the largest of rssSamples samples
// of the server's VmRSS, in KiB.
func sampleRSS(ctx context.Context, c *child) (int64, error) {
	if err := sleep(ctx, settle, c); err != nil {
		return 0, err
	}
	var peak int64
	for i := range rssSamples {
		if i > 0 {
			if err := sleep(ctx, rssInterval, c); err != nil {
				return 0, err
			}
		}
		kib, err := rssKiB(c.pid())
		if err != nil {
			return 0, err
		}
		peak = max(peak, kib)
	}
	return peak, nil
}

// measureIdle: the server's RSS with no connection, then while the load
// generator holds p.n connections; connect rate and latency.
func (b *bench) measureIdle(ctx context.Context, kind string, p point, res *runResult) error {
	s, err := b.startServer(ctx, kind, kind, "")
	if err != nil {
		return err
	}
	defer b.stopServer(s, res)
	before, err := sampleRSS(ctx, s.c)
	if err != nil {
		return err
	}
	ready, release := b.syncFiles()
	args := []string{"-url", s.url, "-users", strconv.Itoa(p.n), "-conns", strconv.Itoa(p.n),
		"-ready-file", ready, "-hold-until-file", release, "-src", b.nextSources(p)}
	var held int64
	var serverConnected *int64
	out, err := b.runLoad(ctx, "idle", args, loadTimeout(p), res, func(ctx context.Context, lc *child) error {
		if err := waitFile(ctx, ready, lc); err != nil {
			return err
		}
		var err error
		if held, err = sampleRSS(ctx, s.c); err != nil {
			return err
		}
		var st wsStats
		if err := b.getJSON(ctx, s.url+"/api/v1/websocket/stats", &st); err != nil {
			res.note("%v", err)
		} else {
			serverConnected = st.Data.Connected
		}
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			return fmt.Errorf("compare: release the connections: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	lr := out.res
	if lr.Connected == nil || lr.ConnectRate == nil || lr.ConnectP99Ms == nil {
		return fmt.Errorf("compare: the idle output lacks connected, connectRate or connectP99Ms: %s", out.raw)
	}
	connected := *lr.Connected
	res.set("connected", float64(connected))
	setIf(res, "failed", lr.Failed)
	res.set("connectRate", *lr.ConnectRate)
	setIf(res, "connectP50Ms", lr.ConnectP50Ms)
	res.set("connectP99Ms", *lr.ConnectP99Ms)
	res.set("rssBeforeMiB", float64(before)/1024)
	res.set("rssHeldMiB", float64(held)/1024)
	if serverConnected != nil {
		res.set("serverConnected", float64(*serverConnected))
		if *serverConnected != int64(connected) {
			res.note("the server counts %d connections, the load generator %v", *serverConnected, connected)
		}
	}
	if connected <= 0 {
		return errors.New("compare: no connection was made")
	}
	if connected != float64(p.n) {
		res.note("%v of %d connections made: RSS per connection divides by %v", connected, p.n, connected)
	}
	res.set("rssPerConnKiB", float64(held-before)/connected)
	return nil
}

// syncFiles returns fresh paths for the load generator's -ready-file and
// -hold-until-file.
func (b *bench) syncFiles() (ready, release string) {
	b.seq++
	return filepath.Join(b.tmp, fmt.Sprintf("ready-%d", b.seq)), filepath.Join(b.tmp, fmt.Sprintf("release-%d", b.seq))
}

// setIf sets metric name to *v when v is not nil.
func setIf(res *runResult, name string, v *float64) {
	if v != nil {
		res.set(name, *v)
	}
}

// waitFile waits until path exists, the load generator exits, or ctx
// ends.
func waitFile(ctx context.Context, path string, lc *child) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-t.C:
		case <-lc.done:
			if _, err := os.Stat(path); err == nil {
				return nil
			}
			return fmt.Errorf("compare: the load generator exited before its connections were up: %s", lc.describe())
		case <-ctx.Done():
			return fmt.Errorf("compare: waiting for the load generator's ready file: %w", context.Cause(ctx))
		}
	}
}

// fanoutLoad returns the load generator's scenario for a point of
// scenario that measureFanout runs, and its arguments besides the users,
// the servers and the files.
func fanoutLoad(scenario string) (load string, args []string) {
	switch scenario {
	case "pollfanout", "pollcluster":
		return "pollfanout", []string{"-emits", strconv.Itoa(emits), "-pad", "0"}
	case "roundsfanout", "roundscluster":
		return "roundsfanout", []string{"-rounds", strconv.Itoa(closedRounds), "-pad", "0"}
	}
	return "fanout", []string{"-emits", strconv.Itoa(emits), "-pad", "0"}
}

// measureFanout: p.n users, one connection each, get events (fanoutLoad:
// emits in one POST over WebSocket or long-polling, or closedRounds POSTs
// of one, each once the one before is delivered); msgs/s, latency, and the
// servers' CPU time in two parts: the handshakes (from the started,
// warmed-up servers to the load generator's ready file), per connection,
// and the rest (from the ready file to the load generator's exit: the
// POSTs, the deliveries, the closes), per delivered message. The load
// generator holds its first POST until the first CPU sample is taken. With
// cluster, two servers share our redis-server: the clients are on node B,
// the emits are triggered on node A. A run that lost events fails.
func (b *bench) measureFanout(ctx context.Context, kind string, p point, res *runResult, cluster bool) error {
	var servers []*server
	defer func() {
		for _, s := range servers {
			b.stopServer(s, res)
		}
	}()
	ready, release := b.syncFiles()
	load, largs := fanoutLoad(p.scenario)
	args := append([]string{"-users", strconv.Itoa(p.n), "-conns", strconv.Itoa(p.n)}, largs...)
	args = append(args, "-ready-file", ready, "-hold-until-file", release)
	if cluster {
		if err := redisCommand(ctx, b.redis, "FLUSHALL"); err != nil {
			return err
		}
		redisURL := "redis://" + b.redis + "/0"
		for _, name := range []string{kind + "-A", kind + "-B"} {
			s, err := b.startServer(ctx, kind, name, redisURL)
			if err != nil {
				return err
			}
			servers = append(servers, s)
		}
		args = append(args, "-url", servers[1].url, "-trigger", servers[0].url)
	} else {
		s, err := b.startServer(ctx, kind, kind, "")
		if err != nil {
			return err
		}
		servers = append(servers, s)
		args = append(args, "-url", s.url)
	}
	args = append(args, "-src", b.nextSources(p))
	cpu := func() (int64, error) {
		var sum int64
		for _, s := range servers {
			t, err := cpuTicks(s.c.pid())
			if err != nil {
				return 0, err
			}
			sum += t
		}
		return sum, nil
	}
	cpuStart, err := cpu()
	if err != nil {
		return err
	}
	var cpuReady int64
	var released time.Time
	out, err := b.runLoad(ctx, load, args, loadTimeout(p), res, func(ctx context.Context, lc *child) error {
		if err := waitFile(ctx, ready, lc); err != nil {
			return err
		}
		var err error
		if cpuReady, err = cpu(); err != nil {
			return err
		}
		released = time.Now()
		if err := os.WriteFile(release, nil, 0o600); err != nil {
			return fmt.Errorf("compare: release the load generator's POST: %w", err)
		}
		return nil
	})
	// pollfanout and roundsfanout account for every event; their counts go
	// in the raw runs even when the run failed (a loss fails it).
	lr := out.res
	setIf(res, "lost", lr.Lost)
	setIf(res, "duplicates", lr.Duplicates)
	setIf(res, "unexpected", lr.Unexpected)
	if err != nil {
		return err
	}
	cpuEnd, err := cpu()
	if err != nil {
		return err
	}
	if lr.Received == nil || lr.Expected == nil || lr.MsgsPerSec == nil || lr.LatP99Ms == nil {
		return fmt.Errorf("compare: the %s output lacks received, expected, msgsPerSec or latP99Ms: %s", load, out.raw)
	}
	res.set("expected", *lr.Expected)
	res.set("received", *lr.Received)
	res.set("msgsPerSec", *lr.MsgsPerSec)
	setIf(res, "latP50Ms", lr.LatP50Ms)
	res.set("latP99Ms", *lr.LatP99Ms)
	setIf(res, "outOfOrder", lr.OutOfOrder)
	setIf(res, "seconds", lr.Seconds)
	setIf(res, "roundP50Ms", lr.RoundP50Ms)
	setIf(res, "roundMaxMs", lr.RoundMaxMs)

	handshakeCPU := ticksToDuration(cpuReady - cpuStart)
	if lr.Connected != nil && *lr.Connected > 0 {
		res.set("handshakeCPUUsPerConn", float64(handshakeCPU)/float64(time.Microsecond) / *lr.Connected)
	}
	serverCPU := ticksToDuration(cpuEnd - cpuReady)
	res.set("serverCPUms", float64(serverCPU)/float64(time.Millisecond))
	if wall := out.exited.Sub(released); wall > 0 {
		res.set("serverCPUPct", 100*serverCPU.Seconds()/wall.Seconds()/float64(len(servers)))
	}
	if *lr.Received > 0 {
		res.set("cpuUsPerMsg", float64(serverCPU)/float64(time.Microsecond) / *lr.Received)
	}
	if *lr.Received != *lr.Expected {
		res.note("received %v of %v events", *lr.Received, *lr.Expected)
	}
	if lr.Failed != nil && *lr.Failed > 0 {
		res.note("%v connections failed", *lr.Failed)
	}
	if lr.Duplicates != nil && *lr.Duplicates > 0 {
		res.note("%v events arrived more than once", *lr.Duplicates)
	}
	if lr.Lost != nil && *lr.Lost > 0 {
		// The load generator exits 3 then, so this is a second guard.
		return fmt.Errorf("compare: %v events lost", *lr.Lost)
	}
	return nil
}

// measureChurn: p.n connect+close cycles; the server's goroutines and RSS
// (from /bench/runtime) before and after, each after a settle.
func (b *bench) measureChurn(ctx context.Context, kind string, p point, res *runResult) error {
	s, err := b.startServer(ctx, kind, kind, "")
	if err != nil {
		return err
	}
	defer b.stopServer(s, res)
	runtimeAfterSettle := func() (runtimeStats, error) {
		var rt runtimeStats
		if err := sleep(ctx, settle, s.c); err != nil {
			return rt, err
		}
		if err := b.getJSON(ctx, s.url+"/bench/runtime", &rt); err != nil {
			return rt, err
		}
		return rt, rt.check()
	}
	before, err := runtimeAfterSettle()
	if err != nil {
		return err
	}
	users := max(p.n/20, 1)
	args := []string{"-url", s.url, "-users", strconv.Itoa(users), "-cycles", strconv.Itoa(p.n), "-concurrency", strconv.Itoa(churnConcurrency),
		"-src", b.nextSources(p)}
	out, err := b.runLoad(ctx, "churn", args, loadTimeout(p), res, nil)
	if err != nil {
		return err
	}
	after, err := runtimeAfterSettle()
	if err != nil {
		return err
	}
	lr := out.res
	if lr.CyclesPerSec == nil {
		return fmt.Errorf("compare: the churn output lacks cyclesPerSec: %s", out.raw)
	}
	res.set("cyclesPerSec", *lr.CyclesPerSec)
	setIf(res, "failed", lr.Failed)
	if lr.Failed != nil && *lr.Failed > 0 {
		res.note("%v cycles failed", *lr.Failed)
	}
	if kind == herald { // Node reports no goroutines
		res.set("goroutinesBefore", float64(*before.Goroutines))
		res.set("goroutinesAfter", float64(*after.Goroutines))
		res.set("goroutinesDelta", float64(*after.Goroutines-*before.Goroutines))
	}
	res.set("rssBeforeMiB", float64(*before.RSS)/(1<<20))
	res.set("rssAfterMiB", float64(*after.RSS)/(1<<20))
	res.set("rssDeltaMiB", float64(*after.RSS-*before.RSS)/(1<<20))
	return nil
}
