package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/internal/devsecret"
)

func TestConfigFromEnv(t *testing.T) {
	const secret = "a-secret-of-at-least-32-bytes!!!"
	prefixes := func(s ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, p := range s {
			ps = append(ps, netip.MustParsePrefix(p))
		}
		return ps
	}
	tests := []struct {
		name      string
		env       map[string]string
		want      envConfig // Addr and Bundle default when ""; a secret is added
		redisAddr string    // want.Redis.Addr; "" = no Redis
		wantErr   []string  // each in the error; nil = no error
	}{
		{name: "nothing set", env: map[string]string{}, want: envConfig{App: appConfig{DevMode: true}}},
		{name: "address", env: map[string]string{"HERALD_ADDR": ":8080"}, want: envConfig{Addr: ":8080", App: appConfig{DevMode: true}}},
		{name: "secret", env: map[string]string{"HERALD_JWT_SECRET": secret}, want: envConfig{App: appConfig{Secret: []byte(secret)}}},

		{name: "default parser", env: map[string]string{"HERALD_PARSER": "default"}, want: envConfig{App: appConfig{DevMode: true}}},
		{name: "msgpack parser", env: map[string]string{"HERALD_PARSER": "msgpack"}, want: envConfig{Bundle: "socket.io.msgpack.min.js", App: appConfig{DevMode: true, Parser: "msgpack"}}},
		{name: "unknown parser", env: map[string]string{"HERALD_PARSER": "json"}, wantErr: []string{`HERALD_PARSER: "json" is neither "default" nor "msgpack"`}},

		{name: "recovery", env: map[string]string{"HERALD_RECOVERY": "2m"}, want: envConfig{App: appConfig{DevMode: true, Recovery: 2 * time.Minute}}},
		{name: "bad recovery", env: map[string]string{"HERALD_RECOVERY": "soon"}, wantErr: []string{"HERALD_RECOVERY: ", `"soon"`}},

		{name: "ping", env: map[string]string{"HERALD_PING_INTERVAL": "500ms", "HERALD_PING_TIMEOUT": "500ms"}, want: envConfig{App: appConfig{DevMode: true, PingInterval: 500 * time.Millisecond, PingTimeout: 500 * time.Millisecond}}},
		{name: "ping zero", env: map[string]string{"HERALD_PING_INTERVAL": "0", "HERALD_PING_TIMEOUT": "0s"}, want: envConfig{App: appConfig{DevMode: true}}},
		{name: "ping interval no unit", env: map[string]string{"HERALD_PING_INTERVAL": "500"}, wantErr: []string{"HERALD_PING_INTERVAL: ", "missing unit"}},
		{name: "ping interval garbage", env: map[string]string{"HERALD_PING_INTERVAL": "fast"}, wantErr: []string{"HERALD_PING_INTERVAL: "}},
		{name: "ping interval negative", env: map[string]string{"HERALD_PING_INTERVAL": "-1s"}, wantErr: []string{"HERALD_PING_INTERVAL: -1s is negative"}},
		{name: "ping timeout garbage", env: map[string]string{"HERALD_PING_TIMEOUT": "1 second"}, wantErr: []string{"HERALD_PING_TIMEOUT: "}},
		{name: "ping timeout negative", env: map[string]string{"HERALD_PING_TIMEOUT": "-500ms"}, wantErr: []string{"HERALD_PING_TIMEOUT: -500ms is negative"}},

		{name: "handshake rate", env: map[string]string{"HERALD_HANDSHAKE_RATE": "10"}, want: envConfig{App: appConfig{DevMode: true, HandshakeRate: 10}}},
		{name: "handshake rate unlimited", env: map[string]string{"HERALD_HANDSHAKE_RATE": "-1"}, want: envConfig{App: appConfig{DevMode: true, HandshakeRate: -1}}},
		{name: "handshake rate default", env: map[string]string{"HERALD_HANDSHAKE_RATE": "0"}, want: envConfig{App: appConfig{DevMode: true}}},
		{name: "handshake rate below -1", env: map[string]string{"HERALD_HANDSHAKE_RATE": "-2"}, wantErr: []string{"HERALD_HANDSHAKE_RATE: -2: want"}},
		{name: "handshake rate word", env: map[string]string{"HERALD_HANDSHAKE_RATE": "ten"}, wantErr: []string{`HERALD_HANDSHAKE_RATE: "ten" is not an integer`}},
		{name: "handshake rate fraction", env: map[string]string{"HERALD_HANDSHAKE_RATE": "1.5"}, wantErr: []string{`HERALD_HANDSHAKE_RATE: "1.5" is not an integer`}},
		{name: "handshake rate overflow", env: map[string]string{"HERALD_HANDSHAKE_RATE": "99999999999999999999"}, wantErr: []string{"HERALD_HANDSHAKE_RATE: "}},

		{name: "trusted proxies", env: map[string]string{"HERALD_TRUSTED_PROXIES": "127.0.0.1/32,10.0.0.0/8"}, want: envConfig{App: appConfig{DevMode: true, TrustedProxies: prefixes("127.0.0.1/32", "10.0.0.0/8")}}},
		{name: "trusted proxy addresses", env: map[string]string{"HERALD_TRUSTED_PROXIES": " 10.0.0.1 , ::1,2001:db8::/32"}, want: envConfig{App: appConfig{DevMode: true, TrustedProxies: prefixes("10.0.0.1/32", "::1/128", "2001:db8::/32")}}},
		{name: "trusted proxy bad bits", env: map[string]string{"HERALD_TRUSTED_PROXIES": "10.0.0.0/33"}, wantErr: []string{`HERALD_TRUSTED_PROXIES: "10.0.0.0/33" is neither`}},
		{name: "trusted proxy hostname", env: map[string]string{"HERALD_TRUSTED_PROXIES": "127.0.0.1,localhost"}, wantErr: []string{`HERALD_TRUSTED_PROXIES: "localhost" is neither`}},
		{name: "trusted proxy with port", env: map[string]string{"HERALD_TRUSTED_PROXIES": "127.0.0.1:80"}, wantErr: []string{`HERALD_TRUSTED_PROXIES: "127.0.0.1:80" is neither`}},
		{name: "trusted proxy zone", env: map[string]string{"HERALD_TRUSTED_PROXIES": "fe80::1%eth0"}, wantErr: []string{"HERALD_TRUSTED_PROXIES: ", "zone"}},
		{name: "trusted proxy empty entry", env: map[string]string{"HERALD_TRUSTED_PROXIES": "10.0.0.0/8,"}, wantErr: []string{"HERALD_TRUSTED_PROXIES: empty entry"}},

		{name: "redis", env: map[string]string{"REDIS_URL": "redis://127.0.0.1:6380/0"}, redisAddr: "127.0.0.1:6380", want: envConfig{App: appConfig{DevMode: true}}},
		{name: "redis mode and node TTL", env: map[string]string{"REDIS_URL": "redis://127.0.0.1:6380/0", "HERALD_REDIS_MODE": "streams", "HERALD_NODE_TTL": "5s"}, redisAddr: "127.0.0.1:6380", want: envConfig{App: appConfig{DevMode: true, RedisMode: adapter.RedisMode("streams"), NodeTTL: 5 * time.Second}}},
		{name: "bad redis URL", env: map[string]string{"REDIS_URL": "http://127.0.0.1"}, wantErr: []string{"REDIS_URL: "}},
		{name: "bad node TTL", env: map[string]string{"REDIS_URL": "redis://127.0.0.1:6380/0", "HERALD_NODE_TTL": "long"}, wantErr: []string{"HERALD_NODE_TTL: "}},
		{name: "redis variables without REDIS_URL", env: map[string]string{"HERALD_REDIS_MODE": "sharded", "HERALD_NODE_TTL": "long"}, want: envConfig{App: appConfig{DevMode: true}}},

		{name: "jwks", env: map[string]string{"HERALD_JWKS_URL": "https://idp.example/jwks.json", "HERALD_JWT_ISSUER": "https://idp.example/"},
			want: envConfig{App: appConfig{JWKS: []auth.JWKSIssuer{{Issuer: "https://idp.example/", URL: "https://idp.example/jwks.json"}}}}},
		{name: "jwks without issuer", env: map[string]string{"HERALD_JWKS_URL": "https://idp.example/jwks.json"}, wantErr: []string{"HERALD_JWT_ISSUER: required with HERALD_JWKS_URL"}},
		{name: "jwks and secret", env: map[string]string{"HERALD_JWKS_URL": "https://idp.example/jwks.json", "HERALD_JWT_ISSUER": "x", "HERALD_JWT_SECRET": secret}, wantErr: []string{"HERALD_JWKS_URL: set it or HERALD_JWT_SECRET, not both"}},
		{name: "secret and issuer", env: map[string]string{"HERALD_JWT_SECRET": secret, "HERALD_JWT_ISSUER": "https://login.example/"}, want: envConfig{App: appConfig{Secret: []byte(secret), Issuer: "https://login.example/"}}},

		{name: "job state off", env: map[string]string{"HERALD_JOB_STATE": "off"}, want: envConfig{App: appConfig{DevMode: true, NoJobState: true}}},
		{name: "job state on", env: map[string]string{"HERALD_JOB_STATE": "on"}, want: envConfig{App: appConfig{DevMode: true}}},
		{name: "bad job state", env: map[string]string{"HERALD_JOB_STATE": "maybe"}, wantErr: []string{`HERALD_JOB_STATE: "maybe" is neither on nor off`}},

		{name: "every problem at once", env: map[string]string{"HERALD_PARSER": "x", "HERALD_PING_INTERVAL": "x", "HERALD_PING_TIMEOUT": "-1s", "HERALD_HANDSHAKE_RATE": "x", "HERALD_TRUSTED_PROXIES": "x", "HERALD_RECOVERY": "x"},
			wantErr: []string{"HERALD_PARSER", "HERALD_PING_INTERVAL", "HERALD_PING_TIMEOUT", "HERALD_HANDSHAKE_RATE", "HERALD_TRUSTED_PROXIES", "HERALD_RECOVERY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromEnv(func(name string) string {
				if name == devsecret.EnvFile {
					return "/dev-secrets/herald"
				}
				return tt.env[name]
			})
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want one mentioning %q", tt.wantErr)
				}
				for _, s := range tt.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want.Addr == "" {
				want.Addr = "localhost:3000"
			}
			if want.Bundle == "" {
				want.Bundle = "socket.io.min.js"
			}
			if want.App.DevMode {
				want.DevSecretFile = "/dev-secrets/herald"
			}
			switch {
			case tt.redisAddr == "" && got.Redis != nil:
				t.Errorf("Redis options %+v, want none", got.Redis)
			case tt.redisAddr != "" && (got.Redis == nil || got.Redis.Addr != tt.redisAddr):
				t.Errorf("Redis options %+v, want Addr %s", got.Redis, tt.redisAddr)
			}
			got.Redis = nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestConfigFromEnvApp runs the demo configured as the chaos test does it:
// sub-second heartbeats pass socketio's validation, and behind a trusted
// proxy the handshake rate limit counts clients by X-Forwarded-For.
func TestConfigFromEnvApp(t *testing.T) {
	for _, tt := range []struct {
		name    string
		proxies string // HERALD_TRUSTED_PROXIES
		// want is the connect_error codes of two handshakes from client
		// A and one from client B, sent at once, with a rate of 1: one
		// of A's is limited; B's too when the proxy is not trusted and
		// every client has its address.
		want map[string]int
	}{
		{name: "trusted proxy", proxies: "127.0.0.1/32,::1/128", want: map[string]int{"A token_missing": 1, "A rate_limited": 1, "B token_missing": 1}},
		{name: "no trusted proxy", want: map[string]int{"token_missing": 1, "rate_limited": 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{
				"HERALD_PING_INTERVAL":   "500ms",
				"HERALD_PING_TIMEOUT":    "500ms",
				"HERALD_HANDSHAKE_RATE":  "1",
				"HERALD_TRUSTED_PROXIES": tt.proxies,
			}
			c, err := configFromEnv(func(name string) string { return env[name] })
			if err != nil {
				t.Fatal(err)
			}
			a := newTestApp(t, c.App)
			ts := httptest.NewServer(a.Handler())
			t.Cleanup(ts.Close)

			// Open the connections first, as clients behind the proxy,
			// then send their CONNECTs (without a token) back to back.
			clients := []string{"A", "A", "B"}
			addr := map[string]string{"A": "198.51.100.1", "B": "198.51.100.2"}
			conns := make([]*websocket.Conn, len(clients))
			for i, client := range clients {
				url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
				conn, _, err := websocket.DefaultDialer.Dial(url, http.Header{"X-Forwarded-For": {addr[client]}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, open, err := conn.ReadMessage()
				if err != nil || !bytes.Contains(open, []byte(`"pingInterval":500,`)) || !bytes.Contains(open, []byte(`"pingTimeout":500,`)) {
					t.Fatalf("open packet %q (%v), want pingInterval and pingTimeout 500", open, err)
				}
				conns[i] = conn
			}
			for _, conn := range conns {
				if err := conn.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
					t.Fatal(err)
				}
			}
			got := map[string]int{}
			for i, conn := range conns {
				code := connectErrorCode(t, conn)
				if tt.proxies != "" {
					code = clients[i] + " " + code
				}
				got[code]++
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("connect_error codes %v, want %v", got, tt.want)
			}
		})
	}
}

// connectErrorCode reads Socket.IO packets from conn, answering pings,
// until a connect_error, and returns its data.code.
func connectErrorCode(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("no connect_error: %v", err)
		}
		if string(msg) == "2" {
			_ = conn.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		s, ok := strings.CutPrefix(string(msg), "44")
		if !ok {
			t.Fatalf("packet %q, want a connect_error", msg)
		}
		var e struct{ Data struct{ Code string } }
		if err := json.Unmarshal([]byte(s), &e); err != nil {
			t.Fatalf("connect_error %q: %v", s, err)
		}
		return e.Data.Code
	}
}
