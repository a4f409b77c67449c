package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/bench/internal/benchapi"
	"github.com/herald-rt/herald/socketio"
)

// testSecret is the HS256 secret of the test server.
const testSecret = "load-test-secret-0123456789abcdef"

// benchServer is a herald server with the bench HTTP API that the load
// generator uses (POST /bench/emit), configured as bench/SPEC.md says.
type benchServer struct {
	*socketio.Server
	URL string
}

func startBenchServer(t *testing.T) *benchServer {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{Keys: []auth.Key{{Algorithm: "HS256", Secret: []byte(testSecret)}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socketio.New(socketio.Config{
		Verifier:              v,
		HandshakeRate:         -1,
		MaxPendingConnections: -1,
		MaxConnectionsPerUser: -1,
		EventRate:             -1,
		ShutdownDrain:         -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(srv.Path(), srv)
	mux.HandleFunc("POST /bench/emit", func(w http.ResponseWriter, r *http.Request) {
		var req benchapi.EmitRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Check() != "" {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		pad := strings.Repeat("x", req.Pad)
		start := time.Now()
		for i := range req.Count {
			for n := req.From; n < req.To; n++ {
				p := benchapi.Payload{Seq: req.Seq + i, SentAt: time.Now().UnixMicro(), Pad: pad}
				if err := srv.EmitToUser(r.Context(), req.Prefix+strconv.Itoa(n), benchapi.Event, p); err != nil {
					http.Error(w, `{"error":"emit"}`, http.StatusInternalServerError)
					return
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{
			"emitted": int64(req.Count) * int64(req.To-req.From),
			"tookUs":  time.Since(start).Microseconds(),
		})
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, socketio.ErrServerClosed) {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return &benchServer{Server: srv, URL: hs.URL}
}
