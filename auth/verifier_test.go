package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-rt/herald/auth"
)

func TestVerifyAlgorithms(t *testing.T) {
	k := keys()
	tests := []struct {
		alg  string
		sign any // signing key
		key  auth.Key
	}{
		{"HS256", hmacSecret, auth.Key{Algorithm: "HS256", Secret: hmacSecret}},
		{"HS384", hmacSecret, auth.Key{Algorithm: "HS384", Secret: hmacSecret}},
		{"HS512", hmacSecret, auth.Key{Algorithm: "HS512", Secret: hmacSecret}},
		{"RS256", k.rsa, auth.Key{Algorithm: "RS256", PublicKey: &k.rsa.PublicKey}},
		{"ES256", k.ecdsa, auth.Key{Algorithm: "ES256", PublicKey: &k.ecdsa.PublicKey}},
		{"EdDSA", k.ed25519, auth.Key{Algorithm: "EdDSA", PublicKey: k.ed25519.Public()}},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			v := newVerifier(t, auth.Config{Keys: []auth.Key{tc.key}})
			tok := mustSign(t, tc.alg, "", tc.sign, claims(nil))
			p, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.UserID != "u1" {
				t.Errorf("UserID = %q, want u1", p.UserID)
			}
			if want := now.Add(time.Hour); !p.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v", p.ExpiresAt, want)
			}
			if p.Claims["sub"] != "u1" {
				t.Errorf("Claims = %v, want sub u1", p.Claims)
			}

			// The same token fails once its signature is altered.
			sig := tok[strings.LastIndexByte(tok, '.')+1:]
			flipped := []byte(sig)
			flipped[len(flipped)/2] ^= 'A' ^ 'B'
			if flipped[len(flipped)/2] == sig[len(sig)/2] {
				t.Fatal("signature not altered")
			}
			bad := tok[:len(tok)-len(sig)] + string(flipped)
			_, err = v.Verify(context.Background(), bad)
			checkErr(t, err, auth.ErrTokenInvalid, bad)
		})
	}
}

func TestVerifyPEM(t *testing.T) {
	k := keys()
	tests := []struct {
		name string
		alg  string
		sign any
		pem  []byte
	}{
		{"RSA PKIX", "RS256", k.rsa, pemPKIX(t, &k.rsa.PublicKey)},
		{"RSA PKCS1", "RS256", k.rsa, pemPKCS1(&k.rsa.PublicKey)},
		{"RSA certificate", "RS256", k.rsa, pemCert(t, &k.rsa.PublicKey, k.rsa)},
		{"ECDSA PKIX", "ES256", k.ecdsa, pemPKIX(t, &k.ecdsa.PublicKey)},
		{"ECDSA certificate", "ES256", k.ecdsa, pemCert(t, &k.ecdsa.PublicKey, k.ecdsa)},
		{"Ed25519 PKIX", "EdDSA", k.ed25519, pemPKIX(t, k.ed25519.Public())},
		{"Ed25519 certificate", "EdDSA", k.ed25519, pemCert(t, k.ed25519.Public(), k.ed25519)},
		{"leading text", "ES256", k.ecdsa, append([]byte("# issuer key\n"), pemPKIX(t, &k.ecdsa.PublicKey)...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pemCopy := append([]byte(nil), tc.pem...)
			v := newVerifier(t, auth.Config{Keys: []auth.Key{{ID: "k", Algorithm: tc.alg, PEM: pemCopy}}})
			clear(pemCopy) // parsed once by NewVerifier; later changes do not matter
			tok := mustSign(t, tc.alg, "k", tc.sign, claims(nil))
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyRotation(t *testing.T) {
	k := keys()
	oldSecret := []byte("old-secret-0123456789abcdef-0123")
	v := newVerifier(t, auth.Config{Keys: []auth.Key{
		{ID: "old", Algorithm: "HS256", Secret: oldSecret},
		{ID: "new", Algorithm: "ES256", PublicKey: &k.ecdsa.PublicKey},
	}})
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"old key", mustSign(t, "HS256", "old", oldSecret, claims(nil)), nil},
		{"new key", mustSign(t, "ES256", "new", k.ecdsa, claims(nil)), nil},
		{"no kid, tried against all keys of its alg", mustSign(t, "HS256", "", oldSecret, claims(nil)), nil},
		{"unknown kid", mustSign(t, "HS256", "other", oldSecret, claims(nil)), auth.ErrTokenInvalid},
		{"kid of another key", mustSign(t, "HS256", "new", oldSecret, claims(nil)), auth.ErrTokenInvalid},
		{"old kid, wrong secret", mustSign(t, "HS256", "old", hmacSecret, claims(nil)), auth.ErrTokenInvalid},
		{"no kid, wrong secret", mustSign(t, "HS256", "", hmacSecret, claims(nil)), auth.ErrTokenInvalid},
		{"no kid, alg of no key", mustSign(t, "HS512", "", oldSecret, claims(nil)), auth.ErrTokenInvalid},
		{"expired with old key", mustSign(t, "HS256", "old", oldSecret, claims(map[string]any{"exp": now.Add(-time.Second)})), auth.ErrTokenExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.tok)
			checkErr(t, err, tc.want, tc.tok)
		})
	}
}

func TestVerifyKeysWithoutID(t *testing.T) {
	newSecret := []byte("new-secret-0123456789abcdef-0123")
	oldSecret := []byte("old-secret-0123456789abcdef-0123")
	kidSecret := []byte("kid-secret-0123456789abcdef-0123")
	v := newVerifier(t, auth.Config{Keys: []auth.Key{
		{Algorithm: "HS256", Secret: newSecret},
		{Algorithm: "HS256", Secret: oldSecret},
		{ID: "k", Algorithm: "HS256", Secret: kidSecret},
	}})
	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"first key", mustSign(t, "HS256", "", newSecret, claims(nil)), nil},
		{"second key", mustSign(t, "HS256", "", oldSecret, claims(nil)), nil},
		{"kid key by kid", mustSign(t, "HS256", "k", kidSecret, claims(nil)), nil},
		// Keys without ID exist, so a token without kid is not tried
		// against keys that have an ID.
		{"kid key without kid", mustSign(t, "HS256", "", kidSecret, claims(nil)), auth.ErrTokenInvalid},
		{"unknown secret", mustSign(t, "HS256", "", hmacSecret, claims(nil)), auth.ErrTokenInvalid},
		{"kid of no key", mustSign(t, "HS256", "x", newSecret, claims(nil)), auth.ErrTokenInvalid},
		{"empty kid is no kid", mustSign(t, "HS256", "", newSecret, claims(nil)), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.tok)
			checkErr(t, err, tc.want, tc.tok)
		})
	}
}

// TestVerify is the table of everything Verify must accept or reject.
func TestVerify(t *testing.T) {
	k := keys()
	hsKey := auth.Key{Algorithm: "HS256", Secret: hmacSecret}
	rsaPEM := pemPKIX(t, &k.rsa.PublicKey)
	hs := func(extra map[string]any) string { return mustSign(t, "HS256", "", hmacSecret, claims(extra)) }
	valid := hs(nil)
	other := hs(map[string]any{"sub": "mallory"})
	parts := strings.Split(valid, ".")
	otherParts := strings.Split(other, ".")
	otherHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","x":1}`))

	// jwtSign signs with the jwt library directly, bypassing Sign's checks.
	jwtSign := func(header map[string]any, c map[string]any) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(c))
		for k, v := range header {
			tok.Header[k] = v
		}
		s, err := tok.SignedString(hmacSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	numericClaims := func(extra map[string]any) map[string]any {
		c := map[string]any{"sub": "u1", "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}

	tests := []struct {
		name  string
		cfg   auth.Config // Keys default to hsKey, Now to the fixed clock
		token string
		want  error
		user  string // expected UserID when want is nil; "" means "u1"
	}{
		{name: "valid", token: valid},
		{name: "empty", token: "", want: auth.ErrTokenMissing},

		// Time.
		{name: "expired", token: hs(map[string]any{"exp": now.Add(-time.Second)}), want: auth.ErrTokenExpired},
		{name: "expires now", token: hs(map[string]any{"exp": now}), want: auth.ErrTokenExpired},
		{name: "just expired within leeway", cfg: auth.Config{Leeway: 30 * time.Second}, token: hs(map[string]any{"exp": now.Add(-10 * time.Second)})},
		{name: "expired beyond leeway", cfg: auth.Config{Leeway: 5 * time.Second}, token: hs(map[string]any{"exp": now.Add(-10 * time.Second)}), want: auth.ErrTokenExpired},
		{name: "missing exp", token: hs(map[string]any{"exp": nil}), want: auth.ErrTokenInvalid},
		{name: "exp null", token: jwtSign(nil, numericClaims(map[string]any{"exp": nil})), want: auth.ErrTokenInvalid},
		{name: "exp string", token: hs(map[string]any{"exp": "2030-01-01"}), want: auth.ErrTokenInvalid},
		{name: "exp beyond year 9999", token: hs(map[string]any{"exp": 1e300}), want: auth.ErrTokenInvalid},
		{name: "exp overflows float64", token: rawTokenHS(t, `{"alg":"HS256"}`, `{"sub":"u1","exp":1e400}`), want: auth.ErrTokenInvalid},
		{name: "exp far in the past", token: hs(map[string]any{"exp": -1e300}), want: auth.ErrTokenInvalid},
		{name: "exp fractional", token: hs(map[string]any{"exp": float64(now.Add(time.Hour).Unix()) + 0.5})},
		{name: "expired and no user is invalid", token: hs(map[string]any{"exp": now.Add(-time.Hour), "sub": nil}), want: auth.ErrTokenInvalid},
		{name: "expired and wrong iss is invalid", cfg: auth.Config{Issuer: "https://a.example"}, token: hs(map[string]any{"exp": now.Add(-time.Hour), "iss": "https://b.example"}), want: auth.ErrTokenInvalid},
		{name: "nbf in the future", token: hs(map[string]any{"nbf": now.Add(time.Minute)}), want: auth.ErrTokenInvalid},
		{name: "nbf in the future within leeway", cfg: auth.Config{Leeway: 2 * time.Minute}, token: hs(map[string]any{"nbf": now.Add(time.Minute)})},
		{name: "nbf now", token: hs(map[string]any{"nbf": now})},
		{name: "iat in the future", token: hs(map[string]any{"iat": now.Add(time.Minute)}), want: auth.ErrTokenInvalid},
		{name: "iat in the future within leeway", cfg: auth.Config{Leeway: 2 * time.Minute}, token: hs(map[string]any{"iat": now.Add(time.Minute)})},
		{name: "no iat", token: hs(map[string]any{"iat": nil})},

		// Issuer and audience.
		{name: "iss matches", cfg: auth.Config{Issuer: "https://a.example"}, token: hs(map[string]any{"iss": "https://a.example"})},
		{name: "iss wrong", cfg: auth.Config{Issuer: "https://a.example"}, token: hs(map[string]any{"iss": "https://b.example"}), want: auth.ErrTokenInvalid},
		{name: "iss missing", cfg: auth.Config{Issuer: "https://a.example"}, token: valid, want: auth.ErrTokenInvalid},
		{name: "iss not checked when not configured", token: hs(map[string]any{"iss": "anyone"})},
		{name: "aud string matches", cfg: auth.Config{Audience: "herald"}, token: hs(map[string]any{"aud": "herald"})},
		{name: "aud array contains", cfg: auth.Config{Audience: "herald"}, token: hs(map[string]any{"aud": []string{"other", "herald"}})},
		{name: "aud wrong", cfg: auth.Config{Audience: "herald"}, token: hs(map[string]any{"aud": "other"}), want: auth.ErrTokenInvalid},
		{name: "aud array without it", cfg: auth.Config{Audience: "herald"}, token: hs(map[string]any{"aud": []string{"a", "b"}}), want: auth.ErrTokenInvalid},
		{name: "aud missing", cfg: auth.Config{Audience: "herald"}, token: valid, want: auth.ErrTokenInvalid},
		{name: "aud wrong type", cfg: auth.Config{Audience: "herald"}, token: hs(map[string]any{"aud": 7}), want: auth.ErrTokenInvalid},

		// User claim.
		{name: "missing sub", token: hs(map[string]any{"sub": nil}), want: auth.ErrTokenInvalid},
		{name: "empty sub", token: hs(map[string]any{"sub": ""}), want: auth.ErrTokenInvalid},
		{name: "sub bool", token: hs(map[string]any{"sub": true}), want: auth.ErrTokenInvalid},
		{name: "sub object", token: hs(map[string]any{"sub": map[string]any{"id": "u1"}}), want: auth.ErrTokenInvalid},
		{name: "numeric sub", token: hs(map[string]any{"sub": 42}), user: "42"},
		{name: "negative numeric sub", token: hs(map[string]any{"sub": -7}), user: "-7"},
		{name: "numeric sub beyond 2^53 stays exact", token: rawTokenHS(t, `{"alg":"HS256"}`, `{"sub":12345678901234567891,"exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`}`), user: "12345678901234567891"},
		{name: "numeric sub with exponent", token: rawTokenHS(t, `{"alg":"HS256"}`, `{"sub":4.2e1,"exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`}`), user: "42"},
		{name: "numeric sub overflows", token: rawTokenHS(t, `{"alg":"HS256"}`, `{"sub":1e400,"exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`}`), want: auth.ErrTokenInvalid},
		{name: "custom user claim", cfg: auth.Config{UserClaim: "uid"}, token: hs(map[string]any{"uid": "u9"}), user: "u9"},
		{name: "custom user claim missing", cfg: auth.Config{UserClaim: "uid"}, token: valid, want: auth.ErrTokenInvalid},

		// Algorithms and keys.
		{name: "alg none", token: rawToken(`{"alg":"none","typ":"JWT"}`, jsonOf(numericClaims(nil)), nil), want: auth.ErrTokenInvalid},
		{name: "alg none with HS256 signature", token: rawToken(`{"alg":"none"}`, jsonOf(numericClaims(nil)), []byte("x")), want: auth.ErrTokenInvalid},
		{name: "alg missing", token: rawTokenHS(t, `{"typ":"JWT"}`, jsonOf(numericClaims(nil))), want: auth.ErrTokenInvalid},
		{name: "alg not a string", token: rawTokenHS(t, `{"alg":256}`, jsonOf(numericClaims(nil))), want: auth.ErrTokenInvalid},
		{name: "alg of another HMAC size", token: mustSign(t, "HS512", "", hmacSecret, claims(nil)), want: auth.ErrTokenInvalid},
		{
			name:  "alg confusion: HS256 signed with the RSA public key",
			cfg:   auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PEM: rsaPEM}}},
			token: mustSign(t, "HS256", "", rsaPEM, claims(nil)),
			want:  auth.ErrTokenInvalid,
		},
		{
			name:  "alg confusion with matching kid",
			cfg:   auth.Config{Keys: []auth.Key{{ID: "r", Algorithm: "RS256", PEM: rsaPEM}}},
			token: mustSign(t, "HS256", "r", rsaPEM, claims(nil)),
			want:  auth.ErrTokenInvalid,
		},
		{name: "wrong secret", token: mustSign(t, "HS256", "", []byte("another-secret-0123456789abcdef!"), claims(nil)), want: auth.ErrTokenInvalid},
		{name: "kid not a string", token: jwtSign(map[string]any{"kid": 5}, numericClaims(nil)), want: auth.ErrTokenInvalid},
		{name: "crit header", token: jwtSign(map[string]any{"crit": []string{"exp"}}, numericClaims(nil)), want: auth.ErrTokenInvalid},
		{name: "jku header is ignored", token: jwtSign(map[string]any{"jku": "https://evil.example/keys"}, numericClaims(nil))},

		// Malformed.
		{name: "tampered payload", token: parts[0] + "." + otherParts[1] + "." + parts[2], want: auth.ErrTokenInvalid},
		{name: "tampered header", token: otherHeader + "." + parts[1] + "." + parts[2], want: auth.ErrTokenInvalid},
		{name: "signature removed", token: parts[0] + "." + parts[1] + ".", want: auth.ErrTokenInvalid},
		{name: "truncated", token: valid[:len(valid)-5], want: auth.ErrTokenInvalid},
		{name: "truncated to two segments", token: parts[0] + "." + parts[1], want: auth.ErrTokenInvalid},
		{name: "four segments", token: valid + ".x", want: auth.ErrTokenInvalid},
		{name: "padded base64", token: valid + "=", want: auth.ErrTokenInvalid},
		{name: "non-canonical base64 signature", token: valid[:len(valid)-1] + nonCanonical(valid[len(valid)-1]), want: auth.ErrTokenInvalid},
		{name: "garbage", token: "garbage", want: auth.ErrTokenInvalid},
		{name: "garbage segments", token: "abc.def.ghi", want: auth.ErrTokenInvalid},
		{name: "spaces", token: " " + valid, want: auth.ErrTokenInvalid},
		{name: "bearer prefix", token: "Bearer " + valid, want: auth.ErrTokenInvalid},
		{name: "header not JSON", token: rawTokenHS(t, `alg`, jsonOf(numericClaims(nil))), want: auth.ErrTokenInvalid},
		{name: "header JSON null", token: rawTokenHS(t, `null`, jsonOf(numericClaims(nil))), want: auth.ErrTokenInvalid},
		{name: "payload not JSON", token: rawTokenHS(t, `{"alg":"HS256"}`, `sub=u1`), want: auth.ErrTokenInvalid},
		{name: "payload JSON array", token: rawTokenHS(t, `{"alg":"HS256"}`, `["u1"]`), want: auth.ErrTokenInvalid},
		{name: "oversize", token: jwtSign(nil, numericClaims(map[string]any{"pad": strings.Repeat("x", auth.MaxTokenLen)})), want: auth.ErrTokenInvalid},
		{name: "oversize garbage", token: strings.Repeat("a", auth.MaxTokenLen+1), want: auth.ErrTokenInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Keys == nil {
				cfg.Keys = []auth.Key{hsKey}
			}
			v := newVerifier(t, cfg)
			p, err := v.Verify(context.Background(), tc.token)
			checkErr(t, err, tc.want, tc.token)
			if err != nil {
				if p.UserID != "" || p.Claims != nil || !p.ExpiresAt.IsZero() {
					t.Errorf("Principal = %+v on error, want zero", p)
				}
				return
			}
			user := tc.user
			if user == "" {
				user = "u1"
			}
			if p.UserID != user {
				t.Errorf("UserID = %q, want %q", p.UserID, user)
			}
		})
	}
}

// rawTokenHS signs a hand-written header and payload with hmacSecret.
func rawTokenHS(t *testing.T, header, payload string) string {
	t.Helper()
	unsigned := rawToken(header, payload, nil)
	unsigned = unsigned[:len(unsigned)-1] // drop the trailing "."
	sig, err := jwt.SigningMethodHS256.Sign(unsigned, hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// nonCanonical returns another base64url character that decodes to the same
// bytes when it is the last character of a 43-character (32-byte) segment.
func nonCanonical(c byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return string(alphabet[i^1])
}

func TestVerifyPrincipal(t *testing.T) {
	v := newVerifier(t, auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: hmacSecret}}})
	tok := mustSign(t, "HS256", "", hmacSecret, claims(map[string]any{
		"roles": []string{"admin"},
		"org":   json.Number("12345678901234567891"),
	}))
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(p.Claims["roles"]); got != "[admin]" {
		t.Errorf("roles = %s", got)
	}
	if got, ok := p.Claims["org"].(json.Number); !ok || got != "12345678901234567891" {
		t.Errorf("org = %#v, want json.Number 12345678901234567891", p.Claims["org"])
	}
	// Claims belongs to the caller: changing it does not affect later calls.
	p.Claims["sub"] = "changed"
	p2, err := v.Verify(context.Background(), tok)
	if err != nil || p2.UserID != "u1" || p2.Claims["sub"] != "u1" {
		t.Errorf("second Verify = %+v, %v", p2, err)
	}
}

func TestVerifyConfigIsCopied(t *testing.T) {
	secret := append([]byte(nil), hmacSecret...)
	keys := []auth.Key{{Algorithm: "HS256", Secret: secret}}
	v := newVerifier(t, auth.Config{Keys: keys})
	clear(secret)
	keys[0].Algorithm = "HS512"
	tok := mustSign(t, "HS256", "", hmacSecret, claims(nil))
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify after changing the config: %v", err)
	}
}

func TestVerifyNowDefault(t *testing.T) {
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: hmacSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.NewHMACToken(hmacSecret, "u1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify with the real clock: %v", err)
	}
	// A verifier whose clock is a day behind sees iat in the future.
	past := newVerifier(t, auth.Config{
		Keys: []auth.Key{{Algorithm: "HS256", Secret: hmacSecret}},
		Now:  func() time.Time { return time.Now().Add(-24 * time.Hour) },
	})
	_, err = past.Verify(context.Background(), tok)
	checkErr(t, err, auth.ErrTokenInvalid, tok) // iat in the future
}

// TestVerifyConcurrent runs Verify from many goroutines; run with -race.
func TestVerifyConcurrent(t *testing.T) {
	k := keys()
	v := newVerifier(t, auth.Config{Keys: []auth.Key{
		{ID: "h", Algorithm: "HS256", Secret: hmacSecret},
		{ID: "e", Algorithm: "ES256", PublicKey: &k.ecdsa.PublicKey},
	}})
	toks := []struct {
		tok  string
		want error
	}{
		{mustSign(t, "HS256", "h", hmacSecret, claims(nil)), nil},
		{mustSign(t, "ES256", "e", k.ecdsa, claims(nil)), nil},
		{mustSign(t, "HS256", "h", hmacSecret, claims(map[string]any{"exp": now.Add(-time.Hour)})), auth.ErrTokenExpired},
		{mustSign(t, "HS256", "x", hmacSecret, claims(nil)), auth.ErrTokenInvalid},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(toks))
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tc := toks[(g+i)%len(toks)]
				_, err := v.Verify(context.Background(), tc.tok)
				if (tc.want == nil) != (err == nil) || (err != nil && !errors.Is(err, tc.want)) {
					errs <- fmt.Errorf("token %d: err = %v, want %v", (g+i)%len(toks), err, tc.want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestVerifyErrorReasons(t *testing.T) {
	// Reasons are for logs; pin a few so that they stay informative.
	v := newVerifier(t, auth.Config{Keys: []auth.Key{{ID: "a", Algorithm: "HS256", Secret: hmacSecret}}, Issuer: "iss"})
	tests := []struct {
		token string
		want  string
	}{
		{"", "auth: token missing"},
		{mustSign(t, "HS256", "b", hmacSecret, claims(nil)), "auth: token invalid: unknown kid"},
		{mustSign(t, "HS256", "a", hmacSecret, claims(map[string]any{"iss": "iss", "exp": now.Add(-time.Hour)})), "auth: token expired"},
		{mustSign(t, "HS256", "a", hmacSecret, claims(map[string]any{"iss": "other"})), "auth: token invalid: iss mismatch"},
		{mustSign(t, "HS256", "a", hmacSecret, claims(map[string]any{"exp": nil})), "auth: token invalid: missing exp"},
		{mustSign(t, "HS256", "a", hmacSecret, claims(nil)), "auth: token invalid: missing iss"},
		{mustSign(t, "HS256", "a", []byte("wrong-secret-0123456789abcdef012"), claims(map[string]any{"iss": "iss"})), "auth: token invalid: signature mismatch"},
		{"a.b", "auth: token invalid: malformed header"},
		{"a$b", "auth: token invalid: token has characters outside the JWT alphabet"},
	}
	for _, tc := range tests {
		_, err := v.Verify(context.Background(), tc.token)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Verify(...) error = %v, want %q", err, tc.want)
		}
	}
}
