// Command compare runs the herald vs Node socket.io benchmark of bench/SPEC.md:
// it builds bench/cmd/heraldserver and bench/cmd/load, runs every scenario
// against both servers (the Node one is bench/node/server.js), and prints a
// Markdown report: the machine, a table of medians with the herald/Node
// ratio, and every raw run.
//
//	go run ./bench/cmd/compare [-runs 3] [-scenarios idle,fanout,churn,cluster,scale,pollfanout,roundsfanout,pollcluster,roundscluster] [-quick] [-max-conns N] [-json FILE] [-out FILE]
//
// Run it from the repository (it finds the module root upwards from the
// working directory). It needs go, node and npm (bench/node's packages are
// installed with `npm ci` when node_modules is missing), redis-server for
// the cluster scenarios (cluster, pollcluster, roundscluster), and taskset and a second CPU to pin the servers to
// CPU 0 and the load generator to CPU 1 (without them it runs unpinned and
// says so). As root it raises RLIMIT_NOFILE first; a point with more
// connections than the limit allows (or than -max-conns) runs with as many
// as it allows instead, and the report labels it so and says why.
//
// It always stops by itself: every run has a deadline, the whole command
// has -timeout, and SIGINT or SIGTERM stop it early; the children are
// stopped on every way out, and the report shows what had finished.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// allScenarios are the scenarios, in the order they run.
var allScenarios = []string{"idle", "fanout", "churn", "cluster", "scale", "pollfanout", "roundsfanout", "pollcluster", "roundscluster"}

// isCluster reports whether scenario runs two nodes on our redis-server.
func isCluster(scenario string) bool {
	switch scenario {
	case "cluster", "pollcluster", "roundscluster":
		return true
	}
	return false
}

// config is the command line.
type config struct {
	runs      int
	scenarios []string
	quick     bool
	jsonPath  string
	outPath   string
	timeout   time.Duration
	verbose   bool
	maxConns  int      // 0 = what RLIMIT_NOFILE allows
	args      []string // as given, for the report
}

// errUsage marks a bad command line.
var errUsage = errors.New("compare: usage")

// parseFlags parses the command line (without the program name).
func parseFlags(args []string, output io.Writer) (config, error) {
	cfg := config{args: args}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.IntVar(&cfg.runs, "runs", 3, "runs per figure and server (the figure is their median); -quick makes it 1 unless given")
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.BoolVar(&cfg.quick, "quick", false, "smoke test: every N divided by 10, 1 run")
	fs.StringVar(&cfg.jsonPath, "json", "", "also write every raw result to this JSON file")
	fs.StringVar(&cfg.outPath, "out", "", "also write the Markdown report to this file")
	fs.DurationVar(&cfg.timeout, "timeout", 2*time.Hour, "stop the whole benchmark after this long (the report shows what finished)")
	fs.BoolVar(&cfg.verbose, "v", false, "copy the children's stderr (progress) to stderr")
	fs.IntVar(&cfg.maxConns, "max-conns", 0, fmt.Sprintf("run the points with more connections at this many instead, labelled so (0 = what RLIMIT_NOFILE allows: the limit − %d, rounded down to a multiple of %d)", fdMargin, capUnit))
	if err := fs.Parse(args); err != nil {
		return cfg, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	runsSet := false
	fs.Visit(func(f *flag.Flag) { runsSet = runsSet || f.Name == "runs" })
	if cfg.quick && !runsSet {
		cfg.runs = 1
	}
	if cfg.runs < 1 {
		return cfg, fmt.Errorf("%w: -runs %d: want at least 1", errUsage, cfg.runs)
	}
	if cfg.timeout <= 0 {
		return cfg, fmt.Errorf("%w: -timeout %v: want a positive duration", errUsage, cfg.timeout)
	}
	if cfg.maxConns < 0 {
		return cfg, fmt.Errorf("%w: -max-conns %d: want 0 (the default) or more", errUsage, cfg.maxConns)
	}
	for s := range strings.SplitSeq(*scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			return cfg, fmt.Errorf("%w: unknown scenario %q (want some of %s)", errUsage, s, strings.Join(allScenarios, ","))
		}
		if !slices.Contains(cfg.scenarios, s) {
			cfg.scenarios = append(cfg.scenarios, s)
		}
	}
	if len(cfg.scenarios) == 0 {
		return cfg, fmt.Errorf("%w: -scenarios selects none", errUsage)
	}
	// Run them in the canonical order whatever the order given.
	slices.SortFunc(cfg.scenarios, func(a, b string) int {
		return slices.Index(allScenarios, a) - slices.Index(allScenarios, b)
	})
	return cfg, nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// errTimeout is the cause of the context when -timeout passes.
var errTimeout = errors.New("compare: -timeout reached")

func run(args []string) error {
	cfg, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal the children are being stopped; a second one
	// ends the orchestrator at once (Pdeathsig then kills the children).
	context.AfterFunc(ctx, stop)
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.timeout, errTimeout)
	defer cancel()

	b, err := newBench(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.close()

	runErr := b.runAll(ctx)
	if err := b.writeReports(); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}
