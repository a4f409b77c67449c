package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of JWKSConfig.
const (
	defaultJWKSRefreshInterval    = time.Hour
	defaultJWKSMinRefetchInterval = time.Minute
	defaultJWKSFetchTimeout       = 10 * time.Second
	defaultJWKSMaxResponseBytes   = 1 << 20
)

// JWKSIssuer is one token issuer whose verification keys are published as
// a JWK Set (RFC 7517), as OpenID Connect providers do.
type JWKSIssuer struct {
	// Issuer is the exact "iss" value of this issuer's tokens, e.g.
	// "https://login.example.com/" (a trailing slash counts). Required and
	// unique. A token is verified only with keys fetched for the issuer
	// its "iss" names.
	Issuer string

	// URL is the issuer's JWK Set URL (its jwks_uri). Set URL or
	// Discovery, not both. It must be https, unless its host is loopback
	// (localhost, 127.0.0.0/8, ::1) or JWKSConfig.AllowHTTP is set.
	URL string

	// Discovery, if true, takes the JWK Set URL from the "jwks_uri" of the
	// issuer's OpenID Connect discovery document, Issuer (without a
	// trailing slash) + "/.well-known/openid-configuration", whose
	// "issuer" must equal Issuer. The document is read by the first fetch
	// and again by each later one until it has been read once. Issuer
	// must then be a URL that URL itself could be.
	Discovery bool
}

// JWKSConfig configures a [JWKSVerifier]. The zero value of each field is
// a documented default, but at least one issuer is required.
type JWKSConfig struct {
	// Issuers are the trusted issuers; at least one. Each has its own key
	// set: a kid served by one issuer never verifies another's tokens.
	Issuers []JWKSIssuer

	// Audience, if not empty, must be in the "aud" claim (a string or an
	// array of strings). "" means aud is not checked.
	Audience string

	// Leeway is the clock skew allowed when checking "exp", "nbf" and
	// "iat". 0 means none. Negative values are a config error.
	Leeway time.Duration

	// UserClaim is the claim that holds the user ID; "" means "sub". The
	// same rules as Config.UserClaim apply.
	UserClaim string

	// Algorithms are the algorithms keys may verify: any of RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA. nil (the
	// default) means all of them. A key verifies only its own algorithm:
	// its "alg" if the JWK has one, else RS256 for RSA keys, ES256, ES384
	// or ES512 by curve for EC keys, EdDSA for Ed25519 keys. Keys whose
	// algorithm is not listed are ignored. HS256, HS384 and HS512 are a
	// config error, and symmetric ("oct") keys in a JWK Set are ignored:
	// a published key cannot be a secret.
	Algorithms []string

	// RefreshInterval is how often each issuer's JWK Set is fetched in the
	// background, so that removed keys stop verifying. 0 means 1
	// hour. After a failed fetch the next
	// one comes after MinRefetchInterval instead, if that is shorter.
	RefreshInterval time.Duration

	// MinRefetchInterval bounds the fetches that Verify triggers: a token
	// whose kid is not in its issuer's key set (the issuer may have
	// rotated keys), or any token of an issuer whose keys never loaded,
	// starts a fetch of that issuer's JWK Set at most once per
	// MinRefetchInterval, measured with Now. Concurrent Verify calls share
	// one fetch. 0 means 1 minute.
	MinRefetchInterval time.Duration

	// FetchTimeout bounds each fetch, including the discovery document
	// if any. 0 means 10 seconds.
	FetchTimeout time.Duration

	// MaxResponseBytes is the largest JWK Set or discovery document read;
	// a larger body fails the fetch. 0 means 1 MiB.
	MaxResponseBytes int64

	// HTTPClient fetches the documents. nil means a client of the
	// verifier's own, which follows redirects only to URLs that URL could
	// be and whose idle connections Close closes. A client passed in is
	// used as is and never closed.
	HTTPClient *http.Client

	// AllowHTTP allows http URLs on any host. false (the default) allows
	// http only on loopback hosts: keys fetched in the clear can be
	// replaced by anyone on the path.
	AllowHTTP bool

	// Logger receives failed fetches (Warn) and fetched key sets and
	// ignored keys (Debug). nil means no logging. Tokens are never logged.
	Logger *slog.Logger

	// Now returns the current time; nil means time.Now. It checks "exp",
	// "nbf" and "iat", and measures MinRefetchInterval. For tests.
	Now func() time.Time
}

// JWKSVerifier verifies JWTs with keys fetched from each issuer's JWK Set
// URL. Create it with [NewJWKSVerifier] and stop it with
// [JWKSVerifier.Close]. It is safe for concurrent use by multiple
// goroutines.
//
// It runs one goroutine per issuer that refreshes the issuer's keys every
// RefreshInterval, and one goroutine per fetch in flight (at most one per
// issuer); Close ends them all.
type JWKSVerifier struct {
	issuers    map[string]*jwksIssuer
	order      []*jwksIssuer // as configured
	algs       map[string]bool
	leeway     time.Duration
	now        func() time.Time
	refresh    time.Duration
	minRefetch time.Duration
	timeout    time.Duration
	maxBytes   int64
	allowHTTP  bool
	client     *http.Client
	transport  *http.Transport // the own client's; nil for a client passed in
	log        *slog.Logger

	ctx       context.Context // ends with Close; the context of every fetch
	cancel    context.CancelFunc
	mu        sync.Mutex // guards closed and wg.Add
	closed    bool
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewJWKSVerifier validates cfg, fetches every issuer's JWK Set once, and
// starts the background refresh. It reports every config problem at once,
// joined with [errors.Join]; each wraps [ErrInvalidConfig].
//
// The first fetches run concurrently and NewJWKSVerifier waits for them
// until ctx ends (each is bounded by FetchTimeout). A failed or unfinished
// first fetch does not fail NewJWKSVerifier, so that a service starts
// while its identity provider is briefly down: the failure is logged, the
// issuer's tokens are rejected (the error wraps [ErrKeysUnavailable]) until
// its keys load, and Verify on such a token fetches again, at most once
// per MinRefetchInterval. Call [JWKSVerifier.Refresh] after
// NewJWKSVerifier to require keys at start-up. ctx is used only for the
// first fetches; the verifier lives until Close.
func NewJWKSVerifier(ctx context.Context, cfg JWKSConfig) (*JWKSVerifier, error) {
	v, err := newJWKSVerifier(cfg)
	if err != nil {
		return nil, err
	}
	_ = v.Refresh(ctx) // failures are logged; see above
	for _, is := range v.order {
		v.goroutine(func(ctx context.Context) { v.refreshLoop(ctx, is) })
	}
	return v, nil
}

// newJWKSVerifier validates cfg and returns a verifier that has started
// nothing.
func newJWKSVerifier(cfg JWKSConfig) (*JWKSVerifier, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}

	if len(cfg.Issuers) == 0 {
		fail("no issuers")
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"leeway", cfg.Leeway},
		{"refresh interval", cfg.RefreshInterval},
		{"min refetch interval", cfg.MinRefetchInterval},
		{"fetch timeout", cfg.FetchTimeout},
	} {
		if d.value < 0 {
			fail("negative %s %v", d.name, d.value)
		}
	}
	if cfg.MaxResponseBytes < 0 {
		fail("negative max response bytes %d", cfg.MaxResponseBytes)
	}

	algs := make(map[string]bool)
	if cfg.Algorithms == nil {
		cfg.Algorithms = jwksAlgorithms()
	}
	if len(cfg.Algorithms) == 0 {
		fail("empty algorithms (nil means all)")
	}
	for _, alg := range cfg.Algorithms {
		switch _, _, ok := jwksKeyType(alg); {
		case ok:
			algs[alg] = true
		case kindOf(alg) == kindHMAC:
			fail("algorithm %q: symmetric algorithms cannot be used with a JWK Set", alg)
		default:
			fail("unsupported algorithm %q (want %s)", alg, strings.Join(jwksAlgorithms(), ", "))
		}
	}

	userClaim := cfg.UserClaim
	if userClaim == "" {
		userClaim = "sub"
	}
	v := &JWKSVerifier{
		issuers:    make(map[string]*jwksIssuer),
		algs:       algs,
		leeway:     cfg.Leeway,
		now:        cfg.Now,
		refresh:    orDefault(cfg.RefreshInterval, defaultJWKSRefreshInterval),
		minRefetch: orDefault(cfg.MinRefetchInterval, defaultJWKSMinRefetchInterval),
		timeout:    orDefault(cfg.FetchTimeout, defaultJWKSFetchTimeout),
		maxBytes:   orDefault(cfg.MaxResponseBytes, defaultJWKSMaxResponseBytes),
		allowHTTP:  cfg.AllowHTTP,
		client:     cfg.HTTPClient,
		log:        cfg.Logger,
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}

	for i, c := range cfg.Issuers {
		name := fmt.Sprintf("issuers[%d]", i)
		if c.Issuer == "" {
			fail("%s: issuer is required", name)
			continue
		}
		name = fmt.Sprintf("issuers[%d] (%q)", i, c.Issuer)
		if v.issuers[c.Issuer] != nil {
			fail("%s: duplicate issuer", name)
			continue
		}
		switch {
		case c.URL != "" && c.Discovery:
			fail("%s: set URL or Discovery, not both", name)
		case c.URL != "":
			if err := checkFetchURL(c.URL, cfg.AllowHTTP); err != nil {
				fail("%s: URL: %v", name, err)
			}
		case c.Discovery:
			if err := checkFetchURL(c.Issuer, cfg.AllowHTTP); err != nil {
				fail("%s: Discovery needs an issuer URL: %v", name, err)
			}
		default:
			fail("%s: URL or Discovery is required", name)
		}
		is := &jwksIssuer{
			iss:     c.Issuer,
			jwksURL: c.URL,
			rules:   claimRules{issuer: c.Issuer, audience: cfg.Audience, userClaim: userClaim},
		}
		v.issuers[c.Issuer] = is
		v.order = append(v.order, is)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	if v.client == nil {
		v.transport = newTransport()
		v.client = &http.Client{
			Transport: v.transport,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("more than 5 redirects")
				}
				return checkFetchURL(req.URL.String(), v.allowHTTP)
			},
		}
	}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	return v, nil
}

// orDefault returns v, or def if v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Verify checks token with the keys of the issuer its "iss" claim names,
// and returns what it says.
//
// The errors are those of [Verifier.Verify], plus ErrTokenInvalid for a
// token whose "iss" is missing or not a configured issuer, whose "alg" is
// not in Algorithms (including "none" and the HS* algorithms), whose "kid"
// is not in the issuer's key set, or whose "alg" is not the algorithm of
// the key its kid selects. A token without a kid is accepted only if its
// issuer's key set holds exactly one key.
//
// A token with an unknown kid, and any token of an issuer whose keys never
// loaded, make Verify fetch that issuer's JWK Set (at most once per
// MinRefetchInterval, sharing a fetch in flight) and wait for it until ctx
// ends; the wait is also bounded by FetchTimeout. The error then wraps
// [ErrKeysUnavailable] if the fetch failed, or ctx's error if ctx ended
// first. Otherwise Verify does no I/O and does not block. After Close,
// Verify still verifies with the keys it has, and fetches nothing.
func (v *JWKSVerifier) Verify(ctx context.Context, token string) (Principal, error) {
	alg, kid, err := readHeader(token)
	if err != nil {
		return Principal{}, err
	}
	if !v.algs[alg] {
		return Principal{}, invalid("alg not allowed")
	}
	iss, err := unverifiedIssuer(token)
	if err != nil {
		return Principal{}, err
	}
	is := v.issuers[iss]
	if is == nil {
		return Principal{}, invalid("unknown issuer")
	}
	keys, err := v.keys(ctx, is, alg, kid)
	if err != nil {
		return Principal{}, err
	}
	return verifyWith(token, keys, func(k jwksKey) (any, []jwt.ParserOption) { return k.key, k.opts }, is.rules)
}

// keys returns the keys of is to try for a token with this alg and kid,
// fetching the issuer's key set again if the kid is unknown or no keys
// were ever loaded.
func (v *JWKSVerifier) keys(ctx context.Context, is *jwksIssuer, alg, kid string) ([]jwksKey, error) {
	keys, reason := is.keys.Load().candidates(alg, kid)
	if reason != reasonUnknownKID && reason != reasonNoKeys {
		if reason != "" {
			return nil, invalid(reason)
		}
		return keys, nil
	}
	f := v.start(is, true)
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s; gave up waiting for the keys: %w", ErrTokenInvalid, reason, ctx.Err())
		}
	}
	keys, reason = is.keys.Load().candidates(alg, kid)
	switch {
	case reason == "":
		return keys, nil
	case (reason == reasonUnknownKID || reason == reasonNoKeys) && f != nil && f.err != nil:
		return nil, fmt.Errorf("%w: %s; fetch failed: %w", ErrTokenInvalid, reason, f.err)
	case reason == reasonNoKeys:
		return nil, fmt.Errorf("%w: %s (%w)", ErrTokenInvalid, reason, ErrKeysUnavailable)
	default:
		return nil, invalid(reason)
	}
}

// Refresh fetches every issuer's JWK Set now, whatever MinRefetchInterval
// says (an issuer whose fetch is in flight is not fetched again: Refresh
// waits for that one), and waits until the fetches end or ctx ends. It
// returns their errors joined; each wraps [ErrKeysUnavailable]. An issuer
// whose fetch fails keeps its keys. After Close, Refresh fetches nothing
// and returns ErrKeysUnavailable for each issuer.
func (v *JWKSVerifier) Refresh(ctx context.Context) error {
	fetches := make([]*jwksFetch, len(v.order))
	for i, is := range v.order {
		fetches[i] = v.start(is, false)
	}
	var errs []error
	for i, f := range fetches {
		iss := v.order[i].iss
		if f == nil {
			errs = append(errs, fmt.Errorf("%w: issuer %q: verifier closed", ErrKeysUnavailable, iss))
			continue
		}
		select {
		case <-f.done:
			if f.err != nil {
				errs = append(errs, f.err)
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%w: issuer %q: %w", ErrKeysUnavailable, iss, ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// Close stops the background refresh, cancels the fetches in flight and
// waits for their goroutines to end, then closes the idle connections of
// the verifier's own HTTP client (never those of JWKSConfig.HTTPClient).
// It is idempotent and safe to call concurrently; every call returns once
// the goroutines have ended. Verify keeps working with the keys already
// fetched.
func (v *JWKSVerifier) Close() {
	v.closeOnce.Do(func() {
		v.mu.Lock()
		v.closed = true
		v.mu.Unlock()
		v.cancel()
		v.wg.Wait()
		if v.transport != nil {
			v.transport.CloseIdleConnections()
		}
	})
}

// goroutine runs f in a goroutine that Close waits for, with a context
// that Close cancels. It returns false, and runs nothing, after Close.
func (v *JWKSVerifier) goroutine(f func(ctx context.Context)) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return false
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		f(v.ctx)
	}()
	return true
}

// unverifiedIssuer returns the "iss" claim of a token that passed
// checkSyntax, before any signature check: it only selects the key set,
// and the verified claims must then hold the same iss (jwt.WithIssuer).
func unverifiedIssuer(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", invalid("malformed token")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return "", invalid("malformed claims")
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(raw, &claims) != nil {
		return "", invalid("malformed claims")
	}
	rawIss, ok := claims["iss"]
	if !ok {
		return "", invalid("missing iss")
	}
	var iss string
	if json.Unmarshal(rawIss, &iss) != nil {
		return "", invalid("iss is not a string")
	}
	if iss == "" {
		return "", invalid("missing iss")
	}
	return iss, nil
}
