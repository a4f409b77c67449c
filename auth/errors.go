package auth

import (
	"errors"
	"fmt"
)

// Error codes sent to clients. socket.io-client exposes them as
// err.data.code in its connect_error handler. They are safe to show: they
// never carry token text or internal error strings.
const (
	// CodeTokenMissing: the handshake carried no token. The client should
	// log in (or attach its token) and connect again.
	CodeTokenMissing = "token_missing"
	// CodeTokenInvalid: the token was rejected for good (bad signature,
	// wrong issuer, malformed, ...). Retrying with the same token is useless.
	CodeTokenInvalid = "token_invalid"
	// CodeTokenExpired: the token was valid but has expired. The client
	// should refresh it and connect again.
	CodeTokenExpired = "token_expired"
)

// Sentinel errors. Errors returned by [Verifier.Verify],
// [JWKSVerifier.Verify] and [ExtractToken] wrap exactly one of
// ErrTokenMissing, ErrTokenInvalid or ErrTokenExpired; errors returned by
// [NewVerifier] and [NewJWKSVerifier] wrap ErrInvalidConfig. Test for them
// with [errors.Is].
var (
	ErrTokenMissing  = errors.New("auth: token missing")
	ErrTokenInvalid  = errors.New("auth: token invalid")
	ErrTokenExpired  = errors.New("auth: token expired")
	ErrInvalidConfig = errors.New("auth: invalid config")

	// ErrKeysUnavailable: a JWK Set could not be fetched (the endpoint is
	// down, slow, answered with an error, a body too large or not a usable
	// JWK Set). [JWKSVerifier.Refresh] returns it, and
	// [JWKSVerifier.Verify] wraps it, next to ErrTokenInvalid, when it
	// rejects a token because its issuer's keys never loaded or a refetch
	// for its unknown kid failed: the client sees token_invalid, the logs
	// see why.
	ErrKeysUnavailable = errors.New("auth: keys unavailable")
)

// Code maps an error returned by [Verifier.Verify], [JWKSVerifier.Verify]
// or [ExtractToken] to the code to send to the client: [CodeTokenMissing],
// [CodeTokenExpired] or [CodeTokenInvalid]. Any other non-nil error maps to
// CodeTokenInvalid, so a client never sees an internal error. Code(nil) is
// "".
func Code(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrTokenMissing):
		return CodeTokenMissing
	case errors.Is(err, ErrTokenExpired):
		return CodeTokenExpired
	default:
		return CodeTokenInvalid
	}
}

// invalid returns ErrTokenInvalid with a short reason for logs. reason is
// always one of our own constant strings, never text taken from the token.
func invalid(reason string) error {
	return fmt.Errorf("%w: %s", ErrTokenInvalid, reason)
}
