package socketio_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/herald-rt/herald/socketio"
)

func handshake(t *testing.T, url, origin string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/socket.io/?EIO=4&transport=polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func TestOrigins(t *testing.T) {
	same := startServer(t, socketio.Config{})
	listed := startServer(t, socketio.Config{AllowedOrigins: []string{"https://app.example.com"}})
	wildcard := startServer(t, socketio.Config{AllowedOrigins: []string{"*"}})
	cases := []struct {
		name       string
		srv        *testServer
		origin     string
		wantStatus int
	}{
		{"no origin (server-side client)", same, "", 200},
		{"same origin", same, same.URL, 200},
		{"other origin refused by default", same, "https://evil.example", 403},
		{"malformed origin", same, "::not a url", 403},
		{"listed origin", listed, "https://app.example.com", 200},
		{"listed origin, other case", listed, "https://APP.example.com", 200},
		{"unlisted origin", listed, "https://evil.example", 403},
		{"wildcard", wildcard, "https://whatever.example", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := handshake(t, tc.srv.URL, tc.origin)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", status, tc.wantStatus, body)
			}
			switch {
			case status == 200 && !strings.HasPrefix(body, "0{"):
				t.Fatalf("no Engine.IO open packet: %q", body)
			case status == 403 && !strings.Contains(body, "origin_not_allowed"):
				t.Fatalf("403 body %q", body)
			}
			if tc.srv == listed && status == 200 && header.Get("Access-Control-Allow-Origin") != tc.origin {
				t.Fatalf("Access-Control-Allow-Origin = %q", header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
}

func TestNotSocketIOPath(t *testing.T) {
	ts := startServer(t, socketio.Config{})
	resp, err := http.Get(ts.URL + "/socket.io")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The mux redirects or the server answers; it never hangs or panics.
	if resp.StatusCode >= 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
