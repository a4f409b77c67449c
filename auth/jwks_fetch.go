package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Why this file fetches JWK Sets itself instead of using
// github.com/MicahParks/keyfunc/v3 (v3.9.2) or the HTTP storage of
// github.com/MicahParks/jwkset (v0.11.4), which keyfunc is built on.
// jwkset is used for what it does well: decoding and checking each JWK
// (jwks_keys.go).
//
//   - keyfunc, through jwkset.NewHTTPClient, merges the keys of all URLs
//     into one store looked up by kid alone, so issuer B's key could verify
//     a token claiming issuer A. A keyfunc per issuer would avoid that, but
//     not the points below.
//   - jwkset's HTTP storage decodes the response with no size limit.
//   - Its refresh goroutine ends with a context but cannot be waited for,
//     so Close could not promise that no goroutine is left.
//   - Its unknown-kid path makes each caller wait on a shared rate.Limiter
//     (up to a minute by default) and then refetch every URL; here
//     concurrent callers share one fetch per issuer, and a caller over the
//     rate fails at once instead of queueing.
//   - Its fetch errors go to slog.Default at Error, and it has no OpenID
//     Connect discovery; here they go to JWKSConfig.Logger at Warn.

// jwksIssuer is the state of one configured issuer.
type jwksIssuer struct {
	iss   string
	rules claimRules
	keys  atomic.Pointer[jwksKeySet] // nil until a fetch succeeds

	// jwksURL is the JWK Set URL: configured, or found by discovery ("" until
	// then). Only the fetch in flight reads and writes it; fetches of one
	// issuer never overlap, and each starts after the previous one ended
	// (both under mu).
	jwksURL string

	mu           sync.Mutex
	fetch        *jwksFetch // in flight, or nil
	lastOnDemand time.Time  // start of the last fetch Verify triggered
}

// jwksFetch is one fetch of an issuer's JWK Set, shared by all who wait for
// it.
type jwksFetch struct {
	done chan struct{} // closed when the fetch has ended
	err  error         // set before done is closed
}

// jwksKeySet is the key set of an issuer, replaced as a whole by each
// successful fetch.
type jwksKeySet struct {
	keys []jwksKey
}

// Reasons for which candidates finds no key. The first two make Verify
// fetch the key set again.
const (
	reasonNoKeys     = "no keys loaded for the issuer"
	reasonUnknownKID = "unknown kid"
	reasonMissingKID = "missing kid (the issuer has several keys)"
	reasonKIDAlg     = "alg does not match the key selected by kid"
)

// candidates returns the keys to try for a token with this alg and kid, or
// the reason there are none. s may be nil (no keys yet).
func (s *jwksKeySet) candidates(alg, kid string) ([]jwksKey, string) {
	if s == nil || len(s.keys) == 0 {
		return nil, reasonNoKeys
	}
	if kid == "" {
		if len(s.keys) != 1 {
			return nil, reasonMissingKID
		}
		if s.keys[0].alg != alg {
			return nil, "alg does not match the issuer's key"
		}
		return s.keys, ""
	}
	var keys []jwksKey
	found := false
	for _, k := range s.keys {
		if k.kid == kid {
			found = true
			if k.alg == alg {
				keys = append(keys, k)
			}
		}
	}
	switch {
	case !found:
		return nil, reasonUnknownKID
	case len(keys) == 0:
		return nil, reasonKIDAlg
	default:
		return keys, ""
	}
}

// start returns the fetch of is in flight, or starts one. A fetch on
// demand (Verify's) starts only if no other did in the last
// MinRefetchInterval; start returns nil if it may not, and after Close.
func (v *JWKSVerifier) start(is *jwksIssuer, onDemand bool) *jwksFetch {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.fetch != nil {
		return is.fetch
	}
	now := v.now()
	if onDemand && !is.lastOnDemand.IsZero() && now.Sub(is.lastOnDemand) < v.minRefetch {
		return nil
	}
	f := &jwksFetch{done: make(chan struct{})}
	started := v.goroutine(func(ctx context.Context) {
		err := v.fetch(ctx, is)
		is.mu.Lock()
		is.fetch = nil
		is.mu.Unlock()
		f.err = err
		close(f.done)
	})
	if !started {
		return nil
	}
	is.fetch = f
	if onDemand {
		is.lastOnDemand = now
	}
	return f
}

// fetch fetches the key set of is and installs it. On failure it keeps the
// cached keys, logs a warning and returns an error wrapping
// ErrKeysUnavailable.
func (v *JWKSVerifier) fetch(ctx context.Context, is *jwksIssuer) error {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	keys, skipped, err := v.load(ctx, is)
	u := is.jwksURL
	if u == "" { // discovery failed
		u = discoveryURL(is.iss)
	}
	for _, s := range skipped {
		v.log.Debug("jwks key ignored", "issuer", is.iss, "url", u, "reason", s)
	}
	if err != nil {
		err = fmt.Errorf("%w: issuer %q: %w", ErrKeysUnavailable, is.iss, err)
		cached := 0
		if s := is.keys.Load(); s != nil {
			cached = len(s.keys)
		}
		v.log.Warn("jwks fetch failed: keeping the cached keys", "issuer", is.iss, "url", u, "cached_keys", cached, "err", err)
		return err
	}
	for i := range keys {
		keys[i].opts = is.rules.parserOptions(keys[i].alg, v.leeway, v.now)
	}
	is.keys.Store(&jwksKeySet{keys: keys})
	v.log.Debug("jwks fetched", "issuer", is.iss, "url", u, "keys", len(keys), "ignored", len(skipped))
	return nil
}

// load fetches and parses the key set of is, after the discovery document
// if the JWK Set URL is not known yet.
func (v *JWKSVerifier) load(ctx context.Context, is *jwksIssuer) ([]jwksKey, []string, error) {
	if is.jwksURL == "" {
		u, err := v.discover(ctx, is.iss)
		if err != nil {
			return nil, nil, fmt.Errorf("discovery: %w", err)
		}
		is.jwksURL = u
	}
	body, err := v.get(ctx, is.jwksURL)
	if err != nil {
		return nil, nil, err
	}
	return parseJWKS(body, v.algs)
}

// discover reads the jwks_uri of iss's OpenID Connect discovery document.
func (v *JWKSVerifier) discover(ctx context.Context, iss string) (string, error) {
	body, err := v.get(ctx, discoveryURL(iss))
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("not a discovery document: %v", err)
	}
	if doc.Issuer != iss {
		return "", fmt.Errorf("the document is for issuer %q", doc.Issuer)
	}
	if err := checkFetchURL(doc.JWKSURI, v.allowHTTP); err != nil {
		return "", fmt.Errorf("jwks_uri: %w", err)
	}
	return doc.JWKSURI, nil
}

// discoveryURL is the URL of iss's OpenID Connect discovery document.
func discoveryURL(iss string) string {
	return strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
}

// get returns the body of a 200 response to a GET of u, at most
// MaxResponseBytes.
func (v *JWKSVerifier) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close() // unread bytes are dropped with the connection
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %s", u, resp.Status)
	}
	tooLarge := fmt.Errorf("GET %s: response larger than MaxResponseBytes (%d)", u, v.maxBytes)
	if resp.ContentLength > v.maxBytes {
		return nil, tooLarge
	}
	limit := v.maxBytes
	if limit < math.MaxInt64 {
		limit++ // one byte more tells a body of exactly maxBytes from a larger one
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", u, err)
	}
	if int64(len(body)) > v.maxBytes {
		return nil, tooLarge
	}
	return body, nil
}

// refreshLoop fetches the key set of is every RefreshInterval (after a
// failure, every MinRefetchInterval if that is shorter) until ctx ends.
func (v *JWKSVerifier) refreshLoop(ctx context.Context, is *jwksIssuer) {
	t := time.NewTimer(v.nextRefresh(is.keys.Load() != nil))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok := false
		if f := v.start(is, false); f != nil {
			select {
			case <-ctx.Done():
				return
			case <-f.done:
				ok = f.err == nil
			}
		}
		t.Reset(v.nextRefresh(ok))
	}
}

// nextRefresh is the time to wait for the next background fetch after a
// successful (ok) or failed one.
func (v *JWKSVerifier) nextRefresh(ok bool) time.Duration {
	if ok {
		return v.refresh
	}
	return min(v.refresh, v.minRefetch)
}

// checkFetchURL checks that raw is an absolute https URL, or http if
// allowHTTP or its host is loopback.
func checkFetchURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http only on a loopback host, or with AllowHTTP", raw)
	default:
		return fmt.Errorf("%q: scheme is not https", raw)
	}
}

// isLoopback reports whether host is "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newTransport returns a transport of the verifier's own, configured as
// http.DefaultTransport is.
func newTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
