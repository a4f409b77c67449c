package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio"
)

//go:embed static
var staticFiles embed.FS

type appConfig struct {
	Secret     []byte            // HS256 secret
	Issuer     string            // required "iss" of HS256 tokens; "" = not checked
	JWKS       []auth.JWKSIssuer // verify with these issuers' JWKS instead of Secret
	DevMode    bool              // serve GET /dev/token
	BundlePath string            // socket.io(.msgpack).min.js on disk; "" = not installed
	Logger     *slog.Logger      // nil = silent
	TokenTTL   time.Duration     // dev tokens; 0 = 12h
	// AnalysisDelay is how long a simulated analysis runs; 0 = 1.5s.
	AnalysisDelay time.Duration
	// Redis, when set, joins this node to the cluster on that Redis: the
	// Redis broker and presence. The app never closes the client.
	Redis     redis.UniversalClient
	RedisMode adapter.RedisMode // "" = pub/sub
	NodeTTL   time.Duration     // 0 = adapter.DefaultNodeTTL
	// NoJobState turns off the job state (socketio.Config.Jobs), which
	// is kept in Redis with Redis, in memory otherwise.
	NoJobState bool
	// Recovery enables connection-state recovery (streams mode only).
	Recovery time.Duration
	// Parser is socketio.Config.Parser; "" = the default parser.
	Parser string
	// PingInterval, PingTimeout and HandshakeRate are socketio.Config's;
	// 0 = its defaults. A HandshakeRate of -1 also lifts
	// MaxPendingConnections (load tests from one address).
	PingInterval  time.Duration
	PingTimeout   time.Duration
	HandshakeRate int
	// TrustedProxies, when set, makes the handshake rate limit count
	// clients by X-Forwarded-For behind these proxies
	// (socketio.ForwardedClientIP); nil = by TCP peer.
	TrustedProxies []netip.Prefix
}

// app is the demo backend: the herald server plus the HTTP API that starts
// simulated jobs and analyses.
type app struct {
	cfg      appConfig
	log      *slog.Logger
	verifier socketio.TokenVerifier
	jwks     *auth.JWKSVerifier // nil without cfg.JWKS; closed by Shutdown
	srv      *socketio.Server
	broker   *adapter.RedisBroker   // nil on a single node
	presence *adapter.RedisPresence // nil on a single node
	mux      *http.ServeMux

	ctx     context.Context // ends at Shutdown; simulated work stops with it
	cancel  context.CancelFunc
	mu      sync.Mutex // guards stopped and wg.Add
	stopped bool
	wg      sync.WaitGroup
}

func newApp(cfg appConfig) (*app, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 12 * time.Hour
	}
	if cfg.AnalysisDelay == 0 {
		cfg.AnalysisDelay = 1500 * time.Millisecond
	}
	a := &app{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if len(cfg.JWKS) > 0 {
		// Waits for the first fetch of the keys, up to 10 s; the
		// verifier keeps trying in the background if it fails.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := auth.NewJWKSVerifier(ctx, auth.JWKSConfig{Issuers: cfg.JWKS, Leeway: 5 * time.Second, Logger: cfg.Logger})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("HERALD_JWKS_URL: %w", err)
		}
		a.jwks, a.verifier = v, v
	} else {
		v, err := auth.NewVerifier(auth.Config{
			Keys:   []auth.Key{{Algorithm: "HS256", Secret: cfg.Secret}},
			Issuer: cfg.Issuer,
			Leeway: 5 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("HERALD_JWT_SECRET: %w", err)
		}
		a.verifier = v
	}
	verifier := a.verifier
	scfg := socketio.Config{
		Verifier:          verifier,
		Logger:            cfg.Logger,
		BroadcastPresence: true, // the demo shows everyone who is online
		Recovery:          cfg.Recovery,
		Parser:            cfg.Parser,
		PingInterval:      cfg.PingInterval,
		PingTimeout:       cfg.PingTimeout,
		HandshakeRate:     cfg.HandshakeRate,
	}
	if cfg.HandshakeRate < 0 {
		scfg.MaxPendingConnections = -1 // load tests from one address
	}
	if cfg.TrustedProxies != nil {
		scfg.ClientIP = socketio.ForwardedClientIP(cfg.TrustedProxies...)
	}
	var err error
	if cfg.Redis != nil {
		if a.broker, err = adapter.NewRedisBroker(adapter.RedisBrokerConfig{
			Client: cfg.Redis, Mode: cfg.RedisMode, Logger: cfg.Logger,
		}); err != nil {
			a.release(context.Background())
			return nil, err
		}
		if a.presence, err = adapter.NewRedisPresence(adapter.RedisPresenceConfig{
			Client: cfg.Redis, NodeTTL: cfg.NodeTTL, Logger: cfg.Logger,
		}); err != nil {
			a.release(context.Background())
			return nil, err
		}
		scfg.Broker, scfg.Presence = a.broker, a.presence
	}
	switch {
	case cfg.NoJobState:
	case cfg.Redis != nil:
		if scfg.Jobs, err = adapter.NewRedisJobStore(adapter.RedisJobStoreConfig{Client: cfg.Redis}); err != nil {
			a.release(context.Background())
			return nil, err
		}
	default:
		scfg.Jobs = adapter.NewMemoryJobStore(adapter.JobStoreConfig{})
	}
	srv, err := socketio.New(scfg)
	if err != nil {
		a.release(context.Background())
		return nil, err
	}
	a.srv = srv
	a.ctx, a.cancel = context.WithCancel(context.Background())

	static, _ := fs.Sub(staticFiles, "static")
	a.mux.Handle("GET /{$}", http.FileServerFS(static))
	a.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	a.mux.HandleFunc("GET /vendor/socket.io.min.js", a.serveBundle)
	a.mux.Handle(srv.Path(), srv)
	a.mux.Handle("/api/v1/websocket/stats", srv.StatsHandler())
	a.mux.HandleFunc("/api/v1/jobs", a.startJob)
	a.mux.HandleFunc("/api/v1/analyses", a.startAnalysis)
	a.mux.HandleFunc("/api/v1/users/online", a.onlineUsers)
	a.mux.HandleFunc("GET /api/v1/jobs/states", a.jobStates)
	if cfg.DevMode {
		a.mux.HandleFunc("/dev/token", a.devToken)
	}
	a.mux.HandleFunc("GET /dev/mode", func(w http.ResponseWriter, r *http.Request) {
		tokens := "HS256, signed with the server's HERALD_JWT_SECRET"
		if len(cfg.JWKS) > 0 {
			tokens = "issued by " + cfg.JWKS[0].Issuer
		}
		writeJSON(w, http.StatusOK, map[string]any{"devMode": cfg.DevMode, "bundle": cfg.BundlePath != "", "tokens": tokens})
	})
	return a, nil
}

func (a *app) Handler() http.Handler { return a.mux }

// Shutdown stops the herald server, then the simulated work.
func (a *app) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.stopped = true // no new simulated work from here on
	a.mu.Unlock()
	err := a.srv.Shutdown(ctx)
	a.cancel()
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return errors.Join(err, a.release(ctx))
}

// release stops what newApp started besides the server: the JWKS refresh,
// and the cluster (this node's registration is removed and the broker's
// subscription stopped).
func (a *app) release(ctx context.Context) error {
	if a.jwks != nil {
		a.jwks.Close()
	}
	var errs []error
	if a.presence != nil {
		errs = append(errs, a.presence.Close(ctx))
	}
	if a.broker != nil {
		errs = append(errs, a.broker.Close(ctx))
	}
	return errors.Join(errs...)
}

func (a *app) serveBundle(w http.ResponseWriter, r *http.Request) {
	if a.cfg.BundlePath == "" {
		writeError(w, http.StatusNotFound, "bundle_missing", "socket.io-client is not installed: run `npm ci --prefix examples`")
		return
	}
	w.Header().Set("Content-Type", "application/javascript; charset=utf-8")
	http.ServeFile(w, r, a.cfg.BundlePath)
}

var userIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

func (a *app) devToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	user := r.URL.Query().Get("user")
	if !userIDPattern.MatchString(user) {
		writeError(w, http.StatusBadRequest, "invalid_user", "user: 1 to 64 letters, digits or _ . @ -")
		return
	}
	token, err := auth.NewHMACToken(a.cfg.Secret, user, a.cfg.TokenTTL)
	if err != nil {
		a.log.Error("sign token", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "userId": user, "expiresIn": int(a.cfg.TokenTTL.Seconds())})
}

// user authenticates an API request by its bearer token, answering 401
// itself when it fails.
func (a *app) user(w http.ResponseWriter, r *http.Request) (string, bool) {
	token, err := auth.ExtractToken(auth.Handshake{Header: r.Header}, auth.ExtractOptions{})
	var p auth.Principal
	if err == nil {
		p, err = a.verifier.Verify(r.Context(), token)
	}
	if err != nil {
		writeError(w, http.StatusUnauthorized, auth.Code(err), "unauthorized")
		return "", false
	}
	return p.UserID, true
}

// onlineUsers answers who is online. The demo lets every signed-in user see
// everyone; a real service decides who may see whom.
func (a *app) onlineUsers(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, http.MethodGet)
		return
	}
	if _, ok := a.user(w, r); !ok {
		return
	}
	users, err := a.srv.OnlineUsers(r.Context())
	partial := errors.Is(err, adapter.ErrPartial) // Redis is out: this node's users
	if err != nil && !partial {
		a.log.Warn("online users", "err", err)
		writeError(w, http.StatusServiceUnavailable, "presence_unavailable", "presence unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"users": users, "partial": partial}})
}

// postRequest checks that r is an authenticated POST and decodes its body
// into v, answering the error itself when it is not.
func (a *app) postRequest(w http.ResponseWriter, r *http.Request, v any) (user string, ok bool) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return "", false
	}
	if user, ok = a.user(w, r); !ok {
		return "", false
	}
	return user, decodeBody(w, r, v)
}

type jobRequest struct {
	Steps   *int `json:"steps"`
	DelayMs *int `json:"delayMs"`
	Fail    bool `json:"fail"`
}

func (a *app) startJob(w http.ResponseWriter, r *http.Request) {
	var req jobRequest
	user, ok := a.postRequest(w, r, &req)
	if !ok {
		return
	}
	steps, delay := 5, 300
	if req.Steps != nil {
		steps = *req.Steps
	}
	if req.DelayMs != nil {
		delay = *req.DelayMs
	}
	if steps < 1 || steps > 100 {
		writeError(w, http.StatusBadRequest, "invalid_field", "steps: must be 1..100")
		return
	}
	if delay < 0 || delay > 5000 {
		writeError(w, http.StatusBadRequest, "invalid_field", "delayMs: must be 0..5000")
		return
	}
	jobID := "job_" + randomID()
	if !a.spawn(func(ctx context.Context) {
		a.runJob(ctx, user, jobID, steps, time.Duration(delay)*time.Millisecond, req.Fail)
	}) {
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "server shutting down")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"jobId": jobID})
}

// jobStates answers the latest state of the user's running jobs and
// analyses (socketio.Server.JobStates): the page compares it with its bars
// after it connects.
func (a *app) jobStates(w http.ResponseWriter, r *http.Request) {
	user, ok := a.user(w, r)
	if !ok {
		return
	}
	states, err := a.srv.JobStates(r.Context(), user)
	switch {
	case errors.Is(err, socketio.ErrNoJobStore):
		writeError(w, http.StatusNotFound, "job_state_off", "the server keeps no job state (HERALD_JOB_STATE=off)")
		return
	case err != nil:
		a.log.Warn("job states", "err", err)
		writeError(w, http.StatusServiceUnavailable, "job_state_unavailable", "job state unavailable")
		return
	}
	if states == nil {
		states = []adapter.JobState{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": map[string]any{"jobs": states}})
}

// jobLease is how long a simulated job may go without reporting before
// herald fails it as stalled: the process running it died.
func jobLease(delay time.Duration) time.Duration { return 3*delay + 2*time.Second }

func (a *app) runJob(ctx context.Context, user, jobID string, steps int, delay time.Duration, fail bool) {
	lease := jobLease(delay)
	for i := 1; i <= steps; i++ {
		if !sleep(ctx, delay) {
			return
		}
		p := events.JobProgressPayload{JobID: jobID, Progress: i * 100 / steps, Message: fmt.Sprintf("step %d of %d", i, steps), Lease: lease}
		if err := a.srv.EmitToUser(ctx, user, events.JobProgress, p); err != nil {
			a.log.Warn("emit job_progress", "job", jobID, "err", err)
			if !errors.Is(err, adapter.ErrRemoteUndelivered) && !errors.Is(err, adapter.ErrMaybeLost) {
				return
			}
			// Redis is down, or nodes were resubscribing: this node's
			// sockets got it, the next step tells the others; carry on.
		}
	}
	var err error
	if fail {
		err = a.srv.EmitToUser(ctx, user, events.JobFailed, events.JobFailedPayload{JobID: jobID, Error: "simulated failure"})
	} else {
		err = a.srv.EmitToUser(ctx, user, events.JobCompleted, events.JobCompletedPayload{JobID: jobID, Result: map[string]any{"steps": steps}})
	}
	if err != nil {
		a.log.Warn("emit job result", "job", jobID, "err", err)
	}
}

type analysisRequest struct {
	InterviewID string `json:"interviewId"`
	Fail        bool   `json:"fail"`
}

func (a *app) startAnalysis(w http.ResponseWriter, r *http.Request) {
	var req analysisRequest
	user, ok := a.postRequest(w, r, &req)
	if !ok {
		return
	}
	if req.InterviewID == "" || len(req.InterviewID) > 128 || strings.ContainsFunc(req.InterviewID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		writeError(w, http.StatusBadRequest, "invalid_field", "interviewId: required, 1 to 128 printable characters")
		return
	}
	if !a.spawn(func(ctx context.Context) { a.runAnalysis(ctx, user, req.InterviewID, req.Fail) }) {
		writeError(w, http.StatusServiceUnavailable, "shutting_down", "server shutting down")
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"interviewId": req.InterviewID})
}

func (a *app) runAnalysis(ctx context.Context, user, interviewID string, fail bool) {
	start := events.AnalysisPayload{InterviewID: interviewID, Message: "analysis started", Status: events.StatusStarted, Lease: jobLease(a.cfg.AnalysisDelay)}
	if err := a.srv.EmitToUser(ctx, user, events.AnalysisStarted, start); err != nil {
		a.log.Warn("emit analysis:started", "err", err)
		return
	}
	if !sleep(ctx, a.cfg.AnalysisDelay) {
		return
	}
	ev, p := events.AnalysisCompleted, events.AnalysisPayload{InterviewID: interviewID, Message: "analysis completed", Status: events.StatusCompleted}
	if fail {
		ev, p = events.AnalysisFailed, events.AnalysisPayload{InterviewID: interviewID, Message: "simulated failure", Status: events.StatusFailed}
	}
	if err := a.srv.EmitToUser(ctx, user, ev, p); err != nil {
		a.log.Warn("emit analysis result", "err", err)
	}
}

// spawn runs fn on a goroutine that Shutdown cancels and waits for.
func (a *app) spawn(fn func(ctx context.Context)) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return false
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		fn(a.ctx)
	}()
	return true
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// decodeBody decodes a JSON request body of at most 64 KiB into v. An empty
// body leaves v as it is. It answers 400 naming the field itself on error.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", "body: larger than 64 KiB or unreadable")
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", describeJSONError(err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_body", "body: more than one JSON value")
		return false
	}
	return true
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return "body: must be a JSON object"
	case errors.As(err, &typeErr):
		return fmt.Sprintf("%s: must be a JSON %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("body: malformed JSON at offset %d", syntaxErr.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: unknown field ") + ": unknown field"
	}
	return "body: malformed JSON"
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "ptr":
		return "number"
	case "struct", "map":
		return "object"
	}
	return goKind
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allow)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"success": false, "error": map[string]string{"code": code, "message": message}})
}
