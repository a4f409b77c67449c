package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
)

func TestNewVerifierConfigErrors(t *testing.T) {
	k := keys()
	ecPEM := pemPKIX(t, &k.ecdsa.PublicKey)
	rsaPEM := pemPKIX(t, &k.rsa.PublicKey)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	hs := auth.Key{Algorithm: "HS256", Secret: hmacSecret}

	tests := []struct {
		name string
		cfg  auth.Config
		want []string // substrings, one per expected error
	}{
		{"no keys", auth.Config{}, []string{"no keys"}},
		{"empty keys", auth.Config{Keys: []auth.Key{}}, []string{"no keys"}},
		{"negative leeway", auth.Config{Keys: []auth.Key{hs}, Leeway: -time.Second}, []string{"negative leeway -1s"}},
		{"algorithm missing", auth.Config{Keys: []auth.Key{{Secret: hmacSecret}}}, []string{"keys[0]: algorithm is required"}},
		{"unknown algorithm", auth.Config{Keys: []auth.Key{{Algorithm: "HS999", Secret: hmacSecret}}}, []string{`unsupported algorithm "HS999"`}},
		{"alg none", auth.Config{Keys: []auth.Key{{Algorithm: "none"}}}, []string{`unsupported algorithm "none"`}},
		{"lower-case alg", auth.Config{Keys: []auth.Key{{Algorithm: "hs256", Secret: hmacSecret}}}, []string{`unsupported algorithm "hs256"`}},
		{"RS512 unsupported", auth.Config{Keys: []auth.Key{{Algorithm: "RS512", PEM: rsaPEM}}}, []string{`unsupported algorithm "RS512"`}},
		{"secret missing", auth.Config{Keys: []auth.Key{{Algorithm: "HS256"}}}, []string{"HS256 needs a Secret"}},
		{"secret too short", auth.Config{Keys: []auth.Key{{Algorithm: "HS384", Secret: []byte("fifteen-bytes!!")}}}, []string{"secret has 15 bytes, want at least 16"}},
		{"secret and PEM", auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: hmacSecret, PEM: rsaPEM}}}, []string{"HS256 takes a Secret, not PEM or PublicKey"}},
		{"secret and public key", auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: hmacSecret, PublicKey: &k.rsa.PublicKey}}}, []string{"takes a Secret, not PEM or PublicKey"}},
		{"RS256 with secret and PEM", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", Secret: hmacSecret, PEM: rsaPEM}}}, []string{"RS256 takes PEM or PublicKey, not a Secret"}},
		{"RS256 without key", auth.Config{Keys: []auth.Key{{Algorithm: "RS256"}}}, []string{"RS256 needs PEM or PublicKey"}},
		{"PEM and public key", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PEM: rsaPEM, PublicKey: &k.rsa.PublicKey}}}, []string{"set PEM or PublicKey, not both"}},
		{"bad PEM", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PEM: []byte("not a pem")}}}, []string{"bad PEM: no PEM block found"}},
		{"corrupt PEM body", auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PEM: []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")}}}, []string{"bad PEM: "}},
		{"private key PEM", auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PEM: pemPrivate(t, k.ecdsa)}}}, []string{"PEM holds a private key"}},
		{"unknown PEM type", auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PEM: []byte("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n")}}}, []string{`unsupported PEM block type "FOO"`}},
		{"EC PEM for RS256", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PEM: ecPEM}}}, []string{"RS256 needs an *rsa.PublicKey, got *ecdsa.PublicKey"}},
		{"RSA PEM for EdDSA", auth.Config{Keys: []auth.Key{{Algorithm: "EdDSA", PEM: rsaPEM}}}, []string{"EdDSA needs an ed25519.PublicKey, got *rsa.PublicKey"}},
		{"P-384 for ES256", auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PublicKey: &p384.PublicKey}}}, []string{"ES256 needs a P-256 key"}},
		{"RSA 1024", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PublicKey: &rsa1024.PublicKey}}}, []string{"key has 1024 bits, want at least 2048"}},
		{"short Ed25519 key", auth.Config{Keys: []auth.Key{{Algorithm: "EdDSA", PublicKey: ed25519.PublicKey(make([]byte, 10))}}}, []string{"key has 10 bytes, want 32"}},
		{"private key as PublicKey", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PublicKey: k.rsa}}}, []string{"got *rsa.PrivateKey"}},
		{"nil *rsa.PublicKey", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PublicKey: (*rsa.PublicKey)(nil)}}}, []string{"RS256 needs an *rsa.PublicKey"}},
		{"nil *ecdsa.PublicKey", auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PublicKey: (*ecdsa.PublicKey)(nil)}}}, []string{"ES256 needs an *ecdsa.PublicKey"}},
		{"ECDSA key without coordinates", auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PublicKey: &ecdsa.PublicKey{Curve: elliptic.P256()}}}}, []string{"bad ECDSA key"}},
		//lint:ignore SA1019 a key off the curve can only be built from raw coordinates
		{"ECDSA key off the curve", auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PublicKey: &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(1), Y: big.NewInt(1)}}}}, []string{"bad ECDSA key"}},
		{"RSA key with even exponent", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PublicKey: &rsa.PublicKey{N: k.rsa.N, E: 4}}}}, []string{"bad RSA key"}},
		{"RSA key without modulus", auth.Config{Keys: []auth.Key{{Algorithm: "RS256", PublicKey: &rsa.PublicKey{E: 65537}}}}, []string{"RS256 needs an *rsa.PublicKey"}},
		{
			"duplicate id",
			auth.Config{Keys: []auth.Key{{ID: "a", Algorithm: "HS256", Secret: hmacSecret}, {ID: "a", Algorithm: "HS512", Secret: hmacSecret}}},
			[]string{`keys[1] (id "a"): duplicate id, also used by keys[0]`},
		},
		{
			"all problems at once",
			auth.Config{
				Keys: []auth.Key{
					{ID: "x", Algorithm: "HS999"},
					{Algorithm: "HS256"},
					{Algorithm: "RS256", Secret: hmacSecret, PEM: []byte("garbage")},
					{Algorithm: "ES256", PEM: []byte("garbage")},
					{ID: "x", Algorithm: "HS256", Secret: hmacSecret},
				},
				Leeway: -1,
			},
			[]string{
				"negative leeway",
				`keys[0] (id "x"): unsupported algorithm "HS999"`,
				"keys[1]: HS256 needs a Secret",
				"keys[2]: RS256 takes PEM or PublicKey, not a Secret",
				"keys[2]: bad PEM",
				"keys[3]: bad PEM",
				`keys[4] (id "x"): duplicate id`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := auth.NewVerifier(tc.cfg)
			if err == nil {
				t.Fatal("NewVerifier succeeded, want an error")
			}
			if v != nil {
				t.Error("NewVerifier returned a Verifier with an error")
			}
			if !errors.Is(err, auth.ErrInvalidConfig) {
				t.Errorf("err = %v, want ErrInvalidConfig", err)
			}
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			if len(errs) != len(tc.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(errs), len(tc.want), err)
			}
			for _, e := range errs {
				if !errors.Is(e, auth.ErrInvalidConfig) {
					t.Errorf("%v does not wrap ErrInvalidConfig", e)
				}
				if !strings.HasPrefix(e.Error(), "auth: invalid config: ") {
					t.Errorf("%q lacks the prefix", e)
				}
				if strings.Contains(e.Error(), string(hmacSecret)) {
					t.Errorf("%q contains the secret", e)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewVerifierValid(t *testing.T) {
	k := keys()
	_, err := auth.NewVerifier(auth.Config{
		Keys: []auth.Key{
			{Algorithm: "HS256", Secret: hmacSecret[:auth.MinSecretLen]},
			{Algorithm: "HS256", Secret: hmacSecret}, // several keys without ID are fine
			{ID: "r", Algorithm: "RS256", PEM: pemPKCS1(&k.rsa.PublicKey)},
			{ID: "e", Algorithm: "ES256", PublicKey: &k.ecdsa.PublicKey},
			{ID: "d", Algorithm: "EdDSA", PublicKey: k.ed25519.Public()},
			{ID: "dp", Algorithm: "EdDSA", PublicKey: new(k.ed25519.Public().(ed25519.PublicKey))},
		},
		Issuer:    "https://login.example",
		Audience:  "herald",
		Leeway:    time.Minute,
		UserClaim: "uid",
	})
	if err != nil {
		t.Fatal(err)
	}
}
