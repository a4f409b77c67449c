// Command load is the benchmark's load generator: it opens Socket.IO
// connections to a herald or Node server and measures one scenario (idle,
// fanout, pollfanout, roundsfanout or churn; see bench/SPEC.md), then
// prints one JSON object on stdout. Progress goes to stderr.
//
//	load idle         -url http://127.0.0.1:3000 -secret S -conns 5000 -ready-file /tmp/r -hold-until-file /tmp/h
//	load fanout       -url http://127.0.0.1:3000 -secret S -users 1000 -emits 20 -ready-file /tmp/r -hold-until-file /tmp/h
//	load pollfanout   -url http://127.0.0.1:3000 -secret S -users 1000 -emits 20
//	load roundsfanout -url http://127.0.0.1:3000 -secret S -users 1000 -rounds 20 [-transport polling]
//	load churn        -url http://127.0.0.1:3000 -secret S -cycles 20000 -concurrency 200
//
// It speaks Engine.IO v4 / Socket.IO v5 itself (package
// bench/internal/eio), over raw WebSockets or, for pollfanout (and
// roundsfanout -transport polling), over HTTP long-polling only, with one
// reading goroutine per connection. Every run ends by itself: after
// -timeout it stops, closes its connections and prints what it has with
// "incomplete": true.
//
// Exit status: 0 after a complete run, 3 after an incomplete one or one
// that lost events (the JSON is printed either way), 2 for bad flags, 1
// when the run could not start.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-rt/herald/bench/internal/benchapi"
	"github.com/herald-rt/herald/bench/internal/eio"
)

// Exit statuses.
const (
	exitIncomplete = 3
	exitUsage      = 2
)

// errIncomplete is what run returns after printing the JSON of a run that
// hit the timeout or was interrupted.
var errIncomplete = errors.New("load: run incomplete")

// errUsage wraps flag errors.
var errUsage = errors.New("load")

// closeGrace bounds the closing handshake of all connections at the end of
// a run; then the rest are closed at once.
const closeGrace = 10 * time.Second

// tokenTTL is the lifetime of the tokens (SPEC: exp 1 h).
const tokenTTL = time.Hour

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errIncomplete):
		os.Exit(exitIncomplete)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(exitUsage)
	default:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// config is the parsed command line.
type config struct {
	scenario    string
	url         string
	path        string
	secret      string
	users       int
	conns       int
	concurrency int
	sources     []net.IP
	timeout     time.Duration
	progress    time.Duration
	cpuProfile  string

	// idle
	hold time.Duration

	// idle and fanout
	readyFile     string
	holdUntilFile string

	// fanout, pollfanout, roundsfanout
	trigger string
	emits   int
	pad     int
	rounds  int

	// pollfanout, roundsfanout
	transport string        // transportWebSocket or transportPolling
	stall     time.Duration // a round without an event for this long ends the run; 0 = never

	// churn
	cycles    int
	closeWait time.Duration
}

const usage = `usage: load idle|fanout|pollfanout|roundsfanout|churn [flags]  (load <scenario> -h lists the flags)`

// Transports, for -transport.
const (
	transportWebSocket = "websocket"
	transportPolling   = "polling"
)

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintln(stderr, usage)
			return nil, flag.ErrHelp
		}
		return nil, fmt.Errorf("%w: %s", errUsage, usage)
	}
	cfg := &config{scenario: args[0]}
	fs := flag.NewFlagSet("load "+cfg.scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.url, "url", "http://127.0.0.1:3000", "server base URL (Socket.IO connections go here)")
	fs.StringVar(&cfg.path, "path", "/socket.io/", "Socket.IO path")
	fs.StringVar(&cfg.secret, "secret", "", "HS256 secret of the server's tokens (required)")
	fs.IntVar(&cfg.users, "users", 1000, "user ids u0..u(N-1)")
	fs.IntVar(&cfg.concurrency, "concurrency", 200, "connection handshakes in flight")
	src := fs.String("src", "", "comma-separated local addresses to dial from, round robin (e.g. 127.0.0.1,127.0.0.2); empty = the kernel's choice")
	fs.DurationVar(&cfg.timeout, "timeout", 120*time.Second, "the whole run; then it stops and reports what it has")
	fs.DurationVar(&cfg.progress, "progress", 2*time.Second, "progress line interval on stderr (0 = none)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write the tool's own CPU profile to this file")
	fs.IntVar(&cfg.conns, "conns", 0, "connections (idle, fanout, pollfanout, roundsfanout); connection i is user u(i % users) (0 = -users)")
	cfg.transport = transportWebSocket
	switch cfg.scenario {
	case "idle":
		fs.DurationVar(&cfg.hold, "hold", 10*time.Second, "how long to hold the connections (unless -hold-until-file)")
		fs.StringVar(&cfg.readyFile, "ready-file", "", "create this file once every connection is up")
		fs.StringVar(&cfg.holdUntilFile, "hold-until-file", "", "hold until this file exists (or -timeout), instead of -hold")
	case "fanout":
		fs.StringVar(&cfg.trigger, "trigger", "", "server that gets POST /bench/emit (empty = -url)")
		fs.IntVar(&cfg.emits, "emits", 20, "events per user per round (the POST's count)")
		fs.IntVar(&cfg.pad, "pad", 0, "bytes of padding per event (the POST's pad)")
		fs.IntVar(&cfg.rounds, "rounds", 1, "POST rounds, one after the other; figures are over all rounds")
		fs.StringVar(&cfg.readyFile, "ready-file", "", "create this file once every connection is up, before the first POST")
		fs.StringVar(&cfg.holdUntilFile, "hold-until-file", "", "send the first POST only once this file exists (or stop at -timeout)")
	case "pollfanout", "roundsfanout":
		fs.StringVar(&cfg.trigger, "trigger", "", "server that gets POST /bench/emit (empty = -url)")
		fs.IntVar(&cfg.pad, "pad", 0, "bytes of padding per event (the POST's pad)")
		fs.StringVar(&cfg.readyFile, "ready-file", "", "create this file once every connection is up, before the first POST")
		fs.StringVar(&cfg.holdUntilFile, "hold-until-file", "", "send the first POST only once this file exists (or stop at -timeout)")
		fs.DurationVar(&cfg.stall, "stall", 10*time.Second, "end the run, events lost, when a round gets no event for this long (0 = wait until -timeout)")
		if cfg.scenario == "pollfanout" {
			cfg.transport = transportPolling
			fs.IntVar(&cfg.emits, "emits", 20, "events per user per round (the POST's count)")
			fs.IntVar(&cfg.rounds, "rounds", 1, "POST rounds, each once the one before is delivered; figures are over all rounds")
		} else {
			cfg.emits = 1
			fs.IntVar(&cfg.rounds, "rounds", 20, "rounds of one event per user, each POSTed once the one before is delivered")
			fs.StringVar(&cfg.transport, "transport", transportWebSocket, "websocket or polling (long-polling only)")
		}
	case "churn":
		fs.IntVar(&cfg.cycles, "cycles", 1000, "connect + close cycles; cycle i is user u(i % users)")
		fs.DurationVar(&cfg.closeWait, "close-wait", 2*time.Second, "how long a cycle waits for the server's close frame")
	default:
		return nil, fmt.Errorf("%w: unknown scenario %q; %s", errUsage, cfg.scenario, usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if cfg.secret == "" {
		bad("-secret is required")
	}
	if cfg.users < 1 {
		bad("-users must be at least 1")
	}
	if cfg.conns == 0 {
		cfg.conns = cfg.users
	}
	if cfg.conns < 0 {
		bad("-conns must not be negative")
	}
	if cfg.concurrency < 1 {
		bad("-concurrency must be at least 1")
	}
	if cfg.timeout <= 0 {
		bad("-timeout must be positive")
	}
	if cfg.progress < 0 {
		bad("-progress must not be negative")
	}
	for s := range strings.SplitSeq(*src, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ip := net.ParseIP(s)
		if ip == nil {
			bad("-src: %q is not an IP address", s)
			continue
		}
		cfg.sources = append(cfg.sources, ip)
	}
	switch cfg.scenario {
	case "idle":
		if cfg.hold < 0 {
			bad("-hold must not be negative")
		}
	case "fanout", "pollfanout", "roundsfanout":
		if cfg.trigger == "" {
			cfg.trigger = cfg.url
		}
		if cfg.emits < 1 {
			bad("-emits must be at least 1")
		}
		if cfg.pad < 0 {
			bad("-pad must not be negative")
		}
		if cfg.rounds < 1 {
			bad("-rounds must be at least 1")
		}
		if cfg.stall < 0 {
			bad("-stall must not be negative")
		}
		if cfg.transport != transportWebSocket && cfg.transport != transportPolling {
			bad("-transport must be %s or %s", transportWebSocket, transportPolling)
		}
		if cfg.scenario != "fanout" && cfg.rounds > benchapi.MaxSeq/cfg.emits {
			bad("-rounds × -emits must be at most %d (the seqs of the run)", benchapi.MaxSeq)
		}
	case "churn":
		if cfg.cycles < 1 {
			bad("-cycles must be at least 1")
		}
		if cfg.closeWait < 0 {
			bad("-close-wait must not be negative")
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", errUsage, errors.Join(errs...))
	}
	return cfg, nil
}

// run parses args, runs the scenario and prints its JSON on stdout. It
// returns errIncomplete (after printing) when the run timed out or ctx
// ended.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr} // progress lines come from another goroutine
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	open := cfg.conns // connections open at once
	if cfg.scenario == "churn" {
		open = cfg.concurrency
	}
	if limit := fileLimit(); open+64 > limit {
		fmt.Fprintf(stderr, "load: warning: %d connections at once need more open files than RLIMIT_NOFILE allows (%d)\n", open, limit)
	}
	dcfg := eio.DialerConfig{URL: cfg.url, Path: cfg.path, Sources: cfg.sources}
	dialer, err := eio.NewDialer(dcfg)
	if err != nil {
		return fmt.Errorf("%w: -url: %w", errUsage, err)
	}
	poller, err := eio.NewPollDialer(dcfg)
	if err != nil {
		return fmt.Errorf("%w: -url: %w", errUsage, err)
	}
	defer poller.CloseIdleConnections()
	n := cfg.conns
	if cfg.scenario == "churn" {
		n = cfg.cycles
	}
	tokens, err := makeTokens(cfg.secret, min(cfg.users, n))
	if err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// The clock starts now.
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	r := &runner{cfg: cfg, dialer: dialer, poller: poller, tokens: tokens, stderr: stderr, errs: newErrorCounts()}
	var res result
	switch cfg.scenario {
	case "idle":
		res = r.idle(ctx)
	case "fanout":
		res = r.fanout(ctx)
	case "pollfanout", "roundsfanout":
		res = r.rounds(ctx)
	case "churn":
		res = r.churn(ctx)
	}
	r.errs.print(stderr)
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", out); err != nil {
		return err
	}
	if res.incomplete() {
		return errIncomplete
	}
	return nil
}

// result is a scenario's JSON.
type result interface{ incomplete() bool }

// runner holds what every scenario uses.
type runner struct {
	cfg    *config
	dialer *eio.Dialer
	poller *eio.PollDialer
	tokens [][]byte // CONNECT packet of user i
	stderr io.Writer
	errs   *errorCounts
}

// token is the CONNECT packet of connection (or cycle) i.
func (r *runner) token(i int) []byte { return r.tokens[i%len(r.tokens)] }

func (r *runner) logf(format string, a ...any) {
	fmt.Fprintf(r.stderr, "load: "+r.cfg.scenario+": "+format+"\n", a...)
}

// makeTokens returns the CONNECT packets of users u0..u(n-1): HS256 tokens
// with "sub" and "exp" (1 h), as the servers expect.
func makeTokens(secret string, n int) ([][]byte, error) {
	key := []byte(secret)
	exp := jwt.NewNumericDate(time.Now().Add(tokenTTL))
	out := make([][]byte, n)
	for i := range out {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
			Subject:   "u" + strconv.Itoa(i),
			ExpiresAt: exp,
		}).SignedString(key)
		if err != nil {
			return nil, fmt.Errorf("load: token: %w", err)
		}
		out[i] = eio.ConnectPacket(tok)
	}
	return out, nil
}

// lockedWriter serializes writes: each line is one Write.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startProgress prints line() on stderr every r.cfg.progress until the
// returned stop is called (which waits for the printer to end).
func (r *runner) startProgress(line func() string) (stop func()) {
	if r.cfg.progress == 0 {
		return func() {}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(r.cfg.progress)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.logf("%s", line())
			}
		}
	}()
	return func() { close(done); <-ended }
}
