package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Sign returns a signed token with the given claims, for tests, demos and
// services that mint their own tokens. alg is one of the algorithms a [Key]
// accepts, and key must match it:
//
//   - HS256, HS384, HS512: []byte, at least MinSecretLen bytes;
//   - RS256: *rsa.PrivateKey, at least MinRSABits;
//   - ES256: *ecdsa.PrivateKey on P-256;
//   - EdDSA: ed25519.PrivateKey.
//
// kid, if not empty, is put in the "kid" header. The claims map is not
// modified; "exp", "nbf" and "iat" may be given as time.Time and are then
// written as NumericDate (seconds since the epoch). Sign does not add any
// claim: a token for [Verifier.Verify] needs at least "exp" and the user
// claim. It is safe for concurrent use.
func Sign(alg, kid string, key any, claims map[string]any) (string, error) {
	method, err := signingMethod(alg, key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	c := make(jwt.MapClaims, len(claims))
	for name, value := range claims {
		if t, ok := value.(time.Time); ok && (name == "exp" || name == "nbf" || name == "iat") {
			value = jwt.NewNumericDate(t)
		}
		c[name] = value
	}
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	if len(s) > MaxTokenLen {
		return "", fmt.Errorf("auth: sign: token has %d bytes, more than MaxTokenLen (%d)", len(s), MaxTokenLen)
	}
	return s, nil
}

// signingMethod checks that key suits alg and returns the jwt method.
func signingMethod(alg string, key any) (jwt.SigningMethod, error) {
	switch kindOf(alg) {
	case kindHMAC:
		k, ok := key.([]byte)
		if !ok {
			return nil, fmt.Errorf("%s needs a []byte secret, got %T", alg, key)
		}
		if len(k) < MinSecretLen {
			return nil, fmt.Errorf("secret has %d bytes, want at least %d", len(k), MinSecretLen)
		}
	case kindRSA:
		k, ok := key.(*rsa.PrivateKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("%s needs an *rsa.PrivateKey, got %T", alg, key)
		}
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("key has %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
	case kindECDSA:
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok || k == nil {
			return nil, fmt.Errorf("%s needs an *ecdsa.PrivateKey, got %T", alg, key)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s needs a P-256 key", alg)
		}
	case kindEd25519:
		k, ok := key.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("%s needs an ed25519.PrivateKey, got %T", alg, key)
		}
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("key has %d bytes, want %d", len(k), ed25519.PrivateKeySize)
		}
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
	return jwt.GetSigningMethod(alg), nil
}

// NewHMACToken returns an HS256 token for userID with "sub" = userID,
// "iat" = now and "exp" = now + ttl. secret must have at least
// MinSecretLen bytes, userID must not be empty, and ttl must be positive.
func NewHMACToken(secret []byte, userID string, ttl time.Duration) (string, error) {
	if userID == "" {
		return "", errors.New("auth: sign: empty user ID")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: sign: ttl %v is not positive", ttl)
	}
	now := time.Now()
	return Sign("HS256", "", secret, map[string]any{
		"sub": userID,
		"iat": now,
		"exp": now.Add(ttl),
	})
}
