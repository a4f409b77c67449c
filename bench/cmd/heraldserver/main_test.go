package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/herald-rt/herald/auth"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testSecret = []byte("bench-test-secret-0123456789")

// startBench serves a one-node bench server on a loopback httptest server
// and shuts both down when the test ends.
func startBench(t *testing.T) *httptest.Server {
	t.Helper()
	b, err := newBenchServer(config{Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(b.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		ts.Close()
	})
	return ts
}

// do sends a request and decodes the JSON answer into a map.
func do(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if res.Header.Get("Content-Type") == "application/json" {
		if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return res.StatusCode, m
}

func TestEmitBadInput(t *testing.T) {
	ts := startBench(t)
	tests := []struct{ name, body, errPrefix string }{
		{"empty body", ``, "body:"},
		{"malformed", `{"count":`, "body:"},
		{"not an object", `[1]`, "body:"},
		{"fraction", `{"to":1,"count":1.5}`, "body:"},
		{"string number", `{"to":1,"count":"2"}`, "body:"},
		{"to before from", `{"from":5,"to":1,"count":1}`, "to:"},
		{"count missing", `{"to":10}`, "count:"},
		{"count zero", `{"to":10,"count":0}`, "count:"},
		{"count negative", `{"to":10,"count":-1}`, "count:"},
		{"too many", `{"to":1000001,"count":10}`, "count*(to-from):"},
		{"span too wide", `{"to":10000001,"count":1}`, "count*(to-from):"},
		{"span overflows", `{"from":-9000000000000000000,"to":9000000000000000000,"count":1}`, "count*(to-from):"},
		{"product overflows", `{"to":2,"count":9000000000000000000}`, "count*(to-from):"},
		{"count alone too big", `{"to":0,"count":10000001}`, "count*(to-from):"},
		{"negative pad", `{"to":1,"count":1,"pad":-1}`, "pad:"},
		{"huge pad", `{"to":1,"count":1,"pad":1048577}`, "pad:"},
		{"negative seq", `{"to":1,"count":1,"seq":-1}`, "seq:"},
		{"huge seq", `{"to":1,"count":1,"seq":1000000001}`, "seq:"},
		{"fractional seq", `{"to":1,"count":1,"seq":0.5}`, "body:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := do(t, http.MethodPost, ts.URL+"/bench/emit", tt.body)
			msg, _ := m["error"].(string)
			if status != http.StatusBadRequest || !strings.HasPrefix(msg, tt.errPrefix) {
				t.Errorf("POST %s: %d %v, want 400 with an error starting %q", tt.body, status, m, tt.errPrefix)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		if status, _ := do(t, http.MethodGet, ts.URL+"/bench/emit", ""); status != http.StatusMethodNotAllowed {
			t.Errorf("GET /bench/emit: %d, want 405", status)
		}
	})
}

func TestEmitToNobody(t *testing.T) {
	ts := startBench(t)
	status, m := do(t, http.MethodPost, ts.URL+"/bench/emit", `{"prefix":"u","from":0,"to":50,"count":2,"pad":3}`)
	if status != http.StatusOK || m["emitted"] != 100.0 {
		t.Fatalf("POST /bench/emit: %d %v, want 200 with emitted 100", status, m)
	}
	if took, ok := m["tookUs"].(float64); !ok || took < 0 {
		t.Errorf("tookUs = %v, want a number >= 0", m["tookUs"])
	}
}

func TestStatsAndRuntimeShape(t *testing.T) {
	ts := startBench(t)
	status, m := do(t, http.MethodGet, ts.URL+"/api/v1/websocket/stats", "")
	data, _ := m["data"].(map[string]any)
	if status != http.StatusOK || m["success"] != true || data == nil {
		t.Fatalf("stats: %d %v, want 200 {success:true, data:{..}}", status, m)
	}
	for _, k := range []string{"connected", "users"} {
		if v, ok := data[k].(float64); !ok || v != 0 {
			t.Errorf("stats data.%s = %v, want 0", k, data[k])
		}
	}

	status, m = do(t, http.MethodGet, ts.URL+"/bench/runtime", "")
	if status != http.StatusOK {
		t.Fatalf("runtime: %d %v", status, m)
	}
	if keys := slices.Sorted(maps.Keys(m)); !slices.Equal(keys, []string{"goroutines", "heapInuse", "rss"}) {
		t.Errorf("runtime keys %v, want goroutines, heapInuse, rss", keys)
	}
	for _, k := range []string{"goroutines", "heapInuse", "rss"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("runtime %s = %v, want a positive number", k, m[k])
		}
	}
}

// dial opens a raw Engine.IO v4 WebSocket and sends the Socket.IO CONNECT
// with token; it returns the connection and the server's answer.
func dial(t *testing.T, ts *httptest.Server, token string) (*websocket.Conn, string) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A deadline against a hung test, not a measurement.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if msg := read(t, conn); !strings.HasPrefix(msg, "0{") {
		t.Fatalf("open packet %q", msg)
	}
	if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `40{"token":%q}`, token)); err != nil {
		t.Fatal(err)
	}
	return conn, read(t, conn)
}

func read(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	_, msg, err := conn.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(msg)
}

// readEvent reads the next Socket.IO event, skipping pings.
func readEvent(t *testing.T, conn *websocket.Conn) (string, map[string]json.RawMessage) {
	t.Helper()
	for {
		msg := read(t, conn)
		if msg == "2" {
			_ = conn.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		var ev []json.RawMessage
		if !strings.HasPrefix(msg, "42") || json.Unmarshal([]byte(msg[2:]), &ev) != nil || len(ev) != 2 {
			t.Fatalf("want an event with one payload, got %q", msg)
		}
		var name string
		var payload map[string]json.RawMessage
		if json.Unmarshal(ev[0], &name) != nil || json.Unmarshal(ev[1], &payload) != nil {
			t.Fatalf("want an event with one object payload, got %q", msg)
		}
		return name, payload
	}
}

func TestRoundTrip(t *testing.T) {
	ts := startBench(t)

	if _, answer := dial(t, ts, "not-a-token"); !strings.HasPrefix(answer, "44") || !strings.Contains(answer, `"unauthorized"`) {
		t.Errorf("invalid token: %q, want 44 connect_error unauthorized", answer)
	}

	token, err := auth.NewHMACToken(testSecret, "u1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conn, answer := dial(t, ts, token)
	if !strings.HasPrefix(answer, `40{"sid":`) {
		t.Fatalf("valid token: %q, want 40{\"sid\":..}", answer)
	}
	// herald greets every accepted socket; the Node server does too.
	if name, _ := readEvent(t, conn); name != "authenticated" {
		t.Fatalf("first event %q, want authenticated", name)
	}

	status, m := do(t, http.MethodPost, ts.URL+"/bench/emit", `{"prefix":"u","from":0,"to":3,"count":3,"pad":4}`)
	if status != http.StatusOK || m["emitted"] != 9.0 {
		t.Fatalf("POST /bench/emit: %d %v, want 200 with emitted 9", status, m)
	}
	// u1 gets seq 0, 1, 2 in order; u0 and u2 are not connected.
	for seq := range 3 {
		name, p := readEvent(t, conn)
		if name != "bench" {
			t.Fatalf("event %q, want bench", name)
		}
		if keys := slices.Sorted(maps.Keys(p)); !slices.Equal(keys, []string{"pad", "sentAt", "seq", "timestamp"}) {
			t.Errorf("payload keys %v, want pad, sentAt, seq, timestamp", keys)
		}
		var got struct {
			Seq       int       `json:"seq"`
			SentAt    int64     `json:"sentAt"`
			Pad       string    `json:"pad"`
			Timestamp time.Time `json:"timestamp"`
		}
		raw, _ := json.Marshal(p)
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.Seq != seq || got.Pad != "xxxx" || got.SentAt <= 0 || got.Timestamp.IsZero() {
			t.Errorf("payload %s, want seq %d, pad xxxx, a sentAt and a timestamp", raw, seq)
		}
	}

	status, m = do(t, http.MethodGet, ts.URL+"/api/v1/websocket/stats", "")
	if data, _ := m["data"].(map[string]any); status != http.StatusOK || data["connected"] != 1.0 || data["users"] != 1.0 {
		t.Errorf("stats with one socket: %d %v, want connected 1, users 1", status, m)
	}
}

// "seq" numbers the rounds from the given start: a closed-loop client POSTs
// one round at a time with seq = round.
func TestEmitSeq(t *testing.T) {
	ts := startBench(t)
	token, err := auth.NewHMACToken(testSecret, "u0", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	conn, answer := dial(t, ts, token)
	if !strings.HasPrefix(answer, `40{"sid":`) {
		t.Fatalf("valid token: %q, want 40{\"sid\":..}", answer)
	}
	if name, _ := readEvent(t, conn); name != "authenticated" {
		t.Fatalf("first event %q, want authenticated", name)
	}
	for _, body := range []string{`{"prefix":"u","to":1,"count":2,"seq":7}`, `{"prefix":"u","to":1,"count":1}`} {
		if status, m := do(t, http.MethodPost, ts.URL+"/bench/emit", body); status != http.StatusOK {
			t.Fatalf("POST %s: %d %v", body, status, m)
		}
	}
	for _, want := range []string{"7", "8", "0"} {
		name, p := readEvent(t, conn)
		if name != "bench" || string(p["seq"]) != want {
			t.Errorf("event %s seq %s, want bench seq %s", name, p["seq"], want)
		}
	}
}
