package auth

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Key is one verification key. Set exactly one of Secret (for the HS*
// algorithms) or PEM or PublicKey (for RS256, ES256 and EdDSA).
type Key struct {
	// ID is the key ID, matched against the token's "kid" header.
	//
	// A token with a kid is verified only with the key whose ID equals it;
	// an unknown kid is rejected. A token without a kid is tried against the
	// keys with an empty ID, or, if no key has an empty ID, against all
	// keys; in both cases only keys whose Algorithm equals the token's
	// "alg" are tried. Non-empty IDs must be unique.
	ID string

	// Algorithm is the only "alg" this key verifies: "HS256", "HS384",
	// "HS512", "RS256", "ES256" or "EdDSA". Required; "none" is never
	// accepted.
	Algorithm string

	// Secret is the HMAC secret for HS256, HS384 and HS512; at least
	// MinSecretLen bytes. It is copied by NewVerifier.
	Secret []byte

	// PEM is a PEM-encoded public key for RS256, ES256 or EdDSA: a PKIX
	// "PUBLIC KEY", a PKCS #1 "RSA PUBLIC KEY", or a "CERTIFICATE" whose
	// public key is used (its validity and chain are not checked). Only the
	// first PEM block is read. Parsed once, by NewVerifier.
	PEM []byte

	// PublicKey is an alternative to PEM: an already parsed *rsa.PublicKey
	// (at least MinRSABits), *ecdsa.PublicKey (P-256) or ed25519.PublicKey.
	PublicKey crypto.PublicKey
}

// Config configures a [Verifier]. The zero value of each field is a
// documented default, but at least one key is required.
type Config struct {
	// Keys are the verification keys; at least one. Several keys allow key
	// rotation: each token selects its key with the "kid" header (see
	// Key.ID). To rotate, add the new key next to the old one, start
	// signing with the new key, and remove the old key once the last token
	// signed with it has expired.
	Keys []Key

	// Issuer, if not empty, is required in the "iss" claim. "" means iss is
	// not checked.
	Issuer string

	// Audience, if not empty, must be in the "aud" claim (a string or an
	// array of strings). "" means aud is not checked.
	Audience string

	// Leeway is the clock skew allowed when checking "exp", "nbf" and
	// "iat". 0 means none. Negative values are a config error.
	Leeway time.Duration

	// UserClaim is the claim that holds the user ID; "" means "sub". The
	// claim must be a non-empty string or a JSON number (an integer such as
	// 42 becomes "42"; other numbers are formatted without an exponent).
	UserClaim string

	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// Principal is what a verified token says.
type Principal struct {
	// UserID is the value of Config.UserClaim ("sub" by default).
	UserID string
	// ExpiresAt is the token's "exp" claim. Every accepted token has one.
	ExpiresAt time.Time
	// Claims holds all claims of the token, decoded from JSON into a map
	// owned by the caller. JSON numbers are json.Number, so that large
	// integer IDs keep their exact value.
	Claims map[string]any
}

// Verifier verifies JWTs. Create it with [NewVerifier]. A Verifier is
// immutable and safe for concurrent use by multiple goroutines; it starts
// no goroutines and holds no resources, so it needs no closing.
type Verifier struct {
	keys     []verifierKey
	anyNoKID bool // at least one key has an empty ID
	rules    claimRules
}

// claimRules are the claim checks that [Verifier] and [JWKSVerifier]
// share.
type claimRules struct {
	issuer    string // required "iss"; "" means not checked
	audience  string // required in "aud"; "" means not checked
	userClaim string // never ""
}

// parserOptions returns the jwt options that check a token signed with alg
// against r: exactly one valid method, "exp" required, "nbf" and "iat"
// checked, numbers kept as json.Number, strict base64.
func (r claimRules) parserOptions(alg string, leeway time.Duration, now func() time.Time) []jwt.ParserOption {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{alg}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithJSONNumber(),
		jwt.WithStrictDecoding(),
	}
	if r.issuer != "" {
		opts = append(opts, jwt.WithIssuer(r.issuer))
	}
	if r.audience != "" {
		opts = append(opts, jwt.WithAudience(r.audience))
	}
	return opts
}

// verifierKey is a validated Key.
type verifierKey struct {
	id   string
	alg  string
	key  any                // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	opts []jwt.ParserOption // read-only after NewVerifier
}

// NewVerifier validates cfg and returns a Verifier. It reports every
// problem at once, joined with [errors.Join]; each wraps [ErrInvalidConfig].
// It parses PEM keys once, does no I/O and never panics.
func NewVerifier(cfg Config) (*Verifier, error) {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}

	if len(cfg.Keys) == 0 {
		fail("no keys")
	}
	if cfg.Leeway < 0 {
		fail("negative leeway %v", cfg.Leeway)
	}

	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	userClaim := cfg.UserClaim
	if userClaim == "" {
		userClaim = "sub"
	}

	v := &Verifier{rules: claimRules{
		issuer:    cfg.Issuer,
		audience:  cfg.Audience,
		userClaim: userClaim,
	}}
	seen := make(map[string]int)
	for i, k := range cfg.Keys {
		name := fmt.Sprintf("keys[%d]", i)
		if k.ID != "" {
			name = fmt.Sprintf("keys[%d] (id %q)", i, k.ID)
			if j, dup := seen[k.ID]; dup {
				fail("%s: duplicate id, also used by keys[%d]", name, j)
			}
			seen[k.ID] = i
		}
		key, keyErrs := checkKey(k)
		for _, err := range keyErrs {
			fail("%s: %v", name, err)
		}
		if len(keyErrs) > 0 {
			continue
		}
		opts := v.rules.parserOptions(k.Algorithm, cfg.Leeway, now)
		v.keys = append(v.keys, verifierKey{id: k.ID, alg: k.Algorithm, key: key, opts: opts})
		if k.ID == "" {
			v.anyNoKID = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return v, nil
}

// checkKey validates k and returns the key in the form jwt expects.
func checkKey(k Key) (any, []error) {
	var errs []error
	switch kindOf(k.Algorithm) {
	case kindUnknown:
		if k.Algorithm == "" {
			errs = append(errs, errors.New("algorithm is required"))
		} else {
			errs = append(errs, fmt.Errorf("unsupported algorithm %q (want HS256, HS384, HS512, RS256, ES256 or EdDSA)", k.Algorithm))
		}
		return nil, errs
	case kindHMAC:
		if k.PEM != nil || k.PublicKey != nil {
			errs = append(errs, fmt.Errorf("%s takes a Secret, not PEM or PublicKey", k.Algorithm))
		}
		switch {
		case len(k.Secret) == 0:
			errs = append(errs, fmt.Errorf("%s needs a Secret", k.Algorithm))
		case len(k.Secret) < MinSecretLen:
			errs = append(errs, fmt.Errorf("secret has %d bytes, want at least %d", len(k.Secret), MinSecretLen))
		}
		if len(errs) > 0 {
			return nil, errs
		}
		return bytes.Clone(k.Secret), nil
	default:
		if k.Secret != nil {
			errs = append(errs, fmt.Errorf("%s takes PEM or PublicKey, not a Secret", k.Algorithm))
		}
		var pub crypto.PublicKey
		switch {
		case k.PEM != nil && k.PublicKey != nil:
			errs = append(errs, errors.New("set PEM or PublicKey, not both"))
		case k.PEM != nil:
			p, err := parsePublicKeyPEM(k.PEM)
			if err != nil {
				errs = append(errs, fmt.Errorf("bad PEM: %v", err))
			}
			pub = p
		case k.PublicKey != nil:
			pub = k.PublicKey
		default:
			errs = append(errs, fmt.Errorf("%s needs PEM or PublicKey", k.Algorithm))
		}
		if len(errs) > 0 {
			return nil, errs
		}
		key, err := checkPublicKey(k.Algorithm, pub)
		if err != nil {
			return nil, []error{err}
		}
		return key, nil
	}
}

// Verify checks token and returns what it says.
//
// An empty token gives an error wrapping [ErrTokenMissing]; an expired one
// (but otherwise valid) [ErrTokenExpired]; anything else wrong
// [ErrTokenInvalid]: a malformed token or one longer than [MaxTokenLen], a
// bad signature, an "alg" not configured for the selected key (including
// "none"), an unknown "kid", an unsupported "crit" header, a missing "exp",
// an "nbf" or "iat" in the future, a wrong "iss" or "aud", or a missing or
// empty user claim. Errors carry a short reason for logs, never the token
// text. Pass them to [Code] for the code to send to the client.
//
// Verify does no I/O and does not block; ctx is accepted for key sources
// that fetch keys and is not used yet.
func (v *Verifier) Verify(ctx context.Context, token string) (Principal, error) {
	alg, kid, err := readHeader(token)
	if err != nil {
		return Principal{}, err
	}
	keys, err := v.candidates(alg, kid)
	if err != nil {
		return Principal{}, err
	}
	return verifyWith(token, keys, func(k verifierKey) (any, []jwt.ParserOption) { return k.key, k.opts }, v.rules)
}

// readHeader checks token's form and returns its header's alg and kid.
func readHeader(token string) (alg, kid string, err error) {
	if token == "" {
		return "", "", fmt.Errorf("%w", ErrTokenMissing)
	}
	if err := checkSyntax(token); err != nil {
		return "", "", err
	}
	return parseHeader(token)
}

// verifyWith verifies token with each of keys in turn (key gives a key and
// its parser options) until one's signature matches, and applies rules to
// its claims.
func verifyWith[K any](token string, keys []K, key func(K) (any, []jwt.ParserOption), rules claimRules) (Principal, error) {
	for _, k := range keys {
		pub, opts := key(k)
		claims := jwt.MapClaims{}
		_, err := jwt.NewParser(opts...).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
			return pub, nil
		})
		if errors.Is(err, jwt.ErrTokenSignatureInvalid) {
			continue // not signed with this key; try the next candidate
		}
		return rules.principal(claims, err)
	}
	return Principal{}, invalid("signature mismatch")
}

// candidates returns the keys to try for a token with this alg and kid, in
// configuration order.
func (v *Verifier) candidates(alg, kid string) ([]verifierKey, error) {
	if kid != "" {
		for _, k := range v.keys {
			if k.id == kid {
				if k.alg != alg {
					return nil, invalid("alg does not match the key selected by kid")
				}
				return []verifierKey{k}, nil
			}
		}
		return nil, invalid("unknown kid")
	}
	var keys []verifierKey
	for _, k := range v.keys {
		if (k.id == "" || !v.anyNoKID) && k.alg == alg {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, invalid("alg not allowed")
	}
	return keys, nil
}

// principal turns the result of a parse whose signature matched into the
// result of Verify.
func (r claimRules) principal(claims jwt.MapClaims, err error) (Principal, error) {
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenMalformed):
			return Principal{}, invalid("malformed token")
		case !errors.Is(err, jwt.ErrTokenInvalidClaims):
			return Principal{}, invalid("unverifiable token")
		}
		if reason := r.claimsReason(claims, err); reason != "" {
			return Principal{}, invalid(reason)
		}
		if !errors.Is(err, jwt.ErrTokenExpired) {
			return Principal{}, invalid("invalid claims")
		}
	}
	// Checked for expired tokens too: a token that could never be valid is
	// invalid, not merely expired (a refresh would not help).
	if reason := checkDates(claims); reason != "" {
		return Principal{}, invalid(reason)
	}
	userID, reason := userID(claims, r.userClaim)
	if reason != "" {
		return Principal{}, invalid(reason)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w", ErrTokenExpired)
	}
	exp, gerr := claims.GetExpirationTime()
	if gerr != nil || exp == nil { // cannot happen: jwt required a valid exp
		return Principal{}, invalid("missing exp")
	}
	return Principal{UserID: userID, ExpiresAt: exp.Time, Claims: map[string]any(claims)}, nil
}

// claimsReason explains a claims validation error other than expiry; ""
// if expiry is the only problem.
func (r claimRules) claimsReason(claims jwt.MapClaims, err error) string {
	switch {
	case errors.Is(err, jwt.ErrInvalidType):
		return "registered claim has the wrong type"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		if _, ok := claims["exp"]; !ok {
			return "missing exp"
		}
		if r.issuer != "" {
			if iss, _ := claims["iss"].(string); iss == "" {
				return "missing iss"
			}
		}
		return "missing aud"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "iss mismatch"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "aud mismatch"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return ""
	default:
		return "invalid claims"
	}
}

// maxNumericDate is 9999-12-31T23:59:59Z in seconds since the epoch. Larger
// dates are rejected so that conversions to time.Time never overflow.
const maxNumericDate = 253402300799

// checkDates rejects "exp", "nbf" and "iat" values outside the years 0-9999
// (jwt converts them to time.Time without a range check, and float-to-int
// overflow differs between CPU architectures).
func checkDates(claims jwt.MapClaims) string {
	for _, name := range [...]string{"exp", "nbf", "iat"} {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		n, ok := raw.(json.Number)
		if !ok {
			return "registered claim has the wrong type"
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.Abs(f) > maxNumericDate {
			return name + " out of range"
		}
	}
	return ""
}

// userID returns the user ID held in claim, or a reason why there is none.
func userID(claims jwt.MapClaims, claim string) (id, reason string) {
	switch x := claims[claim].(type) {
	case nil:
		return "", "missing user claim"
	case string:
		if x == "" {
			return "", "empty user claim"
		}
		return x, ""
	case json.Number:
		s, ok := formatNumber(x)
		if !ok {
			return "", "user claim is not a usable number"
		}
		return s, ""
	default:
		return "", "user claim is not a string or number"
	}
}

// formatNumber formats a JSON number without an exponent. Integer literals
// are kept as written, so that IDs beyond 2^53 stay exact.
func formatNumber(n json.Number) (string, bool) {
	s := string(n)
	digits := strings.TrimPrefix(s, "-")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		return s, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return "", false
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// parseHeader decodes the JOSE header of a token that passed checkSyntax
// and returns its "alg" and "kid". Tokens with a "crit" header are
// rejected: this package implements no JWS extensions (RFC 7515, 4.1.11).
func parseHeader(token string) (alg, kid string, err error) {
	seg, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", "", invalid("malformed token")
	}
	raw, derr := base64.RawURLEncoding.Strict().DecodeString(seg)
	if derr != nil {
		return "", "", invalid("malformed header")
	}
	var hdr map[string]any
	if json.Unmarshal(raw, &hdr) != nil {
		return "", "", invalid("malformed header")
	}
	if _, ok := hdr["crit"]; ok {
		return "", "", invalid("unsupported crit header")
	}
	alg, ok = hdr["alg"].(string)
	if !ok || alg == "" {
		return "", "", invalid("missing alg")
	}
	switch k := hdr["kid"].(type) {
	case nil:
	case string:
		kid = k
	default:
		return "", "", invalid("kid is not a string")
	}
	return alg, kid, nil
}
