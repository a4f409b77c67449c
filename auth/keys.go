package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// Limits on keys. They apply to both [NewVerifier] and [Sign].
const (
	// MinSecretLen is the shortest HMAC secret accepted, in bytes. RFC 7518
	// (section 3.2) requires a key at least as long as the hash output: 32
	// bytes for HS256, 48 for HS384, 64 for HS512. Shorter secrets down to
	// MinSecretLen are accepted for existing deployments; generate new
	// secrets randomly, at the full size.
	MinSecretLen = 16
	// MinRSABits is the smallest RSA modulus accepted, in bits.
	MinRSABits = 2048
)

// algKind is the family of a supported "alg".
type algKind int

const (
	kindUnknown algKind = iota
	kindHMAC
	kindRSA
	kindECDSA
	kindEd25519
)

// kindOf reports the family of alg; kindUnknown for anything not supported
// (including "none", which is never accepted).
func kindOf(alg string) algKind {
	switch alg {
	case "HS256", "HS384", "HS512":
		return kindHMAC
	case "RS256":
		return kindRSA
	case "ES256":
		return kindECDSA
	case "EdDSA":
		return kindEd25519
	default:
		return kindUnknown
	}
}

// parsePublicKeyPEM parses the first PEM block of data: a PKIX "PUBLIC KEY",
// a PKCS #1 "RSA PUBLIC KEY" or a "CERTIFICATE" (only its public key is
// used; its validity period and chain are not checked).
func parsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "OPENSSH PRIVATE KEY":
		return nil, errors.New("PEM holds a private key; configure the public key only")
	default:
		return nil, fmt.Errorf("unsupported PEM block type %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
}

// checkPublicKey checks that pub suits alg and returns it in the form the
// jwt signing method expects.
func checkPublicKey(alg string, pub crypto.PublicKey) (any, error) {
	switch kindOf(alg) {
	case kindRSA:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return nil, fmt.Errorf("%s needs an *rsa.PublicKey, got %T", alg, pub)
		}
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("key has %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
		if k.N.Sign() < 0 || k.E < 3 || k.E%2 == 0 {
			return nil, errors.New("bad RSA key: negative modulus or bad public exponent")
		}
		return k, nil
	case kindECDSA:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil {
			return nil, fmt.Errorf("%s needs an *ecdsa.PublicKey, got %T", alg, pub)
		}
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s needs a P-256 key", alg)
		}
		//lint:ignore SA1019 k.Bytes panics on a key without coordinates: bad input must stay an error
		if k.X == nil || k.Y == nil {
			return nil, errors.New("bad ECDSA key: missing coordinates")
		}
		if _, err := k.Bytes(); err != nil {
			return nil, fmt.Errorf("bad ECDSA key: %v", err)
		}
		return k, nil
	case kindEd25519:
		switch k := pub.(type) {
		case ed25519.PublicKey:
			if len(k) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("key has %d bytes, want %d", len(k), ed25519.PublicKeySize)
			}
			return k, nil
		case *ed25519.PublicKey:
			if k != nil {
				return checkPublicKey(alg, *k)
			}
		}
		return nil, fmt.Errorf("%s needs an ed25519.PublicKey, got %T", alg, pub)
	default:
		return nil, fmt.Errorf("unsupported algorithm %q", alg)
	}
}
