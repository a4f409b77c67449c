package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/herald-rt/herald/auth"
)

func TestExtractToken(t *testing.T) {
	const (
		tokA = "aaa.bbb.ccc"
		tokH = "hhh.iii.jjj"
		tokQ = "qqq.rrr.sss"
	)
	hdr := func(values ...string) http.Header { return http.Header{"Authorization": values} }
	query := url.Values{"token": {tokQ}}
	withQuery := auth.ExtractOptions{QueryParam: "token"}
	maxTok := strings.Repeat("a", auth.MaxTokenLen)

	tests := []struct {
		name string
		hs   auth.Handshake
		opts auth.ExtractOptions
		want string // the token; "" when err is expected
		err  error
	}{
		{name: "nothing", err: auth.ErrTokenMissing},
		{name: "nothing, query enabled", opts: withQuery, err: auth.ErrTokenMissing},

		// Handshake auth.
		{name: "auth token", hs: auth.Handshake{Auth: map[string]any{"token": tokA}}, want: tokA},
		{name: "auth token trimmed", hs: auth.Handshake{Auth: map[string]any{"token": " \t" + tokA + "\n "}}, want: tokA},
		{name: "auth wins over header and query", hs: auth.Handshake{Auth: map[string]any{"token": tokA}, Header: hdr("Bearer " + tokH), Query: query}, opts: withQuery, want: tokA},
		{name: "auth number", hs: auth.Handshake{Auth: map[string]any{"token": 42.0}, Header: hdr("Bearer " + tokH)}, err: auth.ErrTokenInvalid},
		{name: "auth bool", hs: auth.Handshake{Auth: map[string]any{"token": true}}, err: auth.ErrTokenInvalid},
		{name: "auth object", hs: auth.Handshake{Auth: map[string]any{"token": map[string]any{"jwt": tokA}}}, err: auth.ErrTokenInvalid},
		{name: "auth array", hs: auth.Handshake{Auth: map[string]any{"token": []any{tokA}}}, err: auth.ErrTokenInvalid},
		{name: "auth []byte", hs: auth.Handshake{Auth: map[string]any{"token": []byte(tokA)}}, err: auth.ErrTokenInvalid},
		{name: "auth null falls through", hs: auth.Handshake{Auth: map[string]any{"token": nil}, Header: hdr("Bearer " + tokH)}, want: tokH},
		{name: "auth empty falls through", hs: auth.Handshake{Auth: map[string]any{"token": ""}, Header: hdr("Bearer " + tokH)}, want: tokH},
		{name: "auth blank falls through", hs: auth.Handshake{Auth: map[string]any{"token": "   "}, Header: hdr("Bearer " + tokH)}, want: tokH},
		{name: "auth blank alone", hs: auth.Handshake{Auth: map[string]any{"token": "   "}}, err: auth.ErrTokenMissing},
		{name: "auth other keys only", hs: auth.Handshake{Auth: map[string]any{"jwt": tokA}}, err: auth.ErrTokenMissing},
		{name: "auth bad characters", hs: auth.Handshake{Auth: map[string]any{"token": "aaa.b$b.ccc"}, Header: hdr("Bearer " + tokH)}, err: auth.ErrTokenInvalid},
		{name: "auth inner space", hs: auth.Handshake{Auth: map[string]any{"token": "aaa bbb"}}, err: auth.ErrTokenInvalid},
		{name: "auth Bearer prefix", hs: auth.Handshake{Auth: map[string]any{"token": "Bearer " + tokA}}, err: auth.ErrTokenInvalid},
		{name: "auth padding", hs: auth.Handshake{Auth: map[string]any{"token": tokA + "=="}}, err: auth.ErrTokenInvalid},
		{name: "auth non-ASCII", hs: auth.Handshake{Auth: map[string]any{"token": "aaa.bbb.ccé"}}, err: auth.ErrTokenInvalid},
		{name: "auth NUL", hs: auth.Handshake{Auth: map[string]any{"token": "aaa.bbb\x00.ccc"}}, err: auth.ErrTokenInvalid},
		{name: "auth max size", hs: auth.Handshake{Auth: map[string]any{"token": maxTok}}, want: maxTok},
		{name: "auth oversize", hs: auth.Handshake{Auth: map[string]any{"token": maxTok + "a"}}, err: auth.ErrTokenInvalid},

		// Authorization header.
		{name: "bearer", hs: auth.Handshake{Header: hdr("Bearer " + tokH)}, want: tokH},
		{name: "bearer lower case", hs: auth.Handshake{Header: hdr("bearer " + tokH)}, want: tokH},
		{name: "bearer upper case", hs: auth.Handshake{Header: hdr("BEARER " + tokH)}, want: tokH},
		{name: "bearer mixed case", hs: auth.Handshake{Header: hdr("bEaReR " + tokH)}, want: tokH},
		{name: "bearer extra spaces", hs: auth.Handshake{Header: hdr("  Bearer   " + tokH + "  ")}, want: tokH},
		{name: "bearer tab", hs: auth.Handshake{Header: hdr("Bearer\t" + tokH)}, want: tokH},
		{name: "bearer wins over query", hs: auth.Handshake{Header: hdr("Bearer " + tokH), Query: query}, opts: withQuery, want: tokH},
		{name: "basic ignored", hs: auth.Handshake{Header: hdr("Basic dXNlcjpwYXNz")}, err: auth.ErrTokenMissing},
		{name: "basic ignored, query used", hs: auth.Handshake{Header: hdr("Basic dXNlcjpwYXNz"), Query: query}, opts: withQuery, want: tokQ},
		{name: "basic then bearer", hs: auth.Handshake{Header: hdr("Basic dXNlcjpwYXNz", "Bearer "+tokH)}, want: tokH},
		{name: "scheme only", hs: auth.Handshake{Header: hdr("Bearer")}, err: auth.ErrTokenMissing},
		{name: "scheme and spaces", hs: auth.Handshake{Header: hdr("Bearer   ")}, err: auth.ErrTokenMissing},
		{name: "no separator", hs: auth.Handshake{Header: hdr("Bearer" + tokH)}, err: auth.ErrTokenMissing},
		{name: "bare token", hs: auth.Handshake{Header: hdr(tokH)}, err: auth.ErrTokenMissing},
		{name: "empty header", hs: auth.Handshake{Header: hdr("")}, err: auth.ErrTokenMissing},
		{name: "non-canonical header key", hs: auth.Handshake{Header: http.Header{"authorization": {"Bearer " + tokH}}}, want: tokH},
		{name: "canonical key first", hs: auth.Handshake{Header: http.Header{"authorization": {"Bearer " + tokA}, "Authorization": {"Bearer " + tokH}}}, want: tokH},
		{name: "other header", hs: auth.Handshake{Header: http.Header{"X-Token": {tokH}}}, err: auth.ErrTokenMissing},
		{name: "bearer bad characters", hs: auth.Handshake{Header: hdr("Bearer hhh.i/i.jjj")}, err: auth.ErrTokenInvalid},
		{name: "bearer two tokens", hs: auth.Handshake{Header: hdr("Bearer " + tokH + " " + tokA)}, err: auth.ErrTokenInvalid},
		{name: "bearer oversize", hs: auth.Handshake{Header: hdr("Bearer " + maxTok + "a")}, err: auth.ErrTokenInvalid},

		// Query.
		{name: "query not used by default", hs: auth.Handshake{Query: query}, err: auth.ErrTokenMissing},
		{name: "query opted in", hs: auth.Handshake{Query: query}, opts: withQuery, want: tokQ},
		{name: "query other name", hs: auth.Handshake{Query: query}, opts: auth.ExtractOptions{QueryParam: "access_token"}, err: auth.ErrTokenMissing},
		{name: "query empty", hs: auth.Handshake{Query: url.Values{"token": {""}}}, opts: withQuery, err: auth.ErrTokenMissing},
		{name: "query trimmed", hs: auth.Handshake{Query: url.Values{"token": {" " + tokQ + " "}}}, opts: withQuery, want: tokQ},
		{name: "query bad characters", hs: auth.Handshake{Query: url.Values{"token": {"qqq.r+r.sss"}}}, opts: withQuery, err: auth.ErrTokenInvalid},
		{name: "query first value", hs: auth.Handshake{Query: url.Values{"token": {tokQ, tokA}}}, opts: withQuery, want: tokQ},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := auth.ExtractToken(tc.hs, tc.opts)
			checkErr(t, err, tc.err, tc.want)
			if tc.err != nil {
				if got != "" {
					t.Errorf("token = %q with an error, want empty", got)
				}
				for _, secret := range []string{tokA, tokH, tokQ} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("err %q contains a token", err)
					}
				}
				return
			}
			if got != tc.want {
				t.Errorf("token = %q, want %q", got, tc.want)
			}
		})
	}
}
