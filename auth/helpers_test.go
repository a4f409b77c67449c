package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
)

// now is the fixed clock of most tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return now }

// hmacSecret is a 32-byte HMAC secret for tests.
var hmacSecret = []byte("0123456789abcdef0123456789abcdef")

// testKeys are generated once per test binary: RSA key generation is slow.
type testKeys struct {
	rsa     *rsa.PrivateKey
	ecdsa   *ecdsa.PrivateKey
	ed25519 ed25519.PrivateKey
}

var keys = sync.OnceValue(func() testKeys {
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	_, dk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return testKeys{rsa: rk, ecdsa: ek, ed25519: dk}
})

// claims returns valid claims for user "u1" at now, with extra merged in
// (a nil value deletes the claim).
func claims(extra map[string]any) map[string]any {
	c := map[string]any{
		"sub": "u1",
		"iat": now.Add(-time.Minute),
		"exp": now.Add(time.Hour),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func mustSign(t testing.TB, alg, kid string, key any, c map[string]any) string {
	t.Helper()
	tok, err := auth.Sign(alg, kid, key, c)
	if err != nil {
		t.Fatalf("Sign(%s): %v", alg, err)
	}
	return tok
}

// rawToken builds a token from a JSON header and payload and a raw
// signature, without any checks: for malformed and malicious tokens.
func rawToken(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

// jsonOf marshals v or panics.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func newVerifier(t testing.TB, cfg auth.Config) *auth.Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func pemPKIX(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func pemPKCS1(pub *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(pub)})
}

// pemCert returns a self-signed certificate for the key pair.
func pemCert(t testing.TB, pub crypto.PublicKey, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "herald test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemPrivate(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// checkErr checks that err wraps want (nil: no error), maps to the
// matching code, and does not leak secret (the token text).
func checkErr(t *testing.T, err, want error, secret string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	wantCode := map[error]string{
		auth.ErrTokenMissing: auth.CodeTokenMissing,
		auth.ErrTokenInvalid: auth.CodeTokenInvalid,
		auth.ErrTokenExpired: auth.CodeTokenExpired,
	}[want]
	if got := auth.Code(err); got != wantCode {
		t.Errorf("Code(%v) = %q, want %q", err, got, wantCode)
	}
	if !strings.HasPrefix(err.Error(), "auth: ") {
		t.Errorf("err %q lacks the auth: prefix", err)
	}
	if secret = strings.TrimSpace(secret); len(secret) >= 8 && strings.Contains(err.Error(), secret) {
		t.Errorf("err %q contains the token", err)
	}
}
