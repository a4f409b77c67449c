package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/herald-rt/herald/auth"
)

// JWKSVerifier has the method set of socketio.TokenVerifier.
var _ interface {
	Verify(ctx context.Context, token string) (auth.Principal, error)
} = (*auth.JWKSVerifier)(nil)

const (
	issA = "https://a.example/"
	issB = "https://b.example/"
)

// testClock is a clock that tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: now} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects what a slog.Logger writes.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// jwksServer is a JWK Set endpoint on loopback whose answer the test
// changes, and which counts the requests it gets.
type jwksServer struct {
	*httptest.Server
	requests atomic.Int64

	mu      sync.Mutex
	body    string
	handler http.HandlerFunc // answers instead of body when set
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{body: jwksOf(keys...)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		body, h := s.body, s.handler
		s.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...map[string]any) { s.setBody(jwksOf(keys...)) }

func (s *jwksServer) setBody(body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.handler = body, nil
}

func (s *jwksServer) setHandler(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
}

func (s *jwksServer) count() int64 { return s.requests.Load() }

// jwksOf returns a JWK Set of keys.
func jwksOf(keys ...map[string]any) string {
	if keys == nil {
		keys = []map[string]any{}
	}
	return jsonOf(map[string]any{"keys": keys})
}

// jwkOf returns the public JWK of pub, made by jwkset, with kid and alg ("" leaves
// them out; Ed25519 keys always get alg EdDSA).
func jwkOf(t testing.TB, pub crypto.PublicKey, kid, alg string) map[string]any {
	t.Helper()
	j, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.ALG(alg)}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(jsonOf(j.Marshal())), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func newECKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signJWT signs claims with any algorithm jwt knows (auth.Sign knows six).
func signJWT(t testing.TB, alg, kid string, key any, c map[string]any) string {
	t.Helper()
	mc := jwt.MapClaims{}
	for name, value := range c {
		if tm, ok := value.(time.Time); ok {
			value = jwt.NewNumericDate(tm)
		}
		mc[name] = value
	}
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), mc)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return s
}

// issClaims returns valid claims of issuer iss (see claims).
func issClaims(iss string, extra map[string]any) map[string]any {
	c := claims(extra)
	c["iss"] = iss
	return c
}

// newJWKSVerifier returns a verifier of cfg closed at the end of the test;
// Now defaults to the fixed clock.
func newJWKSVerifier(t *testing.T, cfg auth.JWKSConfig) *auth.JWKSVerifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	v, err := auth.NewJWKSVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewJWKSVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// oneIssuer configures issuer iss served by srv.
func oneIssuer(iss string, srv *jwksServer) []auth.JWKSIssuer {
	return []auth.JWKSIssuer{{Issuer: iss, URL: srv.URL + "/jwks.json"}}
}

// verifyOK checks that tok verifies as user u1.
func verifyOK(t *testing.T, v *auth.JWKSVerifier, tok string) auth.Principal {
	t.Helper()
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if p.UserID != "u1" {
		t.Fatalf("UserID = %q, want u1", p.UserID)
	}
	return p
}

// verifyInvalid checks that tok is rejected with ErrTokenInvalid and a
// reason containing reason.
func verifyInvalid(t *testing.T, v *auth.JWKSVerifier, tok, reason string) error {
	t.Helper()
	p, err := v.Verify(context.Background(), tok)
	checkErr(t, err, auth.ErrTokenInvalid, tok)
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("err = %v, want %q", err, reason)
	}
	if p.UserID != "" || p.Claims != nil {
		t.Errorf("principal %+v with an error", p)
	}
	return err
}

func TestJWKSVerify(t *testing.T) {
	k := keys()
	p384 := newECKey(t, elliptic.P384())
	tests := []struct {
		name    string
		jwk     map[string]any
		alg     string
		signKey any
	}{
		{"RSA RS256", jwkOf(t, &k.rsa.PublicKey, "r", "RS256"), "RS256", k.rsa},
		{"RSA without alg", jwkOf(t, &k.rsa.PublicKey, "r", ""), "RS256", k.rsa},
		{"RSA PS256", jwkOf(t, &k.rsa.PublicKey, "r", "PS256"), "PS256", k.rsa},
		{"RSA RS512", jwkOf(t, &k.rsa.PublicKey, "r", "RS512"), "RS512", k.rsa},
		{"EC P-256 without alg", jwkOf(t, &k.ecdsa.PublicKey, "e", ""), "ES256", k.ecdsa},
		{"EC P-384", jwkOf(t, &p384.PublicKey, "e", "ES384"), "ES384", p384},
		{"Ed25519", jwkOf(t, k.ed25519.Public(), "d", ""), "EdDSA", k.ed25519},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, tc.jwk)
			v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), Audience: "herald"})
			kid, _ := tc.jwk["kid"].(string)
			tok := signJWT(t, tc.alg, kid, tc.signKey, issClaims(issA, map[string]any{"aud": "herald"}))
			p := verifyOK(t, v, tok)
			if p.Claims["iss"] != issA || !p.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Errorf("principal %+v", p)
			}
			// The same kid and key with another alg, and a bad signature.
			other := map[string]string{"RS256": "RS384", "RS512": "RS256", "PS256": "RS256", "ES256": "ES384", "ES384": "ES256", "EdDSA": "ES256"}[tc.alg]
			verifyInvalid(t, v, rawToken(jsonOf(map[string]any{"alg": other, "kid": kid}), jsonOf(issClaims(issA, nil)), []byte("sig")), "alg")
			verifyInvalid(t, v, tok[:len(tok)-4]+"AAAA", "signature")
			if n := srv.count(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// The claim rules are those of Verifier.
func TestJWKSClaims(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256"))
	v := newJWKSVerifier(t, auth.JWKSConfig{
		Issuers:   oneIssuer(issA, srv),
		Audience:  "herald",
		Leeway:    time.Minute,
		UserClaim: "uid",
	})
	base := map[string]any{"aud": "herald", "uid": 42}
	merge := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return issClaims(issA, m)
	}
	tests := []struct {
		name  string
		extra map[string]any
		want  error
		why   string
	}{
		{"valid", nil, nil, ""},
		{"within leeway", map[string]any{"exp": now.Add(-30 * time.Second)}, nil, ""},
		{"expired", map[string]any{"exp": now.Add(-2 * time.Minute)}, auth.ErrTokenExpired, ""},
		{"no exp", map[string]any{"exp": nil}, auth.ErrTokenInvalid, "missing exp"},
		{"nbf in the future", map[string]any{"nbf": now.Add(2 * time.Minute)}, auth.ErrTokenInvalid, "nbf"},
		{"wrong aud", map[string]any{"aud": "other"}, auth.ErrTokenInvalid, "aud mismatch"},
		{"no user", map[string]any{"uid": nil}, auth.ErrTokenInvalid, "missing user claim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := merge(tc.extra)
			for name, value := range c {
				if value == nil {
					delete(c, name)
				}
			}
			tok := signJWT(t, "ES256", "e", k.ecdsa, c)
			p, err := v.Verify(context.Background(), tok)
			checkErr(t, err, tc.want, tok)
			if err != nil && !strings.Contains(err.Error(), tc.why) {
				t.Errorf("err = %v, want %q", err, tc.why)
			}
			if err == nil && p.UserID != "42" {
				t.Errorf("UserID = %q, want 42", p.UserID)
			}
		})
	}
	// The issuer is the configured one, exactly.
	verifyInvalid(t, v, signJWT(t, "ES256", "e", k.ecdsa, issClaims("https://a.example", base)), "unknown issuer")
	verifyInvalid(t, v, signJWT(t, "ES256", "e", k.ecdsa, claims(base)), "missing iss")
	numericIss := merge(nil)
	numericIss["iss"] = 7
	verifyInvalid(t, v, signJWT(t, "ES256", "e", k.ecdsa, numericIss), "iss is not a string")
	verifyInvalid(t, v, "e30.bm90LWpzb24.c2ln", "alg")
	_, err := v.Verify(context.Background(), "")
	checkErr(t, err, auth.ErrTokenMissing, "")
}

// A new kid at the endpoint: the first token with it makes the verifier
// fetch the set again, and verifies.
func TestJWKSRotation(t *testing.T) {
	k1, k2 := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	srv := newJWKSServer(t, jwkOf(t, &k1.PublicKey, "k1", "ES256"))
	v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv)})
	tok1 := signJWT(t, "ES256", "k1", k1, issClaims(issA, nil))
	tok2 := signJWT(t, "ES256", "k2", k2, issClaims(issA, nil))
	verifyOK(t, v, tok1)

	srv.setKeys(jwkOf(t, &k1.PublicKey, "k1", "ES256"), jwkOf(t, &k2.PublicKey, "k2", "ES256"))
	verifyOK(t, v, tok2)
	verifyOK(t, v, tok1)
	if n := srv.count(); n != 2 {
		t.Errorf("%d requests, want 2 (start, then the unknown kid)", n)
	}
}

// A key removed from the endpoint stops verifying once the set is fetched
// again, by Refresh or in the background.
func TestJWKSRemovedKey(t *testing.T) {
	k1, k2 := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	both := []map[string]any{jwkOf(t, &k1.PublicKey, "k1", "ES256"), jwkOf(t, &k2.PublicKey, "k2", "ES256")}
	tok1 := signJWT(t, "ES256", "k1", k1, issClaims(issA, nil))
	tok2 := signJWT(t, "ES256", "k2", k2, issClaims(issA, nil))

	t.Run("Refresh", func(t *testing.T) {
		srv := newJWKSServer(t, both...)
		v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv)})
		verifyOK(t, v, tok1)
		srv.setKeys(both[1])
		verifyOK(t, v, tok1) // cached until the next fetch
		if err := v.Refresh(context.Background()); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
		verifyInvalid(t, v, tok1, "unknown kid")
		verifyOK(t, v, tok2)
	})

	t.Run("background", func(t *testing.T) {
		srv := newJWKSServer(t, both...)
		v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), RefreshInterval: 5 * time.Millisecond})
		verifyOK(t, v, tok1)
		srv.setKeys(both[1])
		// Whenever the background refresh comes, k1 goes; no bound on when.
		deadline := time.Now().Add(time.Minute)
		for {
			_, err := v.Verify(context.Background(), tok1)
			if err != nil {
				checkErr(t, err, auth.ErrTokenInvalid, tok1)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("k1 still verifies after %d requests", srv.count())
			}
			time.Sleep(5 * time.Millisecond)
		}
		verifyOK(t, v, tok2)
	})
}

// A failing endpoint leaves the cached keys in use, and logs a warning.
func TestJWKSEndpointFailure(t *testing.T) {
	k := keys()
	good := jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256")
	tok := signJWT(t, "ES256", "e", k.ecdsa, issClaims(issA, nil))
	tests := []struct {
		name    string
		handler http.HandlerFunc
		why     string
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusInternalServerError) }, "status 500"},
		{"404", http.NotFound, "status 404"},
		{"HTML", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>maintenance</html>") }, "not a JWK Set"},
		{"empty set", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"keys":[]}`) }, "no keys"},
		{"only a symmetric key", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, jwksOf(map[string]any{"kty": "oct", "kid": "e", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}))
		}, "no usable key"},
		{"connection dropped", func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}, "EOF"},
		{"redirect to plain http", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://idp.example/jwks.json", http.StatusFound)
		}, "http only on a loopback host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			srv := newJWKSServer(t, good)
			v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), Logger: logs.logger()})
			verifyOK(t, v, tok)

			srv.setHandler(tc.handler)
			err := v.Refresh(context.Background())
			if !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Refresh: %v, want ErrKeysUnavailable and %q", err, tc.why)
			}
			verifyOK(t, v, tok)
			if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "jwks fetch failed") || !strings.Contains(out, "cached_keys=1") {
				t.Errorf("log lacks the warning:\n%s", out)
			}

			// An unknown kid still fails cleanly, and the error says why.
			other := signJWT(t, "ES256", "new", k.ecdsa, issClaims(issA, nil))
			err = verifyInvalid(t, v, other, "unknown kid; fetch failed")
			if !errors.Is(err, auth.ErrKeysUnavailable) {
				t.Errorf("err = %v, want ErrKeysUnavailable too", err)
			}
		})
	}
}

// The endpoint gone for good: cached keys keep working.
func TestJWKSEndpointGone(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwkOf(t, k.ed25519.Public(), "d", ""))
	v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv)})
	tok := signJWT(t, "EdDSA", "d", k.ed25519, issClaims(issA, nil))
	verifyOK(t, v, tok)
	srv.Close()
	if err := v.Refresh(context.Background()); !errors.Is(err, auth.ErrKeysUnavailable) {
		t.Fatalf("Refresh: %v, want ErrKeysUnavailable", err)
	}
	verifyOK(t, v, tok)
}

// An endpoint down at start does not fail NewJWKSVerifier; tokens are
// rejected until the keys load, and Verify retries at most once per
// MinRefetchInterval.
func TestJWKSDownAtStart(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256"))
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	clock := newClock()
	v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), Now: clock.Now})
	tok := signJWT(t, "ES256", "e", k.ecdsa, issClaims(issA, nil))

	err := verifyInvalid(t, v, tok, "no keys loaded for the issuer; fetch failed")
	if !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("err = %v, want ErrKeysUnavailable with the status", err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("%d requests, want 2 (start, Verify)", n)
	}

	srv.setKeys(jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256"))
	err = verifyInvalid(t, v, tok, "no keys loaded for the issuer")
	if !errors.Is(err, auth.ErrKeysUnavailable) {
		t.Errorf("err = %v, want ErrKeysUnavailable", err)
	}
	if n := srv.count(); n != 2 {
		t.Errorf("%d requests, want still 2 within MinRefetchInterval", n)
	}

	clock.Add(time.Minute) // the default MinRefetchInterval
	verifyOK(t, v, tok)
	if n := srv.count(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

// NewJWKSVerifier waits for the first fetches only until its ctx ends.
func TestJWKSStartCanceled(t *testing.T) {
	release := make(chan struct{})
	srv := newJWKSServer(t)
	srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before srv.Close

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := auth.NewJWKSVerifier(ctx, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), Now: fixedNow})
	if err != nil {
		t.Fatalf("NewJWKSVerifier: %v", err)
	}
	v.Close() // cancels the fetch still waiting for the server
}

// A slow endpoint: each fetch is bounded by FetchTimeout, and Verify
// waits for a fetch only as long as its ctx allows.
func TestJWKSSlowEndpoint(t *testing.T) {
	k := keys()
	tok := signJWT(t, "ES256", "e", k.ecdsa, issClaims(issA, nil))
	hang := func(release chan struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}

	t.Run("FetchTimeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := newJWKSServer(t)
		srv.setHandler(hang(release))
		t.Cleanup(func() { close(release) })
		v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), FetchTimeout: 20 * time.Millisecond})
		err := v.Refresh(context.Background())
		if !errors.Is(err, auth.ErrKeysUnavailable) || !isTimeout(err) {
			t.Fatalf("Refresh: %v, want ErrKeysUnavailable and a timeout", err)
		}
		err = verifyInvalid(t, v, tok, "no keys loaded")
		if !isTimeout(err) {
			t.Errorf("err = %v, want a timeout", err)
		}
	})

	t.Run("Verify ctx", func(t *testing.T) {
		release := make(chan struct{})
		srv := newJWKSServer(t)
		srv.setHandler(hang(release))
		t.Cleanup(func() { close(release) })
		start, cancel := context.WithCancel(context.Background())
		cancel() // do not wait for the first fetch, which hangs
		v, err := auth.NewJWKSVerifier(start, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), Now: fixedNow, FetchTimeout: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		_, err = v.Verify(ctx, tok)
		checkErr(t, err, auth.ErrTokenInvalid, tok)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "gave up waiting") {
			t.Errorf("err = %v, want DeadlineExceeded", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := v.Refresh(ctx); !errors.Is(err, auth.ErrKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Refresh: %v, want ErrKeysUnavailable and DeadlineExceeded", err)
		}
		if n := srv.count(); n > 1 {
			t.Errorf("%d requests, want at most 1: Verify and Refresh share the fetch in flight", n)
		}
	})
}

// isTimeout reports whether err is a fetch that ran out of time: while
// waiting for the response (context.DeadlineExceeded) or, on a loaded
// machine, while dialing (a net.Error timeout).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// A body larger than MaxResponseBytes fails the fetch, and is not read
// beyond that.
func TestJWKSHugeResponse(t *testing.T) {
	k := keys()
	good := jwksOf(jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256"))
	const max = 4096
	tok := signJWT(t, "ES256", "e", k.ecdsa, issClaims(issA, nil))

	t.Run("exactly MaxResponseBytes", func(t *testing.T) {
		srv := newJWKSServer(t)
		srv.setBody(good + strings.Repeat(" ", max-len(good)))
		v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), MaxResponseBytes: max})
		verifyOK(t, v, tok)
	})

	t.Run("Content-Length", func(t *testing.T) {
		srv := newJWKSServer(t)
		srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
			body := good + strings.Repeat(" ", 1<<20)
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			_, _ = io.WriteString(w, body)
		})
		v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), MaxResponseBytes: max})
		err := v.Refresh(context.Background())
		if !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "larger than MaxResponseBytes (4096)") {
			t.Fatalf("Refresh: %v", err)
		}
		verifyInvalid(t, v, tok, "no keys loaded")
	})

	t.Run("chunked", func(t *testing.T) {
		srv := newJWKSServer(t)
		srv.setBody(good + strings.Repeat(" ", max+1-len(good))) // more than the 2 KiB net/http sends with a length
		v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), MaxResponseBytes: max})
		if err := v.Refresh(context.Background()); !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "larger than MaxResponseBytes") {
			t.Fatalf("Refresh: %v", err)
		}
	})

	t.Run("endless stream", func(t *testing.T) {
		const limit = 256 << 20 // what the server would send at most
		written := make(chan int64, 2)
		srv := newJWKSServer(t)
		srv.setHandler(func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(`{"keys":[` + strings.Repeat(" ", 32<<10))
			var n int64
			for n < limit {
				m, err := w.Write(chunk)
				n += int64(m)
				if err != nil {
					break
				}
			}
			select {
			case written <- n:
			default: // a fetch the test does not wait for
			}
		})
		// The server stops writing once the client drops the connection.
		handlerDone := func() int64 {
			select {
			case n := <-written:
				return n
			case <-time.After(time.Minute): // a hang guard, not a timing check
				t.Fatal("the server is still writing")
				return 0
			}
		}
		v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), MaxResponseBytes: max})
		if n := handlerDone(); n >= limit {
			t.Fatalf("the first fetch read all %d bytes", n)
		}
		err := v.Refresh(context.Background())
		if !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "larger than MaxResponseBytes") {
			t.Fatalf("Refresh: %v", err)
		}
		if n := handlerDone(); n >= limit {
			t.Fatalf("the fetch read all %d bytes", n)
		}
	})
}

// A kid served by issuer B never verifies a token of issuer A, even when
// both serve the same kid.
func TestJWKSCrossIssuer(t *testing.T) {
	a, aShared := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	b, bShared := newECKey(t, elliptic.P256()), newECKey(t, elliptic.P256())
	srvA := newJWKSServer(t, jwkOf(t, &a.PublicKey, "a1", "ES256"), jwkOf(t, &aShared.PublicKey, "shared", "ES256"))
	srvB := newJWKSServer(t, jwkOf(t, &b.PublicKey, "b1", "ES256"), jwkOf(t, &bShared.PublicKey, "shared", "ES256"))
	v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: []auth.JWKSIssuer{
		{Issuer: issA, URL: srvA.URL},
		{Issuer: issB, URL: srvB.URL},
	}})

	verifyOK(t, v, signJWT(t, "ES256", "a1", a, issClaims(issA, nil)))
	verifyOK(t, v, signJWT(t, "ES256", "b1", b, issClaims(issB, nil)))
	verifyOK(t, v, signJWT(t, "ES256", "shared", aShared, issClaims(issA, nil)))
	verifyOK(t, v, signJWT(t, "ES256", "shared", bShared, issClaims(issB, nil)))

	verifyInvalid(t, v, signJWT(t, "ES256", "b1", b, issClaims(issA, nil)), "unknown kid")
	verifyInvalid(t, v, signJWT(t, "ES256", "shared", bShared, issClaims(issA, nil)), "signature mismatch")
	verifyInvalid(t, v, signJWT(t, "ES256", "a1", a, issClaims(issB, nil)), "unknown kid")
	verifyInvalid(t, v, signJWT(t, "ES256", "b1", b, issClaims("https://c.example/", nil)), "unknown issuer")
	// An iss claim given twice: the last one counts, for selection and check alike.
	verifyInvalid(t, v, rawToken(`{"alg":"ES256","kid":"b1"}`, `{"iss":"`+issB+`","iss":"`+issA+`","sub":"u1","exp":9999999999}`, []byte("sig")), "unknown kid")

	// Issuer A's unknown kid fetched A's set again, never B's.
	if a, b := srvA.count(), srvB.count(); a != 2 || b != 2 {
		t.Errorf("requests: A %d, B %d; want 2 each (start, then one unknown kid each)", a, b)
	}
}

// Every key verifies only its own algorithm.
func TestJWKSAlgConfusion(t *testing.T) {
	k := keys()
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t,
		jwkOf(t, &k.rsa.PublicKey, "rsa", "RS256"),
		jwkOf(t, &k.rsa.PublicKey, "rsa-noalg", ""),
		jwkOf(t, &k.ecdsa.PublicKey, "ec", "ES256"),
		map[string]any{"kty": "oct", "kid": "sym", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},
		func() map[string]any { m := jwkOf(t, &k.rsa.PublicKey, "rsa-hs", ""); m["alg"] = "HS256"; return m }(),
	)
	v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv)})
	c := issClaims(issA, nil)
	verifyOK(t, v, signJWT(t, "RS256", "rsa", k.rsa, c))
	verifyOK(t, v, signJWT(t, "RS256", "rsa-noalg", k.rsa, c))

	tests := []struct {
		name, tok, why string
	}{
		{"HS256 with the PEM public key", signJWT(t, "HS256", "rsa", pemPKIX(t, &k.rsa.PublicKey), c), "alg not allowed"},
		{"HS256 with the DER public key", signJWT(t, "HS256", "rsa", der, c), "alg not allowed"},
		{"HS256 with the oct key", signJWT(t, "HS256", "sym", []byte("secret-secret-secret-secret"), c), "alg not allowed"},
		{"alg none", rawToken(`{"alg":"none","kid":"rsa"}`, jsonOf(c), nil), "alg not allowed"},
		{"alg None", rawToken(`{"alg":"None","kid":"rsa"}`, jsonOf(c), nil), "alg not allowed"},
		{"PS256 for an RS256 key", signJWT(t, "PS256", "rsa", k.rsa, c), "alg does not match the key selected by kid"},
		{"RS384 for an RS256 key", signJWT(t, "RS384", "rsa", k.rsa, c), "alg does not match the key selected by kid"},
		{"PS256 for an RSA key without alg", signJWT(t, "PS256", "rsa-noalg", k.rsa, c), "alg does not match the key selected by kid"},
		{"ES256 for an RSA key", signJWT(t, "ES256", "rsa", k.ecdsa, c), "alg does not match the key selected by kid"},
		{"RS256 for an EC key", signJWT(t, "RS256", "ec", k.rsa, c), "alg does not match the key selected by kid"},
		{"RSA key published as HS256", signJWT(t, "RS256", "rsa-hs", k.rsa, c), "unknown kid"},
		{"oct key used as RS256", signJWT(t, "RS256", "sym", k.rsa, c), "unknown kid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			verifyInvalid(t, v, tc.tok, tc.why)
		})
	}

	// Algorithms narrows what keys may verify.
	es := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), Algorithms: []string{"ES256"}})
	verifyInvalid(t, es, signJWT(t, "RS256", "rsa", k.rsa, c), "alg not allowed")
	p, err := es.Verify(context.Background(), signJWT(t, "ES256", "ec", k.ecdsa, c))
	if err != nil || p.UserID != "u1" {
		t.Errorf("ES256: %v", err)
	}
}

// Tokens with unknown kids fetch the set again at most once per
// MinRefetchInterval, however many arrive.
func TestJWKSRefetchRateBound(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256"))
	clock := newClock()
	v := newJWKSVerifier(t, auth.JWKSConfig{
		Issuers:            oneIssuer(issA, srv),
		MinRefetchInterval: 10 * time.Minute,
		Now:                clock.Now,
	})
	c := issClaims(issA, nil)
	unknown := func(i int) string {
		return signJWT(t, "ES256", fmt.Sprintf("random-%d-%d", i, clock.Now().Unix()), k.ecdsa, c)
	}
	burst := func(n int) {
		t.Helper()
		toks := make([]string, n)
		for i := range toks {
			toks[i] = unknown(i)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, tok := range toks {
			wg.Go(func() {
				_, errs[i] = v.Verify(context.Background(), tok)
			})
		}
		wg.Wait()
		for i, err := range errs {
			checkErr(t, err, auth.ErrTokenInvalid, toks[i])
		}
	}

	if n := srv.count(); n != 1 {
		t.Fatalf("%d requests at start, want 1", n)
	}
	burst(50)
	if n := srv.count(); n != 2 {
		t.Errorf("%d requests after 50 unknown kids, want 2", n)
	}
	clock.Add(9 * time.Minute)
	burst(10)
	if n := srv.count(); n != 2 {
		t.Errorf("%d requests within MinRefetchInterval, want 2", n)
	}
	clock.Add(time.Minute)
	burst(50)
	if n := srv.count(); n != 3 {
		t.Errorf("%d requests after MinRefetchInterval, want 3", n)
	}

	// Tokens that are rejected before the key lookup fetch nothing.
	verifyInvalid(t, v, signJWT(t, "ES256", "x", k.ecdsa, issClaims("https://c.example/", nil)), "unknown issuer")
	verifyInvalid(t, v, signJWT(t, "HS256", "x", hmacSecret, c), "alg not allowed")
	verifyOK(t, v, signJWT(t, "ES256", "e", k.ecdsa, c))
	verifyOK(t, v, signJWT(t, "ES256", "", k.ecdsa, c))
	if n := srv.count(); n != 3 {
		t.Errorf("%d requests, want still 3", n)
	}
}

// A token without a kid is accepted only if its issuer has one key.
func TestJWKSNoKID(t *testing.T) {
	k := keys()
	other := newECKey(t, elliptic.P256())
	c := issClaims(issA, nil)
	tok := signJWT(t, "ES256", "", k.ecdsa, c)

	srv := newJWKSServer(t, jwkOf(t, &k.ecdsa.PublicKey, "e", ""))
	v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv)})
	verifyOK(t, v, tok)
	verifyInvalid(t, v, signJWT(t, "RS256", "", k.rsa, c), "alg does not match the issuer's key")

	srv2 := newJWKSServer(t, jwkOf(t, &k.ecdsa.PublicKey, "e", ""), jwkOf(t, &other.PublicKey, "o", ""))
	v2 := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv2)})
	verifyInvalid(t, v2, tok, "missing kid")
	if n := srv2.count(); n != 1 {
		t.Errorf("%d requests, want 1: a missing kid fetches nothing", n)
	}
}

// Symmetric keys in a JWK Set are ignored (and logged at Debug).
func TestJWKSOctKeysIgnored(t *testing.T) {
	k := keys()
	var logs logBuffer
	secret := []byte("0123456789abcdef0123456789abcdef")
	srv := newJWKSServer(t,
		map[string]any{"kty": "oct", "kid": "sym", "alg": "HS256", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},
		jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256"),
	)
	v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv), Logger: logs.logger()})
	verifyInvalid(t, v, signJWT(t, "HS256", "sym", secret, issClaims(issA, nil)), "alg not allowed")
	verifyOK(t, v, signJWT(t, "ES256", "e", k.ecdsa, issClaims(issA, nil)))
	if out := logs.String(); !strings.Contains(out, "symmetric (oct) key ignored") || !strings.Contains(out, "level=DEBUG") {
		t.Errorf("log lacks the ignored key:\n%s", out)
	}
}

// A malformed JWK Set loads nothing.
func TestJWKSMalformed(t *testing.T) {
	k := keys()
	tok := signJWT(t, "ES256", "e", k.ecdsa, issClaims(issA, nil))
	for _, body := range []string{
		``,
		`not json`,
		`[]`,
		`{}`,
		`{"keys":null}`,
		`{"keys":{}}`,
		`{"keys":[]}`,
		`{"keys":[1,"x",null,{}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AAAA","y":"AAAA"}]}`,
		`{"keys":[{"kty":"RSA","kid":"e","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[` + strings.Repeat(`{"kty":"EC"},`, 100) + `{"kty":"EC"}]}`,
	} {
		t.Run(body, func(t *testing.T) {
			srv := newJWKSServer(t)
			srv.setBody(body)
			v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: oneIssuer(issA, srv)})
			if err := v.Refresh(context.Background()); !errors.Is(err, auth.ErrKeysUnavailable) {
				t.Fatalf("Refresh: %v, want ErrKeysUnavailable", err)
			}
			err := verifyInvalid(t, v, tok, "no keys loaded")
			if !errors.Is(err, auth.ErrKeysUnavailable) {
				t.Errorf("err = %v, want ErrKeysUnavailable", err)
			}
		})
	}
}

// Discovery reads jwks_uri from the issuer's OpenID configuration.
func TestJWKSDiscovery(t *testing.T) {
	k := keys()
	var srv *httptest.Server
	var docIssuer, jwksURI atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/idp/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, jsonOf(map[string]any{"issuer": docIssuer.Load(), "jwks_uri": jwksURI.Load()}))
	})
	mux.HandleFunc("/idp/keys", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, jwksOf(jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256")))
	})
	srv = httptest.NewServer(mux)
	defer srv.Close()

	for _, iss := range []string{srv.URL + "/idp", srv.URL + "/idp/"} {
		t.Run(iss, func(t *testing.T) {
			docIssuer.Store(iss)
			jwksURI.Store(srv.URL + "/idp/keys")
			v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: []auth.JWKSIssuer{{Issuer: iss, Discovery: true}}})
			verifyOK(t, v, signJWT(t, "ES256", "e", k.ecdsa, issClaims(iss, nil)))
		})
	}

	iss := srv.URL + "/idp"
	tests := []struct {
		name, docIssuer, jwksURI, why string
	}{
		{"another issuer", "https://evil.example/idp", srv.URL + "/idp/keys", `the document is for issuer "https://evil.example/idp"`},
		{"plain http jwks_uri", iss, "http://idp.example/keys", "http only on a loopback host"},
		{"no jwks_uri", iss, "", "is not an absolute URL"},
		{"jwks_uri not found", iss, srv.URL + "/idp/nothing", "status 404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docIssuer.Store(tc.docIssuer)
			jwksURI.Store(tc.jwksURI)
			v := newJWKSVerifier(t, auth.JWKSConfig{Issuers: []auth.JWKSIssuer{{Issuer: iss, Discovery: true}}})
			if err := v.Refresh(context.Background()); !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Refresh: %v, want %q", err, tc.why)
			}
		})
	}
}

func TestJWKSConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  auth.JWKSConfig
		want []string // one substring per error
	}{
		{"no issuers", auth.JWKSConfig{}, []string{"no issuers"}},
		{"issuer problems", auth.JWKSConfig{Issuers: []auth.JWKSIssuer{
			{URL: "https://a.example/jwks"},
			{Issuer: issA, URL: "https://a.example/jwks"},
			{Issuer: issA, URL: "https://a.example/jwks"},
			{Issuer: issB},
			{Issuer: "https://c.example/", URL: "https://c.example/jwks", Discovery: true},
			{Issuer: "https://d.example/", URL: "http://d.example/jwks"},
			{Issuer: "https://e.example/", URL: "ftp://e.example/jwks"},
			{Issuer: "https://f.example/", URL: "/jwks"},
			{Issuer: "f", Discovery: true},
			{Issuer: "http://g.example", Discovery: true},
		}}, []string{
			"issuers[0]: issuer is required",
			`issuers[2] ("https://a.example/"): duplicate issuer`,
			`issuers[3] ("https://b.example/"): URL or Discovery is required`,
			`issuers[4] ("https://c.example/"): set URL or Discovery, not both`,
			`issuers[5] ("https://d.example/"): URL: "http://d.example/jwks": http only on a loopback host, or with AllowHTTP`,
			`issuers[6] ("https://e.example/"): URL: "ftp://e.example/jwks": scheme is not https`,
			`issuers[7] ("https://f.example/"): URL: "/jwks" is not an absolute URL`,
			`issuers[8] ("f"): Discovery needs an issuer URL`,
			`issuers[9] ("http://g.example"): Discovery needs an issuer URL`,
		}},
		{"numbers", auth.JWKSConfig{
			Issuers:            []auth.JWKSIssuer{{Issuer: issA, URL: "https://a.example/jwks"}},
			Leeway:             -1,
			RefreshInterval:    -1,
			MinRefetchInterval: -1,
			FetchTimeout:       -1,
			MaxResponseBytes:   -1,
		}, []string{"negative leeway", "negative refresh interval", "negative min refetch interval", "negative fetch timeout", "negative max response bytes"}},
		{"algorithms", auth.JWKSConfig{
			Issuers:    []auth.JWKSIssuer{{Issuer: issA, URL: "https://a.example/jwks"}},
			Algorithms: []string{"HS256", "none", "RS256", "ES256K"},
		}, []string{`"HS256": symmetric algorithms cannot be used with a JWK Set`, `unsupported algorithm "none"`, `unsupported algorithm "ES256K"`}},
		{"empty algorithms", auth.JWKSConfig{
			Issuers:    []auth.JWKSIssuer{{Issuer: issA, URL: "https://a.example/jwks"}},
			Algorithms: []string{},
		}, []string{"empty algorithms"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := auth.NewJWKSVerifier(context.Background(), tc.cfg)
			if v != nil || !errors.Is(err, auth.ErrInvalidConfig) {
				t.Fatalf("NewJWKSVerifier = %v, %v; want ErrInvalidConfig", v, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for i, want := range tc.want {
				if !strings.HasPrefix(lines[i], "auth: invalid config: ") || !strings.Contains(lines[i], want) {
					t.Errorf("error %d = %q, want %q", i, lines[i], want)
				}
			}
		})
	}

	// http on other hosts with AllowHTTP; nothing is fetched with a done ctx
	// before Close.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := auth.NewJWKSVerifier(ctx, auth.JWKSConfig{
		Issuers:   []auth.JWKSIssuer{{Issuer: issA, URL: "http://192.0.2.1/jwks"}}, // TEST-NET-1
		AllowHTTP: true,
	})
	if err != nil {
		t.Fatalf("AllowHTTP: %v", err)
	}
	v.Close()
}

// Close stops every goroutine, is idempotent, and leaves Verify working
// with the keys it has.
func TestJWKSClose(t *testing.T) {
	before := goleak.IgnoreCurrent()
	k := keys()
	srv := newJWKSServer(t, jwkOf(t, &k.ecdsa.PublicKey, "e", "ES256"))
	v, err := auth.NewJWKSVerifier(context.Background(), auth.JWKSConfig{
		Issuers:         oneIssuer(issA, srv),
		RefreshInterval: time.Millisecond,
		Now:             fixedNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := signJWT(t, "ES256", "e", k.ecdsa, issClaims(issA, nil))
	verifyOK(t, v, tok)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(v.Close)
	}
	wg.Wait()
	v.Close()

	n := srv.count()
	verifyOK(t, v, tok)
	verifyInvalid(t, v, signJWT(t, "ES256", "new", k.ecdsa, issClaims(issA, nil)), "unknown kid")
	if err := v.Refresh(context.Background()); !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Refresh after Close: %v", err)
	}
	if m := srv.count(); m != n {
		t.Errorf("%d requests after Close", m-n)
	}
	srv.Close()
	goleak.VerifyNone(t, before)
}
