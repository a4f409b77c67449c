package auth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-rt/herald/auth"
)

// Fixed keys, so that the committed corpus under testdata/fuzz holds tokens
// that verify.
var (
	fuzzSecret = []byte("fuzz-secret-0123456789abcdef0123")
	fuzzEdKey  = ed25519.NewKeyFromSeed([]byte("fuzz-ed25519-seed-0123456789abcd"))
)

const fuzzIssuer = "https://issuer.example"

func fuzzVerifier(t testing.TB) *auth.Verifier {
	return newVerifier(t, auth.Config{
		Keys: []auth.Key{
			{Algorithm: "HS256", Secret: fuzzSecret},
			{ID: "ed", Algorithm: "EdDSA", PublicKey: fuzzEdKey.Public()},
		},
		Issuer: fuzzIssuer,
	})
}

// fuzzVerifySeeds are valid and invalid tokens for FuzzVerify.
func fuzzVerifySeeds(t testing.TB) []string {
	c := func(extra map[string]any) map[string]any {
		m := claims(extra)
		m["iss"] = fuzzIssuer
		return m
	}
	valid := mustSign(t, "HS256", "", fuzzSecret, c(nil))
	parts := strings.Split(valid, ".")
	return []string{
		valid,
		mustSign(t, "EdDSA", "ed", fuzzEdKey, c(map[string]any{"sub": 42, "aud": []string{"a", "b"}})),
		mustSign(t, "HS256", "", fuzzSecret, c(map[string]any{"exp": now.Add(-time.Minute)})),
		mustSign(t, "HS256", "", fuzzSecret, c(map[string]any{"nbf": now.Add(time.Minute), "sub": ""})),
		mustSign(t, "HS256", "nope", fuzzSecret, c(nil)),
		rawToken(`{"alg":"none"}`, `{"sub":"u1","exp":99999999999}`, nil),
		rawToken(`{"alg":"HS256","crit":["b64"],"b64":false}`, `{}`, []byte("sig")),
		parts[0] + "." + parts[1],
		parts[0] + ".." + parts[2],
		"",
		"....",
		"e30.e30.e30",
		"garbage",
	}
}

func FuzzVerify(f *testing.F) {
	for _, s := range fuzzVerifySeeds(f) {
		f.Add(s)
	}
	v := fuzzVerifier(f)
	sentinels := []error{auth.ErrTokenMissing, auth.ErrTokenInvalid, auth.ErrTokenExpired}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), token)
		if err == nil {
			if token == "" || len(token) > auth.MaxTokenLen {
				t.Fatalf("accepted a token of %d bytes", len(token))
			}
			if p.UserID == "" || p.Claims == nil || !p.ExpiresAt.After(now) {
				t.Fatalf("accepted with principal %+v", p)
			}
			if p.Claims["iss"] != fuzzIssuer {
				t.Fatalf("accepted with iss %v", p.Claims["iss"])
			}
			return
		}
		matched := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				matched++
			}
		}
		if matched != 1 {
			t.Fatalf("err %q wraps %d sentinels, want 1", err, matched)
		}
		if (token == "") != errors.Is(err, auth.ErrTokenMissing) {
			t.Fatalf("token %q gave %v", token, err)
		}
		if c := auth.Code(err); c != auth.CodeTokenMissing && c != auth.CodeTokenInvalid && c != auth.CodeTokenExpired {
			t.Fatalf("Code = %q", c)
		}
		if len(token) >= 32 && strings.Contains(err.Error(), token) {
			t.Fatalf("err %q contains the token", err)
		}
		if p.UserID != "" || p.Claims != nil || !p.ExpiresAt.IsZero() {
			t.Fatalf("non-zero principal %+v with error", p)
		}
	})
}

// FuzzVerifySigned fuzzes the JSON header and claims of correctly signed
// HS256 tokens, reaching the claim checks that random token strings never
// get past the signature to.
func FuzzVerifySigned(f *testing.F) {
	exp := fmt.Sprint(now.Add(time.Hour).Unix())
	for _, seed := range [][2]string{
		{`{"alg":"HS256"}`, `{"sub":"u1","iss":"` + fuzzIssuer + `","exp":` + exp + `}`},
		{`{"alg":"HS256","kid":""}`, `{"sub":42,"iss":"` + fuzzIssuer + `","exp":` + exp + `.5,"nbf":0,"iat":1}`},
		{`{"alg":"HS256","typ":"JWT"}`, `{"sub":1e400,"iss":"` + fuzzIssuer + `","exp":1e400}`},
		{`{"alg":"HS256"}`, `{"sub":"u1","iss":"` + fuzzIssuer + `","exp":-1}`},
		{`{"alg":"HS256"}`, `{"sub":"u1","iss":["` + fuzzIssuer + `"],"exp":"` + exp + `","aud":{}}`},
		{`{"alg":"HS256","kid":7}`, `null`},
		{`{"alg":"HS256","crit":[]}`, `{}`},
	} {
		f.Add(seed[0], seed[1])
	}
	v := fuzzVerifier(f)
	f.Fuzz(func(t *testing.T, header, payload string) {
		unsigned := rawToken(header, payload, nil)
		unsigned = unsigned[:len(unsigned)-1]
		sig, err := jwt.SigningMethodHS256.Sign(unsigned, fuzzSecret)
		if err != nil {
			t.Fatal(err)
		}
		token := unsigned + "." + base64.RawURLEncoding.EncodeToString(sig)
		p, err := v.Verify(context.Background(), token)
		if err == nil {
			if p.UserID == "" || p.Claims == nil || !p.ExpiresAt.After(now) || p.ExpiresAt.Year() > 9999 {
				t.Fatalf("accepted with principal %+v", p)
			}
			if p.Claims["iss"] != fuzzIssuer {
				t.Fatalf("accepted with iss %v", p.Claims["iss"])
			}
			return
		}
		if !errors.Is(err, auth.ErrTokenInvalid) && !errors.Is(err, auth.ErrTokenExpired) {
			t.Fatalf("err %q wraps neither ErrTokenInvalid nor ErrTokenExpired", err)
		}
		if errors.Is(err, auth.ErrTokenInvalid) == errors.Is(err, auth.ErrTokenExpired) {
			t.Fatalf("err %q wraps both", err)
		}
		if strings.Contains(err.Error(), token) {
			t.Fatalf("err %q contains the token", err)
		}
	})
}

// Kinds of auth payload in FuzzExtractToken.
const (
	authNone   = iota // no auth map
	authString        // {"token": authToken}
	authNumber        // {"token": float64}
	authNull          // {"token": nil}
	authArray         // {"token": []any{authToken}}
	authOther         // {"other": authToken}
	authBool          // {"token": true}
	authObject        // {"token": {"token": authToken}}
	authJSON          // authToken is the JSON a client sent, decoded as the handshake decodes it
	authKinds
)

func FuzzExtractToken(f *testing.F) {
	tok := mustSign(f, "HS256", "", fuzzSecret, claims(nil))
	f.Add(authString, tok, "", "", "")
	f.Add(authString, "  "+tok+"\t", "Bearer x.y.z", "a.b.c", "token")
	f.Add(authNone, "", "Bearer "+tok, "", "")
	f.Add(authNone, "", "bearer\t"+tok, "", "")
	f.Add(authNone, "", "Basic dXNlcjpwYXNz", tok, "token")
	f.Add(authNone, "", "Bearer", "", "")
	f.Add(authNull, "", "BEARER   a.b.c  ", "", "")
	f.Add(authNumber, "x", "Bearer a.b.c", "", "")
	f.Add(authArray, tok, "", "", "")
	f.Add(authOther, tok, "", "q.q.q", "")
	f.Add(authString, "a$b", "", "", "")
	f.Add(authString, "é", "", "", "")
	f.Add(authNone, "", "", strings.Repeat("a", auth.MaxTokenLen+1), "token")
	f.Add(authString, " ", "", " ", "token")
	f.Add(authBool, "", "Bearer "+tok, "", "")
	f.Add(authObject, tok, "", "", "")
	f.Add(authJSON, `{"token":"`+tok+`"}`, "", "", "")
	f.Add(authJSON, `{"token":{"$ne":null},"user":"admin"}`, "Bearer "+tok, "", "")
	f.Add(authJSON, `{"token":["a.b.c"],"token ":"x"}`, "", "", "")
	f.Add(authJSON, `{"token":1e999}`, "", "", "")
	f.Add(authJSON, `[1,2]`, "", "", "")

	f.Fuzz(func(t *testing.T, kind int, authToken, header, query, param string) {
		hs := auth.Handshake{
			Header: http.Header{"Authorization": {header}},
			Query:  url.Values{"token": {query}, param: {query}},
		}
		switch ((kind % authKinds) + authKinds) % authKinds {
		case authString:
			hs.Auth = map[string]any{"token": authToken}
		case authNumber:
			hs.Auth = map[string]any{"token": float64(len(authToken))}
		case authNull:
			hs.Auth = map[string]any{"token": nil}
		case authArray:
			hs.Auth = map[string]any{"token": []any{authToken}}
		case authOther:
			hs.Auth = map[string]any{"other": authToken}
		case authBool:
			hs.Auth = map[string]any{"token": len(authToken)%2 == 0}
		case authObject:
			hs.Auth = map[string]any{"token": map[string]any{"token": authToken}}
		case authJSON:
			if json.Unmarshal([]byte(authToken), &hs.Auth) != nil {
				hs.Auth = nil
			}
		}
		got, err := auth.ExtractToken(hs, auth.ExtractOptions{QueryParam: param})

		if err != nil {
			missing, invalid := errors.Is(err, auth.ErrTokenMissing), errors.Is(err, auth.ErrTokenInvalid)
			if missing == invalid || errors.Is(err, auth.ErrTokenExpired) {
				t.Fatalf("err %q does not wrap exactly one of ErrTokenMissing, ErrTokenInvalid", err)
			}
			if got != "" {
				t.Fatalf("token %q with err %v", got, err)
			}
			for _, s := range []string{authToken, header, query} {
				if s = strings.TrimSpace(s); len(s) >= 32 {
					if _, rest, ok := strings.Cut(s, " "); ok && len(strings.TrimSpace(rest)) >= 32 {
						s = strings.TrimSpace(rest)
					}
					if strings.Contains(err.Error(), s) {
						t.Fatalf("err %q contains input", err)
					}
				}
			}
		} else {
			if got == "" || len(got) > auth.MaxTokenLen {
				t.Fatalf("token of %d bytes", len(got))
			}
			for i := 0; i < len(got); i++ {
				c := got[i]
				if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
					t.Fatalf("token %q has byte %q outside the JWT alphabet", got, c)
				}
			}
			decoded, _ := hs.Auth["token"].(string) // authJSON: the string after unescaping
			if !strings.Contains(authToken+header+query+"\n"+decoded, got) {
				t.Fatalf("token %q is in no input", got)
			}
		}

		// Precedence: a non-blank string auth token decides the result.
		switch ((kind % authKinds) + authKinds) % authKinds {
		case authString:
			if s := strings.TrimSpace(authToken); s != "" && err == nil && got != s {
				t.Fatalf("token %q, want the auth token %q", got, s)
			}
			if s := strings.TrimSpace(authToken); s != "" && errors.Is(err, auth.ErrTokenMissing) {
				t.Fatalf("auth token present but err %v", err)
			}
		case authNumber, authArray, authBool, authObject:
			if !errors.Is(err, auth.ErrTokenInvalid) {
				t.Fatalf("non-string auth token gave %q, %v", got, err)
			}
		case authJSON:
			switch v := hs.Auth["token"].(type) {
			case nil:
			case string:
				if s := strings.TrimSpace(v); s != "" && err == nil && got != s {
					t.Fatalf("token %q, want the auth token %q", got, s)
				}
			default:
				if !errors.Is(err, auth.ErrTokenInvalid) {
					t.Fatalf("auth token of type %T gave %q, %v", v, got, err)
				}
			}
		}
		// The query is used only when opted in.
		if param == "" && err == nil && got == strings.TrimSpace(query) && !strings.Contains(authToken+header, got) {
			t.Fatalf("token %q taken from the query without QueryParam", got)
		}
	})
}

// TestFuzzCorpusValid checks that the committed valid-* seeds of FuzzVerify
// still verify, so that the fuzzer starts from accepted tokens.
func TestFuzzCorpusValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzVerify", "valid-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid seeds: %v", err)
	}
	v := fuzzVerifier(t)
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: unexpected format", name)
		}
		tok, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
