package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
)

// newTestApp returns a dev-mode app with a random secret, shut down when the
// test ends. cfg.Secret and cfg.DevMode are filled in when zero.
func newTestApp(t *testing.T, cfg appConfig) *app {
	t.Helper()
	if cfg.Secret == nil {
		cfg.Secret = randomSecret(t)
		cfg.DevMode = true
	}
	if cfg.AnalysisDelay == 0 {
		cfg.AnalysisDelay = 10 * time.Millisecond
	}
	a, err := newApp(cfg)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return a
}

func randomSecret(t *testing.T) []byte {
	t.Helper()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	return secret
}

// request is one HTTP request to the app.
type request struct {
	method, target string
	token          string // sent as "Authorization: Bearer <token>" unless ""
	header         string // a raw Authorization header, instead of token
	body           string
}

func serve(t *testing.T, h http.Handler, req request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(req.method, req.target, strings.NewReader(req.body))
	switch {
	case req.header != "":
		r.Header.Set("Authorization", req.header)
	case req.token != "":
		r.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		t.Errorf("%s %s answered %d: %s", req.method, req.target, rec.Code, rec.Body)
	}
	return rec
}

// apiError is the body of every error the API answers.
type apiError struct {
	Success *bool `json:"success"`
	Error   struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// checkError checks that rec is a JSON error with the status and code, whose
// message contains every string of mention.
func checkError(t *testing.T, rec *httptest.ResponseRecorder, status int, code string, mention ...string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("status = %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e apiError
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
	if e.Success == nil || *e.Success {
		t.Errorf("success = %v, want false; body %s", e.Success, rec.Body)
	}
	if e.Error.Code != code {
		t.Errorf("error.code = %q, want %q; body %s", e.Error.Code, code, rec.Body)
	}
	for _, m := range mention {
		if !strings.Contains(e.Error.Message, m) {
			t.Errorf("error.message = %q, want it to mention %q", e.Error.Message, m)
		}
	}
}

func decodeJSON(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("body %q is not JSON: %v", rec.Body, err)
	}
}

func TestDevToken(t *testing.T) {
	a := newTestApp(t, appConfig{})
	tests := []struct {
		name   string
		method string
		user   string
		status int
	}{
		{name: "valid", method: http.MethodGet, user: "alice", status: http.StatusOK},
		{name: "all allowed characters", method: http.MethodGet, user: "A.b_c-d@9", status: http.StatusOK},
		{name: "64 characters", method: http.MethodGet, user: strings.Repeat("u", 64), status: http.StatusOK},
		{name: "empty", method: http.MethodGet, user: "", status: http.StatusBadRequest},
		{name: "65 characters", method: http.MethodGet, user: strings.Repeat("u", 65), status: http.StatusBadRequest},
		{name: "space", method: http.MethodGet, user: "al ice", status: http.StatusBadRequest},
		{name: "markup", method: http.MethodGet, user: "<b>alice</b>", status: http.StatusBadRequest},
		{name: "slash", method: http.MethodGet, user: "a/b", status: http.StatusBadRequest},
		{name: "non-ASCII", method: http.MethodGet, user: "zoë", status: http.StatusBadRequest},
		{name: "POST", method: http.MethodPost, user: "alice", status: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, a.Handler(), request{method: tt.method, target: "/dev/token?user=" + url.QueryEscape(tt.user)})
			switch tt.status {
			case http.StatusOK:
				if rec.Code != http.StatusOK {
					t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
				}
				var got struct {
					Token     string `json:"token"`
					UserID    string `json:"userId"`
					ExpiresIn int    `json:"expiresIn"`
				}
				decodeJSON(t, rec, &got)
				if got.UserID != tt.user || got.ExpiresIn != int((12*time.Hour).Seconds()) {
					t.Errorf("got userId %q expiresIn %d, want %q and 43200", got.UserID, got.ExpiresIn, tt.user)
				}
				p, err := a.verifier.Verify(context.Background(), got.Token)
				if err != nil || p.UserID != tt.user {
					t.Errorf("Verify(token) = %q, %v; want %q", p.UserID, err, tt.user)
				}
			case http.StatusBadRequest:
				checkError(t, rec, tt.status, "invalid_user", "user")
			default:
				checkError(t, rec, tt.status, "method_not_allowed")
			}
		})
	}
}

func TestDevMode(t *testing.T) {
	tests := []struct {
		name     string
		devMode  bool
		bundle   string
		wantDev  bool
		wantBndl bool
		tokenAPI int // status of GET /dev/token?user=alice
	}{
		{name: "dev mode without bundle", devMode: true, wantDev: true, tokenAPI: http.StatusOK},
		{name: "production with bundle", bundle: "socket.io.min.js", wantBndl: true, tokenAPI: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestApp(t, appConfig{Secret: randomSecret(t), DevMode: tt.devMode, BundlePath: tt.bundle})
			rec := serve(t, a.Handler(), request{method: http.MethodGet, target: "/dev/mode"})
			var got struct {
				DevMode *bool `json:"devMode"`
				Bundle  *bool `json:"bundle"`
			}
			decodeJSON(t, rec, &got)
			if rec.Code != http.StatusOK || got.DevMode == nil || *got.DevMode != tt.wantDev || got.Bundle == nil || *got.Bundle != tt.wantBndl {
				t.Errorf("GET /dev/mode = %d %s, want devMode %v bundle %v", rec.Code, rec.Body, tt.wantDev, tt.wantBndl)
			}
			rec = serve(t, a.Handler(), request{method: http.MethodGet, target: "/dev/token?user=alice"})
			if rec.Code != tt.tokenAPI {
				t.Errorf("GET /dev/token = %d, want %d", rec.Code, tt.tokenAPI)
			}
		})
	}
}

// tokens returns a valid, an expired and a foreign token for alice.
func tokens(t *testing.T, secret []byte) (valid, expired, foreign string) {
	t.Helper()
	valid, err := auth.NewHMACToken(secret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err = auth.Sign("HS256", "", secret, map[string]any{
		"sub": "alice",
		"iat": time.Now().Add(-2 * time.Hour),
		"exp": time.Now().Add(-time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err = auth.NewHMACToken(randomSecret(t), "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return valid, expired, foreign
}

var jobIDPattern = regexp.MustCompile(`^job_[0-9a-f]{16}$`)

// apiCase is one request to a POST endpoint and what it must answer.
type apiCase struct {
	name    string
	req     request
	status  int
	code    string   // error code; "" for success
	mention []string // in the error message
}

// runAPICases posts each case to target; ok checks a successful answer.
func runAPICases(t *testing.T, a *app, target string, cases []apiCase, ok func(t *testing.T, req request, rec *httptest.ResponseRecorder)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if req.method == "" {
				req.method = http.MethodPost
			}
			req.target = target
			rec := serve(t, a.Handler(), req)
			if tt.code != "" {
				checkError(t, rec, tt.status, tt.code, tt.mention...)
				return
			}
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			ok(t, req, rec)
		})
	}
}

func TestStartJob(t *testing.T) {
	secret := randomSecret(t)
	a := newTestApp(t, appConfig{Secret: secret, DevMode: true})
	valid, expired, foreign := tokens(t, secret)
	tooBig := `{"steps":1,"fail":false,"pad":"` + strings.Repeat("x", 64<<10) + `"}`

	tests := []apiCase{
		{name: "no token", req: request{body: `{"steps":1}`}, status: 401, code: "token_missing"},
		{name: "basic auth", req: request{header: "Basic YWxpY2U6cHc=", body: `{"steps":1}`}, status: 401, code: "token_missing"},
		{name: "garbage token", req: request{token: "not-a-jwt", body: `{"steps":1}`}, status: 401, code: "token_invalid"},
		{name: "token with bad characters", req: request{token: "a<b", body: `{"steps":1}`}, status: 401, code: "token_invalid"},
		{name: "foreign token", req: request{token: foreign, body: `{"steps":1}`}, status: 401, code: "token_invalid"},
		{name: "expired token", req: request{token: expired, body: `{"steps":1}`}, status: 401, code: "token_expired"},
		{name: "malformed JSON", req: request{token: valid, body: `{"steps":`}, status: 400, code: "invalid_body", mention: []string{"malformed JSON"}},
		{name: "syntax error", req: request{token: valid, body: `{steps: 1}`}, status: 400, code: "invalid_body", mention: []string{"malformed JSON"}},
		{name: "array body", req: request{token: valid, body: `[]`}, status: 400, code: "invalid_body"},
		{name: "two values", req: request{token: valid, body: `{} {}`}, status: 400, code: "invalid_body", mention: []string{"more than one JSON value"}},
		{name: "steps 0", req: request{token: valid, body: `{"steps":0}`}, status: 400, code: "invalid_field", mention: []string{"steps"}},
		{name: "steps 101", req: request{token: valid, body: `{"steps":101}`}, status: 400, code: "invalid_field", mention: []string{"steps"}},
		{name: "steps negative", req: request{token: valid, body: `{"steps":-3}`}, status: 400, code: "invalid_field", mention: []string{"steps"}},
		{name: "steps string", req: request{token: valid, body: `{"steps":"x"}`}, status: 400, code: "invalid_body", mention: []string{"steps", "number"}},
		{name: "steps fraction", req: request{token: valid, body: `{"steps":1.5}`}, status: 400, code: "invalid_body", mention: []string{"steps"}},
		{name: "steps huge", req: request{token: valid, body: `{"steps":1e400}`}, status: 400, code: "invalid_body", mention: []string{"steps"}},
		{name: "delayMs -1", req: request{token: valid, body: `{"steps":1,"delayMs":-1}`}, status: 400, code: "invalid_field", mention: []string{"delayMs"}},
		{name: "delayMs 5001", req: request{token: valid, body: `{"steps":1,"delayMs":5001}`}, status: 400, code: "invalid_field", mention: []string{"delayMs"}},
		{name: "delayMs string", req: request{token: valid, body: `{"delayMs":"slow"}`}, status: 400, code: "invalid_body", mention: []string{"delayMs"}},
		{name: "fail string", req: request{token: valid, body: `{"fail":"yes"}`}, status: 400, code: "invalid_body", mention: []string{"fail", "boolean"}},
		{name: "unknown field", req: request{token: valid, body: `{"steps":1,"stepz":2}`}, status: 400, code: "invalid_body", mention: []string{"stepz"}},
		{name: "body over 64 KiB", req: request{token: valid, body: tooBig}, status: 400, code: "invalid_body", mention: []string{"64 KiB"}},
		{name: "GET", req: request{method: http.MethodGet, token: valid}, status: 405, code: "method_not_allowed"},
		{name: "PUT", req: request{method: http.MethodPut, token: valid, body: `{}`}, status: 405, code: "method_not_allowed"},
		{name: "valid", req: request{token: valid, body: `{"steps":4,"delayMs":0}`}, status: 202},
		{name: "valid failing", req: request{token: valid, body: `{"steps":1,"delayMs":0,"fail":true}`}, status: 202},
		{name: "limits", req: request{token: valid, body: `{"steps":100,"delayMs":5000}`}, status: 202},
		{name: "empty body uses defaults", req: request{token: valid}, status: 202},
		{name: "null uses defaults", req: request{token: valid, body: `null`}, status: 202},
	}
	runAPICases(t, a, "/api/v1/jobs", tests, func(t *testing.T, _ request, rec *httptest.ResponseRecorder) {
		var got struct {
			JobID string `json:"jobId"`
		}
		decodeJSON(t, rec, &got)
		if !jobIDPattern.MatchString(got.JobID) {
			t.Errorf("jobId = %q, want job_ and 16 hex digits", got.JobID)
		}
	})
}

func TestStartAnalysis(t *testing.T) {
	secret := randomSecret(t)
	a := newTestApp(t, appConfig{Secret: secret, DevMode: true})
	valid, expired, _ := tokens(t, secret)

	tests := []apiCase{
		{name: "no token", req: request{body: `{"interviewId":"i1"}`}, status: 401, code: "token_missing"},
		{name: "expired token", req: request{token: expired, body: `{"interviewId":"i1"}`}, status: 401, code: "token_expired"},
		{name: "missing interviewId", req: request{token: valid, body: `{"fail":true}`}, status: 400, code: "invalid_field", mention: []string{"interviewId"}},
		{name: "empty body", req: request{token: valid}, status: 400, code: "invalid_field", mention: []string{"interviewId"}},
		{name: "empty interviewId", req: request{token: valid, body: `{"interviewId":""}`}, status: 400, code: "invalid_field", mention: []string{"interviewId"}},
		{name: "interviewId 129 bytes", req: request{token: valid, body: `{"interviewId":"` + strings.Repeat("i", 129) + `"}`}, status: 400, code: "invalid_field", mention: []string{"interviewId"}},
		{name: "interviewId control character", req: request{token: valid, body: `{"interviewId":"a\nb"}`}, status: 400, code: "invalid_field", mention: []string{"interviewId"}},
		{name: "interviewId number", req: request{token: valid, body: `{"interviewId":42}`}, status: 400, code: "invalid_body", mention: []string{"interviewId"}},
		{name: "unknown field", req: request{token: valid, body: `{"interviewId":"i1","jobId":"j"}`}, status: 400, code: "invalid_body", mention: []string{"jobId"}},
		{name: "malformed JSON", req: request{token: valid, body: `{"interviewId":`}, status: 400, code: "invalid_body"},
		{name: "GET", req: request{method: http.MethodGet, token: valid}, status: 405, code: "method_not_allowed"},
		{name: "valid", req: request{token: valid, body: `{"interviewId":"interview-1"}`}, status: 202},
		{name: "valid failing", req: request{token: valid, body: `{"interviewId":"interview-2","fail":true}`}, status: 202},
		{name: "128 bytes", req: request{token: valid, body: `{"interviewId":"` + strings.Repeat("i", 128) + `"}`}, status: 202},
	}
	runAPICases(t, a, "/api/v1/analyses", tests, func(t *testing.T, req request, rec *httptest.ResponseRecorder) {
		var sent, got struct {
			InterviewID string `json:"interviewId"`
		}
		if err := json.Unmarshal([]byte(req.body), &sent); err != nil {
			t.Fatal(err)
		}
		decodeJSON(t, rec, &got)
		if got.InterviewID != sent.InterviewID {
			t.Errorf("interviewId = %q, want %q", got.InterviewID, sent.InterviewID)
		}
	})
}

func TestStats(t *testing.T) {
	a := newTestApp(t, appConfig{})
	t.Run("GET", func(t *testing.T) {
		rec := serve(t, a.Handler(), request{method: http.MethodGet, target: "/api/v1/websocket/stats"})
		if rec.Code != http.StatusOK {
			t.Fatalf("status = %d, want 200; body %s", rec.Code, rec.Body)
		}
		var got struct {
			Success bool                       `json:"success"`
			Data    map[string]json.RawMessage `json:"data"`
		}
		decodeJSON(t, rec, &got)
		if !got.Success || len(got.Data) != 8 {
			t.Fatalf("body = %s, want success and data with connected, users, nodes, staleNodes, scope, partial, node, timestamp", rec.Body)
		}
		for key, want := range map[string]string{"connected": "0", "users": "0", "nodes": "1", "staleNodes": "0", "scope": `"cluster"`, "partial": "false",
			"node": `{"connected":0,"users":0}`} {
			if string(got.Data[key]) != want {
				t.Errorf("data.%s = %s, want %s", key, got.Data[key], want)
			}
		}
		var ts string
		if err := json.Unmarshal(got.Data["timestamp"], &ts); err != nil {
			t.Fatalf("data.timestamp = %s, want a string: %v", got.Data["timestamp"], err)
		}
		if when, err := time.Parse(time.RFC3339, ts); err != nil || time.Since(when).Abs() > time.Minute {
			t.Errorf("data.timestamp = %q, want RFC 3339 and about now (%v)", ts, err)
		}
	})
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			rec := serve(t, a.Handler(), request{method: method, target: "/api/v1/websocket/stats", body: `{}`})
			checkError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
		})
	}
}

func TestPageAndBundle(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "socket.io.min.js")
	if err := os.WriteFile(bundle, []byte("/* socket.io-client */"), 0o644); err != nil {
		t.Fatal(err)
	}
	withBundle := newTestApp(t, appConfig{Secret: randomSecret(t), DevMode: true, BundlePath: bundle})
	without := newTestApp(t, appConfig{})

	tests := []struct {
		name     string
		h        http.Handler
		target   string
		status   int
		ctype    string
		contains string
	}{
		{name: "page", h: without.Handler(), target: "/", status: 200, ctype: "text/html", contains: `src="/vendor/socket.io.min.js"`},
		{name: "script", h: without.Handler(), target: "/static/app.js", status: 200, ctype: "javascript", contains: "io({ auth: { token } })"},
		{name: "style", h: without.Handler(), target: "/static/style.css", status: 200, ctype: "text/css"},
		{name: "bundle", h: withBundle.Handler(), target: "/vendor/socket.io.min.js", status: 200, ctype: "application/javascript", contains: "socket.io-client"},
		{name: "bundle missing", h: without.Handler(), target: "/vendor/socket.io.min.js", status: 404, ctype: "application/json", contains: "npm ci --prefix examples"},
		{name: "unknown static file", h: without.Handler(), target: "/static/nope.js", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, tt.h, request{method: http.MethodGet, target: tt.target})
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d", rec.Code, tt.status)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.Contains(ct, tt.ctype) {
				t.Errorf("Content-Type = %q, want %q", ct, tt.ctype)
			}
			if !strings.Contains(rec.Body.String(), tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
		})
	}
}

// TestNo500 sends odd requests everywhere: none may answer 500 (serve
// checks) or panic.
func TestNo500(t *testing.T) {
	secret := randomSecret(t)
	a := newTestApp(t, appConfig{Secret: secret, DevMode: true})
	valid, _, _ := tokens(t, secret)
	targets := []string{"/api/v1/jobs", "/api/v1/analyses", "/api/v1/websocket/stats", "/dev/token", "/dev/token?user=alice", "/dev/mode", "/nope"}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodOptions}
	bodies := []string{"", "null", "[]", "{}", `"x"`, "\xff\xfe", `{"steps":null,"delayMs":null}`, strings.Repeat("[", 10000), `{"interviewId":"\u0000"}`}
	for _, target := range targets {
		for _, method := range methods {
			for _, body := range bodies {
				serve(t, a.Handler(), request{method: method, target: target, token: valid, body: body})
			}
		}
	}
}

func TestShutdown(t *testing.T) {
	secret := randomSecret(t)
	a := newTestApp(t, appConfig{Secret: secret, DevMode: true})
	valid, _, _ := tokens(t, secret)

	// A long job is running: Shutdown must stop it.
	rec := serve(t, a.Handler(), request{method: http.MethodPost, target: "/api/v1/jobs", token: valid, body: `{"steps":100,"delayMs":5000}`})
	if rec.Code != http.StatusAccepted {
		t.Fatalf("start job: status %d; body %s", rec.Code, rec.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 2 { // idempotent
		if err := a.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown #%d: %v", i+1, err)
		}
	}

	tests := []struct {
		target, body string
	}{
		{target: "/api/v1/jobs", body: `{"steps":1}`},
		{target: "/api/v1/analyses", body: `{"interviewId":"i1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := serve(t, a.Handler(), request{method: http.MethodPost, target: tt.target, token: valid, body: tt.body})
			checkError(t, rec, http.StatusServiceUnavailable, "shutting_down")
		})
	}
}

func TestOnlineUsers(t *testing.T) {
	a := newTestApp(t, appConfig{})
	tok, err := auth.NewHMACToken(a.cfg.Secret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(t, a.Handler(), request{method: http.MethodGet, target: "/api/v1/users/online", token: tok})
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"data":{"partial":false,"users":[]},"success":true}` {
		t.Fatalf("status %d, body %s", rec.Code, rec.Body)
	}
	checkError(t, serve(t, a.Handler(), request{method: http.MethodGet, target: "/api/v1/users/online"}), http.StatusUnauthorized, "token_missing")
	checkError(t, serve(t, a.Handler(), request{method: http.MethodPost, target: "/api/v1/users/online", token: tok}), http.StatusMethodNotAllowed, "method_not_allowed")
}
