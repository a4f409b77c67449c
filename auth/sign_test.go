package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
)

func TestSignErrors(t *testing.T) {
	k := keys()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		alg  string
		key  any
		c    map[string]any
		want string
	}{
		{"unknown alg", "HS999", hmacSecret, claims(nil), `unsupported algorithm "HS999"`},
		{"alg none", "none", nil, claims(nil), `unsupported algorithm "none"`},
		{"HS256 with string secret", "HS256", string(hmacSecret), claims(nil), "HS256 needs a []byte secret, got string"},
		{"HS256 short secret", "HS256", []byte("short"), claims(nil), "secret has 5 bytes, want at least 16"},
		{"HS256 with RSA key", "HS256", k.rsa, claims(nil), "needs a []byte secret"},
		{"RS256 with public key", "RS256", &k.rsa.PublicKey, claims(nil), "RS256 needs an *rsa.PrivateKey, got *rsa.PublicKey"},
		{"RS256 with nil key", "RS256", (*rsa.PrivateKey)(nil), claims(nil), "RS256 needs an *rsa.PrivateKey"},
		{"ES256 with Ed25519 key", "ES256", k.ed25519, claims(nil), "ES256 needs an *ecdsa.PrivateKey"},
		{"ES256 with P-384 key", "ES256", p384, claims(nil), "ES256 needs a P-256 key"},
		{"EdDSA with short key", "EdDSA", ed25519.PrivateKey(make([]byte, 10)), claims(nil), "key has 10 bytes, want 64"},
		{"EdDSA with secret", "EdDSA", hmacSecret, claims(nil), "EdDSA needs an ed25519.PrivateKey, got []uint8"},
		{"claim not JSON", "HS256", hmacSecret, claims(map[string]any{"ch": make(chan int)}), "json: unsupported type"},
		{"oversize", "HS256", hmacSecret, claims(map[string]any{"pad": strings.Repeat("x", auth.MaxTokenLen)}), "more than MaxTokenLen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := auth.Sign(tc.alg, "", tc.key, tc.c)
			if err == nil {
				t.Fatalf("Sign = %q, want an error", tok)
			}
			if tok != "" {
				t.Errorf("Sign returned a token with an error")
			}
			if !strings.HasPrefix(err.Error(), "auth: sign: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want auth: sign: ...%s...", err, tc.want)
			}
			if strings.Contains(err.Error(), string(hmacSecret)) {
				t.Errorf("err %q contains the secret", err)
			}
		})
	}
}

func TestSignHeaderAndClaims(t *testing.T) {
	in := map[string]any{"sub": "u1", "exp": now.Add(time.Hour), "nbf": now, "iat": now, "other": now}
	tok := mustSign(t, "HS256", "key-1", hmacSecret, in)
	if _, ok := in["exp"].(time.Time); !ok {
		t.Error("Sign modified the claims map")
	}
	header, payload := decodeSegment(t, tok, 0), decodeSegment(t, tok, 1)
	if header["alg"] != "HS256" || header["kid"] != "key-1" || header["typ"] != "JWT" {
		t.Errorf("header = %v", header)
	}
	for name, want := range map[string]float64{"exp": float64(now.Add(time.Hour).Unix()), "nbf": float64(now.Unix()), "iat": float64(now.Unix())} {
		if payload[name] != want {
			t.Errorf("%s = %v, want %v", name, payload[name], want)
		}
	}
	if _, ok := payload["other"].(string); !ok {
		t.Errorf("other = %#v, want the default JSON encoding of time.Time", payload["other"])
	}
	tok2 := mustSign(t, "HS256", "", hmacSecret, in)
	if kid, ok := decodeSegment(t, tok2, 0)["kid"]; ok {
		t.Errorf("empty kid set the kid header to %v", kid)
	}
}

// decodeSegment decodes the i-th segment of tok as a JSON object.
func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewHMACToken(t *testing.T) {
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: hmacSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Truncate(time.Second)
	tok, err := auth.NewHMACToken(hmacSecret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserID != "alice" {
		t.Errorf("UserID = %q, want alice", p.UserID)
	}
	if p.ExpiresAt.Before(before.Add(time.Hour)) || p.ExpiresAt.After(time.Now().Add(time.Hour)) {
		t.Errorf("ExpiresAt = %v, want about an hour from now", p.ExpiresAt)
	}
	if _, ok := p.Claims["iat"]; !ok {
		t.Error("no iat claim")
	}

	for _, tc := range []struct {
		secret []byte
		user   string
		ttl    time.Duration
		want   string
	}{
		{hmacSecret, "", time.Hour, "empty user ID"},
		{hmacSecret, "alice", 0, "ttl 0s is not positive"},
		{hmacSecret, "alice", -time.Second, "ttl -1s is not positive"},
		{nil, "alice", time.Hour, "secret has 0 bytes"},
	} {
		t.Run(fmt.Sprintf("%q/%v", tc.user, tc.ttl), func(t *testing.T) {
			_, err := auth.NewHMACToken(tc.secret, tc.user, tc.ttl)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{auth.ErrTokenMissing, auth.CodeTokenMissing},
		{auth.ErrTokenInvalid, auth.CodeTokenInvalid},
		{auth.ErrTokenExpired, auth.CodeTokenExpired},
		{fmt.Errorf("handshake: %w", auth.ErrTokenExpired), auth.CodeTokenExpired},
		{fmt.Errorf("%w: reason", auth.ErrTokenMissing), auth.CodeTokenMissing},
		{errors.New("boom"), auth.CodeTokenInvalid},
		{auth.ErrInvalidConfig, auth.CodeTokenInvalid},
		{context.Canceled, auth.CodeTokenInvalid},
	}
	for _, tc := range tests {
		if got := auth.Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
