// Command heraldserver is the herald side of the herald vs Node socket.io
// comparison: a herald server with the behaviour that bench/SPEC.md gives
// both servers, so that the load generator (bench/cmd/load) can drive it
// and bench/node/server.js the same way. It uses herald's public API only.
//
//	BENCH_ADDR=127.0.0.1:0 BENCH_JWT_SECRET=s go run ./bench/cmd/heraldserver
//
// Environment:
//
//	BENCH_ADDR        listen address (default 127.0.0.1:0, any free port)
//	BENCH_JWT_SECRET  HS256 secret of the tokens (sub = user id, exp); required,
//	                  at least 16 bytes (herald's auth refuses shorter ones)
//	REDIS_URL         redis://host:port/db: join the cluster on that Redis
//	                  (pub/sub broker and Redis presence); unset = one node
//	BENCH_PPROF       1: serve net/http/pprof under /debug/pprof/
//
// Once ready it prints one line, "listening on http://HOST:PORT"; on
// SIGTERM or SIGINT it closes every connection at once and exits 0.
//
// HTTP, besides Socket.IO at /socket.io/:
//
//	POST /bench/emit {"prefix":"u","from":0,"to":1000,"count":20,"pad":0,"seq":0}
//	     emits "bench" {seq, sentAt (µs since the epoch), pad} count times
//	     to each user prefix+N, N in [from, to), round i with seq seq+i
//	     ("seq" is optional, 0 when absent), and answers
//	     {"emitted":E,"tookUs":T}; 400 {"error":..} on bad input
//	GET  /api/v1/websocket/stats   herald's StatsHandler
//	GET  /bench/runtime            {"goroutines":N,"heapInuse":B,"rss":B}
//	                               (+ "published","received","dropped" of
//	                               the Redis broker in cluster mode)
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/bench/internal/benchapi"
	"github.com/herald-rt/herald/socketio"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "heraldserver:", err)
		os.Exit(1)
	}
}

func run() error {
	secret := os.Getenv("BENCH_JWT_SECRET")
	if secret == "" {
		return errors.New("BENCH_JWT_SECRET is required")
	}
	cfg := config{
		Secret: []byte(secret),
		Pprof:  os.Getenv("BENCH_PPROF") == "1",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if u := os.Getenv("REDIS_URL"); u != "" {
		opts, err := redis.ParseURL(u)
		if err != nil {
			// Not err itself: url.Parse's errors quote the URL, password and all.
			return errors.New("REDIS_URL: not a valid redis://host:port/db URL")
		}
		logging.Disable() // herald logs Redis failures itself, rate-limited
		client := redis.NewClient(opts)
		defer client.Close()
		cfg.Redis = client
	}
	b, err := newBenchServer(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := b.waitReady(ctx); err != nil {
		_ = b.Shutdown(context.Background())
		return err
	}

	ln, err := net.Listen("tcp", cmp.Or(os.Getenv("BENCH_ADDR"), "127.0.0.1:0"))
	if err != nil {
		_ = b.Shutdown(context.Background())
		return err
	}
	httpSrv := &http.Server{Handler: b.Handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	fmt.Printf("listening on http://%s\n", ln.Addr())

	select {
	case err = <-serveErr: // the listener failed
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Sockets first: http.Server.Shutdown does not close WebSockets.
	err = errors.Join(err, b.Shutdown(shutdownCtx), httpSrv.Shutdown(shutdownCtx))
	if ctx.Err() != nil {
		if e := <-serveErr; !errors.Is(e, http.ErrServerClosed) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// config configures a benchServer.
type config struct {
	Secret []byte                // HS256 secret; required
	Redis  redis.UniversalClient // nil = one node in memory; never closed here
	Pprof  bool                  // serve /debug/pprof/
	Logger *slog.Logger          // nil = silent
}

// benchServer is the herald Server with the bench's HTTP endpoints.
type benchServer struct {
	srv      *socketio.Server
	broker   *adapter.RedisBroker   // nil on one node
	presence *adapter.RedisPresence // nil on one node
	mux      *http.ServeMux
}

func newBenchServer(cfg config) (*benchServer, error) {
	verifier, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: cfg.Secret}}})
	if err != nil {
		return nil, fmt.Errorf("BENCH_JWT_SECRET: %w", err)
	}
	scfg := socketio.Config{
		Verifier: verifier,
		Logger:   cfg.Logger,
		// The Node server has none of these limits, and the load generator
		// connects thousands of clients per second from one address.
		HandshakeRate:         -1,
		MaxPendingConnections: -1,
		MaxConnectionsPerUser: -1,
		EventRate:             -1,
		ShutdownDrain:         -1,
	}
	b := &benchServer{mux: http.NewServeMux()}
	if cfg.Redis != nil {
		if b.broker, err = adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: cfg.Redis, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
		if b.presence, err = adapter.NewRedisPresence(adapter.RedisPresenceConfig{Client: cfg.Redis, Logger: cfg.Logger}); err != nil {
			_ = b.broker.Close(context.Background())
			return nil, err
		}
		scfg.Broker, scfg.Presence = b.broker, b.presence
	}
	if b.srv, err = socketio.New(scfg); err != nil {
		_ = b.closeCluster(context.Background())
		return nil, err
	}
	b.mux.Handle(b.srv.Path(), b.srv)
	b.mux.Handle("/api/v1/websocket/stats", b.srv.StatsHandler())
	b.mux.HandleFunc("POST /bench/emit", b.emit)
	b.mux.HandleFunc("GET /bench/runtime", b.serveRuntime)
	if cfg.Pprof {
		b.mux.HandleFunc("/debug/pprof/", pprof.Index)
		b.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		b.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		b.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		b.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return b, nil
}

// Handler returns the HTTP handler of every endpoint.
func (b *benchServer) Handler() http.Handler { return b.mux }

// waitReady waits until the Redis subscription is up, so that an emit of
// another node reaches this one from the moment it says it listens.
func (b *benchServer) waitReady(ctx context.Context) error {
	if b.broker == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for !b.broker.Metrics().SubscriptionUp {
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis subscription: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Shutdown closes every connection at once, then leaves the cluster.
func (b *benchServer) Shutdown(ctx context.Context) error {
	return errors.Join(b.srv.Shutdown(ctx), b.closeCluster(ctx))
}

func (b *benchServer) closeCluster(ctx context.Context) error {
	var errs []error
	if b.presence != nil {
		errs = append(errs, b.presence.Close(ctx))
	}
	if b.broker != nil {
		errs = append(errs, b.broker.Close(ctx))
	}
	return errors.Join(errs...)
}

// emitWorkers is how many goroutines a POST /bench/emit emits from.
const emitWorkers = 32

func (b *benchServer) emit(w http.ResponseWriter, r *http.Request) {
	var req benchapi.EmitRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error()})
		return
	}
	if msg := req.Check(); msg != "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
		return
	}
	// Like the Node server, finish the loop even if the caller goes away.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	defer cancel(nil)
	pad := strings.Repeat("x", req.Pad)
	start := time.Now()
	if b.broker == nil {
		// One loop, as in the Node server.
		for i := 0; i < req.Count && ctx.Err() == nil; i++ {
			b.emitRound(ctx, cancel, req, i, pad, 0, 1)
		}
	} else {
		// In cluster mode EmitToUser returns once Redis has taken the
		// message, so one loop would measure one Redis round trip per
		// emit, where the Node server's emits return at once. A Go
		// service emits from many goroutines: emitWorkers of them here,
		// each with its own users. Round i (seq seq+i to every user) ends
		// before round i+1 starts, so that every user gets one event per
		// round, as from the Node loop.
		for i := 0; i < req.Count && ctx.Err() == nil; i++ {
			var wg sync.WaitGroup
			for k := range min(emitWorkers, req.To-req.From) {
				wg.Go(func() { b.emitRound(ctx, cancel, req, i, pad, k, emitWorkers) })
			}
			wg.Wait()
		}
	}
	if err := context.Cause(ctx); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	took := time.Since(start)
	writeJSON(w, http.StatusOK, map[string]int64{"emitted": int64(req.Count * (req.To - req.From)), "tookUs": took.Microseconds()})
}

// emitRound emits round i (seq req.Seq+i) to the users From+first,
// From+first+step, ... below To, and cancels ctx with the first error.
func (b *benchServer) emitRound(ctx context.Context, cancel context.CancelCauseFunc, req benchapi.EmitRequest, i int, pad string, first, step int) {
	for n := req.From + first; n < req.To; n += step {
		p := benchapi.Payload{Seq: req.Seq + i, SentAt: time.Now().UnixMicro(), Pad: pad}
		if err := b.srv.EmitToUser(ctx, req.Prefix+strconv.Itoa(n), benchapi.Event, p); err != nil {
			cancel(err)
			return
		}
	}
}

// serveRuntime answers the process's goroutines, heap in use and RSS.
func (b *benchServer) serveRuntime(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out := map[string]int64{
		"goroutines": int64(runtime.NumGoroutine()),
		"heapInuse":  int64(ms.HeapInuse),
		"rss":        rss(),
	}
	if b.broker != nil {
		// Cluster mode: what the Redis broker handed over and received,
		// so that a run can tell a lost message's side.
		m := b.broker.Metrics()
		out["published"], out["received"], out["dropped"] = int64(m.Published), int64(m.Received), int64(m.Dropped)
	}
	writeJSON(w, http.StatusOK, out)
}

// rss returns the resident set size from /proc/self/statm, or 0 where
// there is no /proc.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
