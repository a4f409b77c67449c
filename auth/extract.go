package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MaxTokenLen is the longest token accepted, in bytes (8 KiB). Longer
// tokens are rejected before any decoding.
const MaxTokenLen = 8 << 10

// Handshake is the part of a Socket.IO handshake a token can come from.
type Handshake struct {
	// Auth is the handshake auth payload (socket.io-client's `auth` option,
	// e.g. io(url, {auth: {token}})). May be nil.
	Auth map[string]any
	// Header holds the HTTP headers of the handshake request. May be nil.
	// Keys need not be canonical.
	Header http.Header
	// Query holds the handshake URL's query parameters. May be nil.
	Query url.Values
}

// ExtractOptions configures [ExtractToken]. The zero value reads the auth
// payload and the Authorization header only.
type ExtractOptions struct {
	// QueryParam is the query parameter that may carry the token, e.g.
	// "token". "" (the default) means the query string is never used:
	// URLs end up in access logs and browser history, so opt in only for
	// clients that cannot set auth or headers.
	QueryParam string
}

// ExtractToken finds the token in a handshake. It looks, in order, at:
//
//  1. h.Auth["token"], which must be a string if present and not null (any
//     other type is rejected with [ErrTokenInvalid]);
//  2. the Authorization header "Bearer <token>" (the scheme is matched
//     case-insensitively; other schemes such as Basic are ignored);
//  3. the query parameter opts.QueryParam, if set.
//
// Surrounding white space is trimmed, and an empty value counts as absent,
// so the next source is tried. If no source has a token the error wraps
// [ErrTokenMissing]. A token longer than [MaxTokenLen] or with characters
// outside the JWT alphabet [A-Za-z0-9_.-] gives [ErrTokenInvalid]. Errors
// never contain the token text.
//
// ExtractToken does not verify the token; pass it to [Verifier.Verify].
// It only reads h and is safe for concurrent use.
func ExtractToken(h Handshake, opts ExtractOptions) (string, error) {
	if raw, ok := h.Auth["token"]; ok && raw != nil {
		s, ok := raw.(string)
		if !ok {
			return "", invalid("auth token is not a string")
		}
		if tok := strings.TrimSpace(s); tok != "" {
			return found(tok)
		}
	}
	if tok := bearer(h.Header); tok != "" {
		return found(tok)
	}
	if opts.QueryParam != "" {
		if tok := strings.TrimSpace(h.Query.Get(opts.QueryParam)); tok != "" {
			return found(tok)
		}
	}
	return "", fmt.Errorf("%w: no token in auth, Authorization header or query", ErrTokenMissing)
}

// found checks the syntax of a token found in the handshake.
func found(tok string) (string, error) {
	if err := checkSyntax(tok); err != nil {
		return "", err
	}
	return tok, nil
}

// bearer returns the trimmed token of the first "Bearer" Authorization
// header value, or "". The canonical key "Authorization" is read first, then
// any other spelling in sorted order, so maps built without
// http.CanonicalHeaderKey work too.
func bearer(header http.Header) string {
	names := []string{"Authorization"}
	var others []string
	for name := range header {
		if name != "Authorization" && strings.EqualFold(name, "Authorization") {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range append(names, others...) {
		for _, v := range header[name] {
			v = strings.TrimSpace(v)
			i := strings.IndexAny(v, " \t")
			if i < 0 || !strings.EqualFold(v[:i], "Bearer") {
				continue
			}
			if tok := strings.TrimSpace(v[i+1:]); tok != "" {
				return tok
			}
		}
	}
	return ""
}

// checkSyntax rejects tokens longer than MaxTokenLen or with characters
// outside the base64url alphabet and ".".
func checkSyntax(tok string) error {
	if len(tok) > MaxTokenLen {
		return invalid("token longer than 8 KiB")
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return invalid("token has characters outside the JWT alphabet")
		}
	}
	return nil
}
