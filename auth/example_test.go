package auth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/herald-rt/herald/auth"
)

func ExampleNewVerifier() {
	v, err := auth.NewVerifier(auth.Config{
		Keys: []auth.Key{
			{ID: "2025-07", Algorithm: "HS256", Secret: []byte("an-example-secret-of-32-bytes!!!")},
		},
		Issuer:   "https://login.example.com/",
		Audience: "herald",
		Leeway:   30 * time.Second,
	})
	fmt.Println(v != nil, err)

	// Every problem is reported at once.
	_, err = auth.NewVerifier(auth.Config{
		Keys: []auth.Key{
			{Algorithm: "HS256", Secret: []byte("short")},
			{Algorithm: "RS256"},
		},
		Leeway: -time.Second,
	})
	fmt.Println(errors.Is(err, auth.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true <nil>
	// true
	// auth: invalid config: negative leeway -1s
	// auth: invalid config: keys[0]: secret has 5 bytes, want at least 16
	// auth: invalid config: keys[1]: RS256 needs PEM or PublicKey
}

// Key rotation: tokens signed with the old and the new key both verify
// until the old key is removed; the "kid" header selects the key.
func ExampleNewVerifier_rotation() {
	oldSecret := []byte("the-old-secret-of-at-least-16-b")
	newKey := ed25519.NewKeyFromSeed([]byte("an-example-ed25519-seed-32-bytes"))

	v, err := auth.NewVerifier(auth.Config{
		Keys: []auth.Key{
			{ID: "old", Algorithm: "HS256", Secret: oldSecret},
			{ID: "new", Algorithm: "EdDSA", PublicKey: newKey.Public()},
		},
	})
	if err != nil {
		panic(err)
	}
	exp := time.Now().Add(time.Hour)
	oldTok, _ := auth.Sign("HS256", "old", oldSecret, map[string]any{"sub": "alice", "exp": exp})
	newTok, _ := auth.Sign("EdDSA", "new", newKey, map[string]any{"sub": "bob", "exp": exp})
	strayTok, _ := auth.Sign("HS256", "retired", oldSecret, map[string]any{"sub": "eve", "exp": exp})

	for _, tok := range []string{oldTok, newTok, strayTok} {
		p, err := v.Verify(context.Background(), tok)
		fmt.Printf("%q %v\n", p.UserID, err)
	}
	// Output:
	// "alice" <nil>
	// "bob" <nil>
	// "" auth: token invalid: unknown kid
}

// Keys from an identity provider's JWK Set URL. A token's "iss" picks the
// issuer, its "kid" the key; an unknown kid makes the verifier fetch the
// set again (at most once per MinRefetchInterval).
func ExampleNewJWKSVerifier() {
	// A stand-in for the identity provider and its JWK Set endpoint.
	key := ed25519.NewKeyFromSeed([]byte("an-example-ed25519-seed-32-bytes"))
	jwks := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig","alg":"EdDSA","kid":"2025-07","x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, jwks)
	}))
	defer idp.Close()

	v, err := auth.NewJWKSVerifier(context.Background(), auth.JWKSConfig{
		Issuers: []auth.JWKSIssuer{
			{Issuer: "https://login.example.com/", URL: idp.URL + "/.well-known/jwks.json"},
			// or {Issuer: "https://accounts.example.org", Discovery: true},
		},
		Audience: "herald",
		Leeway:   30 * time.Second,
	})
	if err != nil {
		panic(err)
	}
	defer v.Close() // stops the background refresh

	exp := time.Now().Add(time.Hour)
	good, _ := auth.Sign("EdDSA", "2025-07", key, map[string]any{
		"iss": "https://login.example.com/", "aud": "herald", "sub": "alice", "exp": exp,
	})
	otherIssuer, _ := auth.Sign("EdDSA", "2025-07", key, map[string]any{
		"iss": "https://evil.example/", "aud": "herald", "sub": "mallory", "exp": exp,
	})
	retiredKey, _ := auth.Sign("EdDSA", "2024-01", key, map[string]any{
		"iss": "https://login.example.com/", "aud": "herald", "sub": "bob", "exp": exp,
	})
	for _, tok := range []string{good, otherIssuer, retiredKey} {
		p, err := v.Verify(context.Background(), tok)
		fmt.Printf("%q %q %v\n", p.UserID, auth.Code(err), err)
	}
	// Output:
	// "alice" "" <nil>
	// "" "token_invalid" auth: token invalid: unknown issuer
	// "" "token_invalid" auth: token invalid: unknown kid
}

func ExampleVerifier_Verify() {
	secret := []byte("an-example-secret-of-32-bytes!!!")
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	v, err := auth.NewVerifier(auth.Config{
		Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}},
		Now:  func() time.Time { return now }, // only for a reproducible example
	})
	if err != nil {
		panic(err)
	}
	good, _ := auth.Sign("HS256", "", secret, map[string]any{"sub": "alice", "exp": now.Add(time.Hour), "role": "admin"})
	expired, _ := auth.Sign("HS256", "", secret, map[string]any{"sub": "alice", "exp": now.Add(-time.Minute)})

	for _, tok := range []string{good, expired, "not-a-jwt", ""} {
		p, err := v.Verify(context.Background(), tok)
		switch {
		case err == nil:
			fmt.Println("user", p.UserID, "role", p.Claims["role"], "until", p.ExpiresAt.Format(time.RFC3339))
		case errors.Is(err, auth.ErrTokenExpired):
			fmt.Println("ask the client to refresh:", auth.Code(err))
		default:
			// err is safe to log: it never contains the token.
			fmt.Printf("reject with %s (log: %v)\n", auth.Code(err), err)
		}
	}
	// Output:
	// user alice role admin until 2026-01-02T16:04:05Z
	// ask the client to refresh: token_expired
	// reject with token_invalid (log: auth: token invalid: malformed token)
	// reject with token_missing (log: auth: token missing)
}

func ExampleExtractToken() {
	handshakes := []auth.Handshake{
		// io(url, {auth: {token}})
		{Auth: map[string]any{"token": "aaa.bbb.ccc"}},
		// extraHeaders: {Authorization: "Bearer ..."}
		{Header: http.Header{"Authorization": {"bearer ddd.eee.fff"}}},
		// The query string is used only with ExtractOptions.QueryParam.
		{Query: url.Values{"token": {"ggg.hhh.iii"}}},
		// A token that is not a string.
		{Auth: map[string]any{"token": 42.0}},
	}
	for _, h := range handshakes {
		tok, err := auth.ExtractToken(h, auth.ExtractOptions{})
		fmt.Printf("%q %q\n", tok, auth.Code(err))
	}
	tok, err := auth.ExtractToken(handshakes[2], auth.ExtractOptions{QueryParam: "token"})
	fmt.Printf("%q %v\n", tok, err)
	// Output:
	// "aaa.bbb.ccc" ""
	// "ddd.eee.fff" ""
	// "" "token_missing"
	// "" "token_invalid"
	// "ggg.hhh.iii" <nil>
}

func ExampleNewHMACToken() {
	secret := []byte("an-example-secret-of-32-bytes!!!")
	tok, err := auth.NewHMACToken(secret, "alice", 15*time.Minute)
	if err != nil {
		panic(err)
	}
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}}})
	if err != nil {
		panic(err)
	}
	p, err := v.Verify(context.Background(), tok)
	fmt.Println(p.UserID, err)
	// Output:
	// alice <nil>
}
