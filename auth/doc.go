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
// # Concurrency
//
// A [Verifier] is immutable once [NewVerifier] returns and safe for
// concurrent use; [ExtractToken], [Sign], [NewHMACToken] and [Code] are
// safe for concurrent use too. Nothing in this package starts a goroutine,
// does I/O or holds resources, so there is nothing to close or shut down.
// To change keys at run time, build a new Verifier and swap it in (for
// example with an atomic.Pointer[auth.Verifier]).
package auth
