package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// Limits on a JWK Set.
const (
	// maxJWKSKeys is the most keys a JWK Set may list; identity providers
	// publish a handful.
	maxJWKSKeys = 100
	// maxRSABits is the largest RSA modulus accepted from a JWK Set: larger
	// keys only make every verification slower.
	maxRSABits = 8192
)

// jwksAlgorithms are the algorithms a JWK Set key may verify, and the
// default of JWKSConfig.Algorithms: the asymmetric JWS algorithms of RFC
// 7518 and RFC 8037. The HS* algorithms are never among them.
func jwksAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// jwksKeyType returns the key type (and, for EC and OKP keys, the curve)
// that verifies alg; ok is false if alg is not in jwksAlgorithms.
func jwksKeyType(alg string) (kty jwkset.KTY, crv jwkset.CRV, ok bool) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		return jwkset.KtyRSA, "", true
	case "ES256":
		return jwkset.KtyEC, jwkset.CrvP256, true
	case "ES384":
		return jwkset.KtyEC, jwkset.CrvP384, true
	case "ES512":
		return jwkset.KtyEC, jwkset.CrvP521, true
	case "EdDSA":
		return jwkset.KtyOKP, jwkset.CrvEd25519, true
	default:
		return "", "", false
	}
}

// defaultJWKAlg is the algorithm of a key without "alg": RS256 for RSA
// (never PS* or RS384/RS512: those need an explicit "alg"), ES256, ES384 or
// ES512 by curve for EC, EdDSA for Ed25519; "" for anything else.
func defaultJWKAlg(kty jwkset.KTY, crv jwkset.CRV) string {
	switch {
	case kty == jwkset.KtyRSA:
		return "RS256"
	case kty == jwkset.KtyEC && crv == jwkset.CrvP256:
		return "ES256"
	case kty == jwkset.KtyEC && crv == jwkset.CrvP384:
		return "ES384"
	case kty == jwkset.KtyEC && crv == jwkset.CrvP521:
		return "ES512"
	case kty == jwkset.KtyOKP && crv == jwkset.CrvEd25519:
		return "EdDSA"
	default:
		return ""
	}
}

// jwksKey is one usable key of a JWK Set.
type jwksKey struct {
	kid  string
	alg  string           // the only alg this key verifies
	key  crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	opts []jwt.ParserOption
}

// parseJWKS parses a JWK Set (RFC 7517, section 5) and returns the keys
// that verify one of the allowed algorithms, in document order. Keys it
// cannot use are skipped, each with a reason in skipped (for logs): keys
// of another type or curve, symmetric ("oct") keys, keys whose "use" is not
// "sig" or whose "key_ops" lacks "verify", keys that carry private
// material, keys whose "alg" is not allowed or does not suit the key, and
// malformed or weak keys. It fails if data is not a JWK Set, lists more
// than maxJWKSKeys keys, or has no usable key.
func parseJWKS(data []byte, allowed map[string]bool) (keys []jwksKey, skipped []string, err error) {
	var doc struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("not a JWK Set: %v", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New(`not a JWK Set: no "keys" array`)
	}
	raws := *doc.Keys
	if len(raws) > maxJWKSKeys {
		return nil, nil, fmt.Errorf("JWK Set has %d keys, more than %d", len(raws), maxJWKSKeys)
	}
	for i, raw := range raws {
		k, reason := parseJWK(raw, allowed)
		if reason != "" {
			name := fmt.Sprintf("keys[%d]", i)
			if k.kid != "" {
				name = fmt.Sprintf("keys[%d] (kid %q)", i, k.kid)
			}
			skipped = append(skipped, name+": "+reason)
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		if len(skipped) == 0 {
			return nil, nil, errors.New("JWK Set has no keys")
		}
		shown := skipped[:min(len(skipped), 3)]
		return nil, skipped, fmt.Errorf("JWK Set has no usable key (%s)", strings.Join(shown, "; "))
	}
	return keys, skipped, nil
}

// parseJWK returns the key raw describes, or a reason to skip it (with the
// key's kid, if known, in the returned jwksKey).
func parseJWK(raw json.RawMessage, allowed map[string]bool) (jwksKey, string) {
	var m jwkset.JWKMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return jwksKey{}, "malformed JWK"
	}
	k := jwksKey{kid: m.KID}
	switch {
	case m.KTY == jwkset.KtyOct:
		return k, "symmetric (oct) key ignored"
	case m.USE != "" && m.USE != jwkset.UseSig:
		return k, fmt.Sprintf("use %q is not sig", m.USE)
	case len(m.KEYOPS) > 0 && !slices.Contains(m.KEYOPS, jwkset.KeyOpsVerify):
		return k, "key_ops lacks verify"
	case m.D != "" || m.P != "" || m.Q != "":
		return k, "private key material published: key ignored"
	}
	k.alg = string(m.ALG)
	if k.alg == "" {
		if k.alg = defaultJWKAlg(m.KTY, m.CRV); k.alg == "" {
			return k, fmt.Sprintf("unsupported key type %q (curve %q)", m.KTY, m.CRV)
		}
	}
	kty, crv, ok := jwksKeyType(k.alg)
	switch {
	case !ok:
		return k, fmt.Sprintf("alg %q is not an asymmetric signature algorithm", k.alg)
	case !allowed[k.alg]:
		return k, fmt.Sprintf("alg %q is not in Algorithms", k.alg)
	case m.KTY != kty || m.CRV != crv:
		return k, fmt.Sprintf("alg %q does not suit a key of type %q (curve %q)", k.alg, m.KTY, m.CRV)
	}
	// jwkset decodes the key material and checks it: points on the curve,
	// sizes, and, if present, that x5c's first certificate holds this key.
	// It fetches nothing (x5u is not followed).
	parsed, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return k, "invalid key: " + strings.ReplaceAll(err.Error(), "\n", ": ") // errors.Join's lines
	}
	if k.key, err = checkJWKKey(parsed.Key()); err != nil {
		return k, err.Error()
	}
	return k, ""
}

// checkJWKKey checks a public key decoded by jwkset, whose type and curve
// already match its algorithm.
func checkJWKKey(key any) (crypto.PublicKey, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < MinRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, want %d to %d", bits, MinRSABits, maxRSABits)
		}
		if k.E < 3 || k.E%2 == 0 {
			return nil, errors.New("bad RSA public exponent")
		}
		return k, nil
	case *ecdsa.PublicKey:
		if _, err := k.Bytes(); err != nil {
			return nil, fmt.Errorf("bad EC key: %v", err)
		}
		return k, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key %T", key)
	}
}
