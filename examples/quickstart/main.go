// Command quickstart is the README's Quickstart, verbatim: a herald server
// for one user, user-42, whose token it prints at start.
//
//	JWT_SECRET=a-secret-of-at-least-16-bytes go run ./examples/quickstart
//	curl -X POST localhost:3000/jobs/j1/progress  # user-42's tabs get job_progress
package main

import (
	"cmp"
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// The HS256 secret your login service signs tokens with: 16 bytes or more.
	secret := []byte(os.Getenv("JWT_SECRET"))
	verifier, err := auth.NewVerifier(auth.Config{
		Keys: []auth.Key{{Algorithm: "HS256", Secret: secret}},
	})
	if err != nil {
		return err // JWT_SECRET unset or too short
	}
	srv, err := socketio.New(socketio.Config{Verifier: verifier})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(srv.Path(), srv) // "/socket.io/"
	mux.Handle("GET /api/v1/websocket/stats", srv.StatsHandler())
	mux.HandleFunc("POST /jobs/{id}/progress", func(w http.ResponseWriter, r *http.Request) {
		// Anywhere in your backend: every tab of user-42 gets it.
		err := srv.EmitToUser(r.Context(), "user-42", events.JobProgress,
			events.JobProgressPayload{JobID: r.PathValue("id"), Progress: 40})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})

	// A token as your login service would issue it: HS256, "sub" = user id.
	token, err := auth.NewHMACToken(secret, "user-42", time.Hour)
	if err != nil {
		return err
	}
	log.Printf("token for user-42: %s", token)

	ln, err := net.Listen("tcp", cmp.Or(os.Getenv("ADDR"), "localhost:3000"))
	if err != nil {
		return err
	}
	log.Printf("listening on http://%s", ln.Addr())
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Sockets first: http.Server.Shutdown does not close WebSockets.
	err = errors.Join(srv.Shutdown(ctx), httpSrv.Shutdown(ctx))
	<-served // http.ErrServerClosed
	return err
}
