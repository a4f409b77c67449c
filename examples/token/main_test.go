package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/internal/devsecret"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func verify(t *testing.T, secret []byte, tok string) auth.Principal {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(context.Background(), strings.TrimSpace(tok))
	if err != nil {
		t.Fatalf("the token does not verify: %v", err)
	}
	return p
}

// Without HERALD_JWT_SECRET the token is signed with the demo's dev secret
// file, so that the demo in dev mode accepts it.
func TestTokenDevSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-secret")
	env := map[string]string{devsecret.EnvFile: path}
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-user", "alice", "-ttl", "1h"}, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	secret, err := devsecret.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	p := verify(t, secret, stdout.String())
	if p.UserID != "alice" {
		t.Errorf("sub = %q, want alice", p.UserID)
	}
	if left := time.Until(p.ExpiresAt); left < 59*time.Minute || left > time.Hour {
		t.Errorf("expires in %v, want 1h", left)
	}
	if !strings.Contains(stderr.String(), path) {
		t.Errorf("stderr does not name the secret file: %q", stderr.String())
	}

	// -secret-file wins over the environment.
	other := filepath.Join(t.TempDir(), "other")
	stdout.Reset()
	if err := run([]string{"-user", "bob", "-secret-file", other}, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	otherSecret, err := devsecret.Read(other)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, otherSecret, stdout.String())
}

func TestTokenSecretFromEnv(t *testing.T) {
	secret := "a-production-like-secret-0123456789"
	env := map[string]string{"HERALD_JWT_SECRET": secret, devsecret.EnvFile: filepath.Join(t.TempDir(), "unused")}
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-user", "carol"}, func(k string) string { return env[k] }, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if p := verify(t, []byte(secret), stdout.String()); p.UserID != "carol" {
		t.Errorf("sub = %q, want carol", p.UserID)
	}
	if _, err := devsecret.Read(env[devsecret.EnvFile]); err == nil {
		t.Error("a dev secret file was created although HERALD_JWT_SECRET is set")
	}
}

func TestTokenBadUse(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want error
	}{
		{name: "no user", args: nil, want: flag.ErrHelp},
		{name: "extra argument", args: []string{"-user", "a", "b"}, want: flag.ErrHelp},
		{name: "short secret", args: []string{"-user", "a"}, env: map[string]string{"HERALD_JWT_SECRET": "short"}},
		{name: "negative ttl", args: []string{"-user", "a", "-ttl", "-1h"}, env: map[string]string{"HERALD_JWT_SECRET": "a-production-like-secret-0123456789"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tt.args, func(k string) string { return tt.env[k] }, &stdout, &stderr)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("run = %v, want an error (%v)", err, tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}
