package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
)

func BenchmarkVerifyHS256(b *testing.B) {
	secret := []byte("benchmark-secret-of-32-bytes!!!!")
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}}})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.NewHMACToken(secret, "user-42", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyES256(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "ES256", PublicKey: &key.PublicKey}}})
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Sign("ES256", "", key, map[string]any{"sub": "user-42", "exp": time.Now().Add(time.Hour).Unix()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
