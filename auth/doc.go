// Package auth verifies the JWT a client presents in its Socket.IO
// handshake, and finds that token in the handshake.
//
// It knows nothing about Socket.IO types: the server copies the handshake's
// auth payload, headers and query into a [Handshake], calls [ExtractToken],
// then [Verifier.Verify], and on error sends [Code](err) to the client, which
// socket.io-client shows as err.data.code in its connect_error handler:
//
//	var p auth.Principal
//	tok, err := auth.ExtractToken(hs, auth.ExtractOptions{})
//	if err == nil {
//		p, err = verifier.Verify(ctx, tok)
//	}
//	if err != nil {
//		logger.Info("handshake rejected", "err", err) // never contains the token
//		return connectError(auth.Code(err))          // token_missing, token_invalid or token_expired
//	}
//
// # Security
//
// Every key accepts exactly one algorithm (jwt.WithValidMethods with only
// that algorithm), so "alg": "none" and algorithm confusion (an HS256 token
// "signed" with an RSA public key) are rejected. Every token must carry
// "exp"; "nbf" and "iat" are checked when present; "iss" and "aud" are
// required when configured. Key URLs in headers (jku, x5u, jwk) are
// ignored: keys come only from [Config]. Tokens are limited to
// [MaxTokenLen] bytes of the JWT alphabet. Errors never contain token text.
//
// # Key rotation
//
// [Config.Keys] may hold several keys. A token's "kid" header selects the
// key with that [Key.ID]; a token with an unknown kid is rejected. To
// rotate, configure both keys, switch the issuer to the new one, and drop
// the old key after the longest token lifetime has passed:
//
//	v, err := auth.NewVerifier(auth.Config{
//		Keys: []auth.Key{
//			{ID: "2025-06", Algorithm: "RS256", PEM: oldPEM}, // still verifies old tokens
//			{ID: "2025-07", Algorithm: "ES256", PEM: newPEM}, // new tokens carry kid "2025-07"
//		},
//		Issuer:   "https://login.example.com/",
//		Audience: "herald",
//		Leeway:   30 * time.Second,
//	})
//
// Issuers that do not set "kid" can rotate HMAC secrets too: keys with an
// empty ID are all tried, in order, for tokens without a kid:
//
//	Keys: []auth.Key{
//		{Algorithm: "HS256", Secret: newSecret},
//		{Algorithm: "HS256", Secret: oldSecret},
//	}
//
// If no key has an empty ID, a token without a kid is tried against every
// key whose algorithm matches its "alg".
//
// # JWKS
//
// A [JWKSVerifier] takes its keys from each trusted issuer's JWK Set URL
// (RFC 7517), or from the jwks_uri of its OpenID Connect discovery
// document, instead of from [Config]:
//
//	v, err := auth.NewJWKSVerifier(ctx, auth.JWKSConfig{
//		Issuers: []auth.JWKSIssuer{
//			{Issuer: "https://login.example.com/", URL: "https://login.example.com/.well-known/jwks.json"},
//			{Issuer: "https://accounts.example.org", Discovery: true},
//		},
//		Audience: "herald",
//	})
//	...
//	defer v.Close()
//
// It verifies like a Verifier (same claim rules, same errors, same codes)
// and differs in how it finds the key:
//
//   - The token's "iss", read before the signature is checked, selects one
//     issuer (an unknown issuer is rejected); only that issuer's keys are
//     tried, and the verified claims must carry the same iss. Keys are
//     held per issuer, so a kid served by issuer B never verifies a token
//     of issuer A, even if A serves the same kid.
//   - The "kid" header selects the key. A token without a kid is accepted
//     only if the issuer's set has exactly one key.
//   - Each key verifies exactly one algorithm: its JWK "alg", or, without
//     one, RS256 for RSA, ES256, ES384 or ES512 by curve for EC, EdDSA for
//     Ed25519; it must be in [JWKSConfig.Algorithms]. A token whose "alg"
//     differs is rejected, as are "none" and the HS* algorithms; symmetric
//     ("oct") keys, keys for encryption, keys with private material, and
//     RSA keys under [MinRSABits] in a set are ignored.
//
// Keys are fetched by NewJWKSVerifier, then every RefreshInterval (1 hour)
// in the background, so that a key the issuer removed stops verifying. A
// token with an unknown kid (the issuer may have rotated keys) makes
// Verify fetch its issuer's set again, at most once per MinRefetchInterval
// (1 minute) per issuer; concurrent calls share one fetch, so random kids
// cannot make the verifier hammer the issuer. Each fetch is bounded by
// FetchTimeout (10 s) and MaxResponseBytes (1 MiB). A failed fetch (the
// endpoint down, slow, answering an error, too much or no usable JWK Set)
// keeps the cached keys, logs a warning, and is retried after
// MinRefetchInterval. NewJWKSVerifier does not fail when its first fetch
// does: the issuer's tokens are rejected until its keys load (the error
// wraps [ErrKeysUnavailable] for the logs, the client sees token_invalid).
// Call [JWKSVerifier.Refresh] to require keys at start-up.
//
// The fetching is this package's own; github.com/MicahParks/jwkset decodes
// and checks each JWK. MicahParks/keyfunc was not used: it looks keys up
// by kid across all URLs at once (issuer B's key could verify issuer A's
// token), reads responses without a size limit, and its refresh goroutine
// cannot be waited for on Close (jwks_fetch.go has the whole list).
//
// # Concurrency
//
// A [Verifier] is immutable once [NewVerifier] returns and safe for
// concurrent use; [ExtractToken], [Sign], [NewHMACToken] and [Code] are
// safe for concurrent use too. None of them starts a goroutine, does I/O
// or holds resources, so there is nothing to close. To change keys at run
// time, build a new Verifier and swap it in (for example with an
// atomic.Pointer[auth.Verifier]).
//
// A [JWKSVerifier] is safe for concurrent use. It is the one type here
// that starts goroutines (one per issuer for the background refresh, and
// one per fetch in flight) and does I/O (with its own HTTP client unless
// [JWKSConfig.HTTPClient] is set; a client passed in is never closed).
// [JWKSVerifier.Close] stops them and waits for them; call it when the
// server that uses the verifier has shut down. Verify keeps working after
// Close with the keys already fetched.
package auth
