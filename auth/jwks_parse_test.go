package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/MicahParks/jwkset"
)

// Public key material for the parser tests: parsing checks sizes and
// curve points, not that a private key exists, so the RSA moduli are made
// up (fast, and reproducible for the fuzz corpus).
var (
	parseRSAN    = b64(append([]byte{0xc5}, bytes.Repeat([]byte{0x3b}, 255)...)) // 2048 bits
	parseRSAN1k  = b64(append([]byte{0xc5}, bytes.Repeat([]byte{0x3b}, 127)...)) // 1024 bits
	parseRSAN16k = b64(append([]byte{0xc5}, bytes.Repeat([]byte{0x3b}, 2047)...))
	parseEd      = ed25519.NewKeyFromSeed([]byte("jwks-parse-ed25519-seed-32-bytes"))
)

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// parseECJWK returns the JWK members of a fixed EC public key on curve.
func parseECJWK(t testing.TB, curve elliptic.Curve) map[string]any {
	t.Helper()
	// A deterministic key: the scalar 7 (valid on every curve).
	d := make([]byte, (curve.Params().BitSize+7)/8)
	d[len(d)-1] = 7
	priv, err := ecdsa.ParseRawPrivateKey(curve, d)
	if err != nil {
		t.Fatal(err)
	}
	j, err := jwkset.NewJWKFromKey(&priv.PublicKey, jwkset.JWKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(j.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// with returns a copy of m with extra merged in (nil deletes).
func with(m map[string]any, extra map[string]any) map[string]any {
	c := make(map[string]any, len(m)+len(extra))
	for k, v := range m {
		c[k] = v
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

func setOf(keys ...map[string]any) string {
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return string(b)
}

func allAlgorithms() map[string]bool {
	m := make(map[string]bool)
	for _, a := range jwksAlgorithms() {
		m[a] = true
	}
	return m
}

func TestParseJWKS(t *testing.T) {
	rsaJWK := map[string]any{"kty": "RSA", "n": parseRSAN, "e": "AQAB"}
	p256 := parseECJWK(t, elliptic.P256())
	p384 := parseECJWK(t, elliptic.P384())
	p521 := parseECJWK(t, elliptic.P521())
	ed := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(parseEd.Public().(ed25519.PublicKey))}
	notOnCurve := with(p256, map[string]any{"y": p256["x"]})

	tests := []struct {
		name    string
		body    string
		allowed []string // nil: all
		want    []string // kid/alg of the keys returned
		skipped []string // one substring per skipped key
		err     string   // substring of the error; "" for none
	}{
		{name: "RSA with alg", body: setOf(with(rsaJWK, map[string]any{"kid": "r", "alg": "PS384", "use": "sig"})), want: []string{"r/PS384"}},
		{name: "RSA without alg is RS256", body: setOf(with(rsaJWK, map[string]any{"kid": "r"})), want: []string{"r/RS256"}},
		{name: "EC curves", body: setOf(with(p256, map[string]any{"kid": "a"}), with(p384, map[string]any{"kid": "b"}), with(p521, map[string]any{"kid": "c", "alg": "ES512"})), want: []string{"a/ES256", "b/ES384", "c/ES512"}},
		{name: "Ed25519", body: setOf(with(ed, map[string]any{"kid": "e"})), want: []string{"e/EdDSA"}},
		{name: "no kid", body: setOf(ed), want: []string{"/EdDSA"}},
		{name: "same kid twice", body: setOf(with(ed, map[string]any{"kid": "x"}), with(p256, map[string]any{"kid": "x"})), want: []string{"x/EdDSA", "x/ES256"}},
		{name: "key_ops verify", body: setOf(with(ed, map[string]any{"key_ops": []string{"verify"}})), want: []string{"/EdDSA"}},
		{name: "padded base64", body: setOf(with(ed, map[string]any{"x": b64(parseEd.Public().(ed25519.PublicKey)) + "="})), want: []string{"/EdDSA"}},
		{
			name: "skipped keys next to a good one",
			body: setOf(
				with(ed, map[string]any{"kid": "good"}),
				map[string]any{"kty": "oct", "kid": "sym", "alg": "HS256", "k": b64([]byte("0123456789abcdef0123456789abcdef"))},
				with(rsaJWK, map[string]any{"use": "enc", "alg": "RSA-OAEP"}),
				with(p256, map[string]any{"key_ops": []string{"encrypt"}}),
				with(rsaJWK, map[string]any{"alg": "HS256"}),
				with(rsaJWK, map[string]any{"alg": "none"}),
				with(rsaJWK, map[string]any{"alg": "ES256"}),
				with(p256, map[string]any{"alg": "ES384"}),
				with(p256, map[string]any{"alg": "EdDSA"}),
				with(ed, map[string]any{"d": b64(parseEd.Seed())}),
				with(rsaJWK, map[string]any{"n": parseRSAN1k}),
				with(rsaJWK, map[string]any{"n": parseRSAN16k}),
				with(rsaJWK, map[string]any{"e": "Ag"}),
				map[string]any{"kty": "OKP", "crv": "X25519", "x": b64(make([]byte, 32))},
				map[string]any{"kty": "OKP", "crv": "Ed448", "x": b64(make([]byte, 57))},
				map[string]any{"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
				map[string]any{"kty": "foo"},
				notOnCurve,
				with(ed, map[string]any{"x": b64(make([]byte, 31))}),
				with(rsaJWK, map[string]any{"kid": 7}),
				with(rsaJWK, map[string]any{"x5u": "http://example.com/cert"}),
			),
			want: []string{"good/EdDSA"},
			skipped: []string{
				`(kid "sym"): symmetric (oct) key ignored`,
				`use "enc" is not sig`,
				"key_ops lacks verify",
				`alg "HS256" is not an asymmetric signature algorithm`,
				`alg "none" is not an asymmetric`,
				`alg "ES256" does not suit a key of type "RSA"`,
				`alg "ES384" does not suit`,
				`alg "EdDSA" does not suit`,
				"private key material",
				"RSA key has 1024 bits",
				"RSA key has 16384 bits",
				"bad RSA public exponent",
				`unsupported key type "OKP" (curve "X25519")`,
				`unsupported key type "OKP" (curve "Ed448")`,
				`unsupported key type "EC" (curve "secp256k1")`,
				`unsupported key type "foo"`,
				"invalid key",
				"invalid key",
				"malformed JWK",
				"invalid key",
			},
		},
		{name: "alg not allowed", body: setOf(with(rsaJWK, map[string]any{"kid": "r"}), with(p256, map[string]any{"kid": "a"})), allowed: []string{"ES256"}, want: []string{"a/ES256"}, skipped: []string{`alg "RS256" is not in Algorithms`}},
		{name: "only oct keys", body: setOf(map[string]any{"kty": "oct", "k": "AAAA"}), skipped: []string{"oct"}, err: "no usable key (keys[0]: symmetric"},
		{name: "empty set", body: `{"keys":[]}`, err: "JWK Set has no keys"},
		{name: "null keys", body: `{"keys":null}`, err: `no "keys" array`},
		{name: "no keys member", body: `{"kty":"RSA"}`, err: `no "keys" array`},
		{name: "keys not an array", body: `{"keys":{}}`, err: "not a JWK Set"},
		{name: "array", body: `[]`, err: "not a JWK Set"},
		{name: "not JSON", body: `<html>`, err: "not a JWK Set"},
		{name: "empty body", body: ``, err: "not a JWK Set"},
		{name: "trailing garbage", body: `{"keys":[]}x`, err: "not a JWK Set"},
		{name: "too many keys", body: setOf(func() []map[string]any {
			var ks []map[string]any
			for range maxJWKSKeys + 1 {
				ks = append(ks, ed)
			}
			return ks
		}()...), err: "101 keys, more than 100"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			allowed := allAlgorithms()
			if tc.allowed != nil {
				allowed = make(map[string]bool)
				for _, a := range tc.allowed {
					allowed[a] = true
				}
			}
			keys, skipped, err := parseJWKS([]byte(tc.body), allowed)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.kid+"/"+k.alg)
				if k.key == nil {
					t.Errorf("key %s/%s has no public key", k.kid, k.alg)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("keys = %v, want %v", got, tc.want)
			}
			if len(skipped) != len(tc.skipped) {
				t.Fatalf("skipped %d keys, want %d:\n%s", len(skipped), len(tc.skipped), strings.Join(skipped, "\n"))
			}
			for i, want := range tc.skipped {
				if !strings.Contains(skipped[i], want) {
					t.Errorf("skipped[%d] = %q, want %q", i, skipped[i], want)
				}
			}
		})
	}
}

// FuzzParseJWKS checks that parseJWKS never panics and that every key it
// returns verifies only an allowed algorithm with a key of the right type.
func FuzzParseJWKS(f *testing.F) {
	p256 := parseECJWK(f, elliptic.P256())
	f.Add([]byte(setOf(map[string]any{"kty": "RSA", "kid": "r", "n": parseRSAN, "e": "AQAB"})), false)
	f.Add([]byte(setOf(with(p256, map[string]any{"kid": "a", "use": "sig"}))), true)
	f.Add([]byte(setOf(map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(parseEd.Public().(ed25519.PublicKey))})), false)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"},1,null,{}]}`), false)
	f.Add([]byte(`{"keys":[]}`), false)

	all := allAlgorithms()
	onlyES256 := map[string]bool{"ES256": true}
	f.Fuzz(func(t *testing.T, data []byte, restricted bool) {
		allowed := all
		if restricted {
			allowed = onlyES256
		}
		keys, skipped, err := parseJWKS(data, allowed)
		if err != nil {
			if len(keys) != 0 {
				t.Fatalf("%d keys with error %v", len(keys), err)
			}
			return
		}
		if len(keys) == 0 || len(keys)+len(skipped) > maxJWKSKeys {
			t.Fatalf("%d keys, %d skipped", len(keys), len(skipped))
		}
		for _, k := range keys {
			if !allowed[k.alg] {
				t.Fatalf("key %q has alg %q, not allowed", k.kid, k.alg)
			}
			kty, crv, ok := jwksKeyType(k.alg)
			if !ok {
				t.Fatalf("alg %q", k.alg)
			}
			switch pub := k.key.(type) {
			case *rsa.PublicKey:
				if kty != jwkset.KtyRSA || pub.N.BitLen() < MinRSABits || pub.N.BitLen() > maxRSABits || pub.E < 3 {
					t.Fatalf("alg %q with an RSA key of %d bits, e=%d", k.alg, pub.N.BitLen(), pub.E)
				}
			case *ecdsa.PublicKey:
				if kty != jwkset.KtyEC || pub.Curve.Params().Name != string(crv) {
					t.Fatalf("alg %q with an EC key on %s", k.alg, pub.Curve.Params().Name)
				}
			case ed25519.PublicKey:
				if kty != jwkset.KtyOKP || len(pub) != ed25519.PublicKeySize {
					t.Fatalf("alg %q with an Ed25519 key of %d bytes", k.alg, len(pub))
				}
			default:
				t.Fatalf("alg %q with a key of type %T", k.alg, pub)
			}
		}
	})
}

// TestFuzzParseJWKSCorpus checks that the committed valid-* seeds of
// FuzzParseJWKS still parse, so that the fuzzer starts from usable sets.
func TestFuzzParseJWKSCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseJWKS", "valid-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid seeds: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 3 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: unexpected format", name)
		}
		data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, _, err := parseJWKS([]byte(data), allAlgorithms()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
