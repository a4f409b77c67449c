package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

// The handshake with the orchestrator, for idle and fanout: once every
// connection is up the tool says READY (and creates -ready-file), then
// waits for -hold-until-file before it goes on, so that the orchestrator
// can look at the server in between.

// holdPoll is how often the hold-until file is looked for.
const holdPoll = 50 * time.Millisecond

// announceReady prints READY on stderr and creates -ready-file when one
// is given.
func (r *runner) announceReady() error {
	fmt.Fprintln(r.stderr, "READY")
	if r.cfg.readyFile == "" {
		return nil
	}
	if err := os.WriteFile(r.cfg.readyFile, nil, 0o644); err != nil {
		return fmt.Errorf("ready file: %w", err)
	}
	return nil
}

// waitForFile waits until path exists or ctx ends.
func waitForFile(ctx context.Context, path string) {
	t := time.NewTicker(holdPoll)
	defer t.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}
