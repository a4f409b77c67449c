// Command server is herald's demo: a Go backend that pushes job and analysis
// progress, and presence, to browsers running the unmodified
// socket.io-client.
//
//	npm ci --prefix examples && go run ./examples/server
//
// then open http://localhost:3000 in two tabs and pick a user name in each.
//
// Environment:
//
//	HERALD_ADDR        listen address (default localhost:3000)
//	HERALD_JWT_SECRET  HS256 secret that verifies tokens; unset = dev mode
//	                   with a dev secret and GET /dev/token?user=ID
//	                   (every node of a cluster needs the same secret)
//	HERALD_JWKS_URL    verify tokens with the keys of this JWK Set URL
//	                   (an identity provider's jwks_uri) instead of
//	                   HERALD_JWT_SECRET; needs HERALD_JWT_ISSUER
//	HERALD_JWT_ISSUER  the exact "iss" of the tokens (required with
//	                   HERALD_JWKS_URL, checked with HERALD_JWT_SECRET)
//	HERALD_DEV_SECRET_FILE
//	                   where dev mode keeps its secret, so that tokens
//	                   survive a restart (default
//	                   $XDG_CACHE_HOME/herald/dev-secret)
//	REDIS_URL          redis://host:port/db: join the cluster on that Redis
//	                   (unset = a single node, in memory)
//	HERALD_REDIS_MODE  pubsub (default), sharded (Redis 7+) or streams; a
//	                   node refuses to start beside live nodes of another
//	                   mode
//	HERALD_NODE_TTL    how long a crashed node's users stay online
//	                   (Go duration, default 15s)
//	HERALD_JOB_STATE   on (default) or off: keep each user's job states,
//	                   so that a reloaded page gets its bars back (in
//	                   Redis with REDIS_URL, in memory otherwise)
//	HERALD_RECOVERY    connection-state recovery window (Go duration, e.g.
//	                   2m; default off); a cluster needs
//	                   HERALD_REDIS_MODE=streams
//	HERALD_PARSER      default (socket.io-parser) or msgpack
//	                   (socket.io-msgpack-parser; the page then loads
//	                   socket.io-client's socket.io.msgpack.min.js bundle)
//	HERALD_PING_INTERVAL
//	                   how often the server pings a client (Go duration,
//	                   default 25s)
//	HERALD_PING_TIMEOUT
//	                   how long it waits for the pong (Go duration,
//	                   default 20s)
//	HERALD_HANDSHAKE_RATE
//	                   handshakes per second per client address (default
//	                   50; -1 = no limit)
//	HERALD_TRUSTED_PROXIES
//	                   comma-separated CIDRs or IPs of the proxies in front,
//	                   e.g. 127.0.0.1/32,10.0.0.0/8: handshakes are then
//	                   counted by X-Forwarded-For (unset = by TCP peer)
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/logging"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/internal/devsecret"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "herald demo:", err)
		os.Exit(1)
	}
}

func run() error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env, err := configFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	addr, cfg := env.Addr, env.App
	devSecretNote := ""
	if cfg.DevMode {
		var created bool
		if cfg.Secret, created, err = devsecret.Load(env.DevSecretFile); err != nil {
			return fmt.Errorf("dev mode secret (%s to move it): %w", devsecret.EnvFile, err)
		}
		devSecretNote = "kept across restarts in " + env.DevSecretFile
		if created {
			devSecretNote = "new, kept in " + env.DevSecretFile
		}
	}
	cfg.Logger = logger
	cfg.BundlePath = findBundle(env.Bundle)
	redisAddr := ""
	if env.Redis != nil {
		redisAddr = env.Redis.Addr // the URL may hold a password: never print it
		// herald logs Redis failures itself, rate-limited; go-redis would
		// print every failed dial while Redis is down.
		logging.Disable()
		client := redis.NewClient(env.Redis)
		defer client.Close()
		cfg.Redis = client
	}
	a, err := newApp(cfg)
	if err != nil {
		return err
	}
	if a.broker != nil {
		// A node whose Redis mode differs from the running nodes' would
		// neither hear them nor be heard: refuse to start.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := a.broker.CheckCluster(ctx)
		cancel()
		if errors.Is(err, adapter.ErrModeMismatch) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return errors.Join(err, a.Shutdown(ctx))
		}
		if err != nil {
			logger.Warn("cluster check failed; starting anyway", "err", err)
		}
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	if len(cfg.JWKS) > 0 {
		fmt.Printf("tokens: issued by %s, keys from %s\n", cfg.JWKS[0].Issuer, cfg.JWKS[0].URL)
	}
	if cfg.DevMode {
		fmt.Printf("dev mode: HERALD_JWT_SECRET is unset, so tokens are signed with a dev secret (%s) and GET /dev/token?user=ID hands them out\n", devSecretNote)
	}
	if cfg.Redis != nil {
		fmt.Printf("cluster mode: Redis at %s, %s\n", redisAddr, cmp.Or(string(cfg.RedisMode), "pubsub"))
	}
	if cfg.BundlePath == "" {
		fmt.Println("socket.io-client bundle not found: run `npm ci --prefix examples` for the web page (the APIs work without it)")
	}

	// Last, so that whoever waits for this line has seen the others.
	fmt.Printf("herald demo listening on http://%s\n", ln.Addr())
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	fmt.Println("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Sockets first: http.Server.Shutdown does not close WebSockets.
	appErr := a.Shutdown(shutdownCtx)
	httpErr := httpSrv.Shutdown(shutdownCtx)
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return errors.Join(appErr, httpErr)
}

// findBundle looks for one of socket.io-client's browser bundles, installed
// by `npm ci --prefix examples`, from the usual working directories.
func findBundle(name string) string {
	rel := "node_modules/socket.io-client/dist/" + name
	for _, dir := range []string{"examples", ".", ".."} {
		p := dir + "/" + rel
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
