package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/internal/nodeclient"
	"github.com/herald-rt/herald/internal/testenv"
)

// TestDemoJWKS runs the demo as HERALD_JWKS_URL and HERALD_JWT_ISSUER
// configure it, with a local identity provider's JWK Set: its RS256 tokens
// connect and call the API; a token naming another issuer does not.
func TestDemoJWKS(t *testing.T) {
	testenv.RequireNode(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "idp-1", "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(idp.Close)
	issuer := idp.URL + "/"

	c, err := configFromEnv(func(name string) string {
		return map[string]string{"HERALD_JWKS_URL": idp.URL + "/jwks.json", "HERALD_JWT_ISSUER": issuer}[name]
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.App.DevMode {
		t.Fatal("dev mode with HERALD_JWKS_URL set")
	}
	url := strings.TrimSuffix(startDemo(t, c.App), "/")

	sign := func(iss string) string {
		t.Helper()
		tok, err := auth.Sign("RS256", "idp-1", key, map[string]any{
			"sub": "alice", "iss": iss, "exp": time.Now().Add(time.Hour).Unix(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	good := nodeclient.Start(t, nodeclient.Options{URL: url, Auth: map[string]any{"token": sign(issuer)}})
	if _, err := good.WaitEvent(ctx, "authenticated"); err != nil {
		t.Fatalf("a token of the configured issuer: %v", err)
	}
	other := nodeclient.Start(t, nodeclient.Options{URL: url, Auth: map[string]any{"token": sign("https://elsewhere.example/")}})
	m, err := other.WaitType(ctx, "connect_error")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m.Data), `"token_invalid"`) {
		t.Errorf("a token of another issuer: connect_error %s %s, want token_invalid", m.Message, m.Data)
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/api/v1/jobs", strings.NewReader(`{"steps":1,"delayMs":1}`))
	req.Header.Set("Authorization", "Bearer "+sign(issuer))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST /api/v1/jobs with an identity provider's token = %s, want 202", resp.Status)
	}
	if _, err := good.WaitEvent(ctx, "job_completed"); err != nil {
		t.Errorf("job events: %v", err)
	}
	resp, err = http.Get(url + "/dev/token?user=mallory")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("GET /dev/token answers 200 with HERALD_JWKS_URL set: dev tokens must be off")
	}
}
