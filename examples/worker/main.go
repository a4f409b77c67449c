// Command worker is a queue worker that is not a Socket.IO server: it runs a
// simulated job and pushes its progress to a user through Redis, reaching
// the user's sockets on whichever herald nodes they are connected to.
//
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/worker -user alice -steps 5 [-fail]
//
// It emits job_progress once per step, then job_completed (or job_failed
// with -fail), exactly the JSON herald's own EmitToUser sends, and exits 0
// when every event was handed to Redis and some node listens, 1 otherwise:
// a worker whose Redis mode or prefix differs from the nodes' fails on its
// first emit (adapter.ErrModeMismatch, adapter.ErrNoListeners).
//
// Environment:
//
//	REDIS_URL          the cluster's Redis (default redis://localhost:6379/0)
//	HERALD_REDIS_MODE  pubsub (default), sharded or streams, as the nodes use
//	HERALD_JOB_STATE   on (default) or off, as the nodes use: record the
//	                   job's events in the cluster's job state (Redis)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "herald worker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	user := fs.String("user", "", "id of the user to notify (required)")
	steps := fs.Int("steps", 5, "number of progress steps, 1..1000")
	delay := fs.Duration("delay", 200*time.Millisecond, "pause between steps")
	fail := fs.Bool("fail", false, "end with job_failed instead of job_completed")
	jobID := fs.String("job", "", "job id (default: random)")
	lease := fs.Duration("lease", 0, "fail the job as stalled if no step follows within this (0: no lease)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *user == "":
		return errors.New("-user is required")
	case *steps < 1 || *steps > 1000:
		return fmt.Errorf("-steps %d: must be 1..1000", *steps)
	case *delay < 0:
		return fmt.Errorf("-delay %v: must not be negative", *delay)
	case *lease < 0:
		return fmt.Errorf("-lease %v: must not be negative", *lease)
	}
	if *jobID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		*jobID = "job_" + hex.EncodeToString(b[:])
	}

	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://localhost:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	// herald logs Redis failures itself, rate-limited; go-redis would
	// print every failed dial while Redis is down.
	logging.Disable()
	client := redis.NewClient(opts)
	defer client.Close()
	broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{
		Client: client, Mode: adapter.RedisMode(os.Getenv("HERALD_REDIS_MODE")),
	})
	if err != nil {
		return err
	}
	defer broker.Close(context.Background())
	ecfg := socketio.EmitterConfig{Broker: broker}
	if os.Getenv("HERALD_JOB_STATE") != "off" {
		// The nodes' job state: a page reloaded mid-job gets its bar back,
		// and a worker killed mid-job is failed after its lease.
		if ecfg.Jobs, err = adapter.NewRedisJobStore(adapter.RedisJobStoreConfig{Client: client}); err != nil {
			return err
		}
	}
	emitter, err := socketio.NewEmitter(ecfg)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("job %s for user %s: %d steps\n", *jobID, *user, *steps)
	for i := 1; i <= *steps; i++ {
		if i > 1 || *delay > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(*delay):
			}
		}
		p := events.JobProgressPayload{JobID: *jobID, Progress: i * 100 / *steps, Message: fmt.Sprintf("step %d of %d", i, *steps), Lease: *lease}
		if err := emitter.EmitToUser(ctx, *user, events.JobProgress, p); err != nil {
			return err
		}
	}
	if *fail {
		err = emitter.EmitToUser(ctx, *user, events.JobFailed, events.JobFailedPayload{JobID: *jobID, Error: "simulated failure"})
	} else {
		err = emitter.EmitToUser(ctx, *user, events.JobCompleted, events.JobCompletedPayload{JobID: *jobID, Result: map[string]any{"steps": *steps}})
	}
	if err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}
