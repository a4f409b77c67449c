package engineio_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/herald-rt/herald/socketio/engineio"
)

func TestPollingInvalidUTF8(t *testing.T) {
	// Node reads a POST body as UTF-8 text: each maximal ill-formed
	// subsequence becomes one U+FFFD (TestLikeNode compares more).
	tests := []struct{ body, want string }{
		{"4a\xffb", "a\uFFFDb"},
		{"4\xff\xfe", "\uFFFD\uFFFD"},
		{"4\xe2\x82b", "\uFFFDb"},               // a truncated sequence is one
		{"4\xf0\x9f\x98", "\uFFFD"},             // at the end too
		{"4\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // a surrogate is three
		{"4\xc0\xaf", "\uFFFD\uFFFD"},           // so is an overlong form
		{"4\xef\xbf\xbd", "\uFFFD"},             // U+FFFD itself is valid
		{"4ok ✓", "ok ✓"},
	}
	e := newEnv(t, engineio.Config{})
	sid := e.handshake()
	rec := e.rec(sid)
	for _, tc := range tests {
		expectReply(t, "POST", e.post(poll(sid), tc.body), 200, "ok")
		if c := rec.waitMessage(t); c != (call{data: tc.want}) {
			t.Errorf("POST %q: handler got %v, want %q", tc.body, c, tc.want)
		}
		expectReply(t, "GET", e.get(poll(sid)), 200, "4"+tc.want)
	}
}

// FuzzPollingPayload posts arbitrary bodies to a session: the server
// answers as the protocol says, never panics, and hands the handler only
// UTF-8 text.
func FuzzPollingPayload(f *testing.F) {
	for _, seed := range []string{
		"4hello", "4a\x1e4b", "bAQID", "b", "1", "2", "3", "abc", "", "\x1e", "4\xff", "bAQ", "b!!!",
		"4a\x1e1\x1e4b", "6\x1e5\x1e0", "4\xe2\x82\x1e4x",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		h := &collector{}
		srv, err := engineio.NewServer(engineio.Config{
			OnSession:         func(*engineio.Session) engineio.Handler { return h },
			MaxPayload:        1 << 16,
			MaxPayloadPackets: 100,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close(context.Background())
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/engine.io/?EIO=4&transport=polling", nil))
		sid := parseOpen(t, w.Body.String()).SID
		w = httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/engine.io/?"+poll(sid), strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		srv.ServeHTTP(w, req)
		switch {
		case w.Code == 200 && w.Body.String() == "ok":
		case w.Code == 400 && strings.Count(body, "\x1e") >= 100: // MaxPayloadPackets
		case w.Code == 413 && len(body) > 1<<16:
		default:
			t.Fatalf("POST %q: %d %q", body, w.Code, w.Body.String())
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, m := range h.msgs {
			if !m.binary && !utf8.ValidString(m.data) {
				t.Errorf("POST %q: handler got invalid UTF-8 %q", body, m.data)
			}
		}
	})
}

// collector is a Handler that keeps what it receives.
type collector struct {
	mu   sync.Mutex
	msgs []call
}

func (c *collector) OnMessage(s *engineio.Session, data []byte, binary bool) {
	c.mu.Lock()
	c.msgs = append(c.msgs, call{data: string(data), binary: binary})
	c.mu.Unlock()
}

func (c *collector) OnClose(*engineio.Session, string) {}
