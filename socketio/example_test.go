package socketio_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/auth"
	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio"
)

// A Go backend mounts the Server next to its own API and pushes events to
// users from anywhere in its code.
func ExampleNew() {
	verifier, err := auth.NewVerifier(auth.Config{
		Keys: []auth.Key{{Algorithm: "HS256", Secret: []byte("a-secret-of-at-least-32-bytes!!!")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	srv, err := socketio.New(socketio.Config{Verifier: verifier})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(srv.Path(), srv) // "/socket.io/"
	mux.Handle("GET /api/v1/websocket/stats", srv.StatsHandler())
	httpSrv := &http.Server{Addr: "127.0.0.1:0", Handler: mux}
	go func() { _ = httpSrv.ListenAndServe() }()

	// ... later, from a job runner:
	err = srv.EmitToUser(context.Background(), "user-42", events.JobProgress,
		events.JobProgressPayload{JobID: "job_1", Progress: 40, Message: "resizing"})
	fmt.Println("emit:", err)

	// Shutdown: sockets first, then the HTTP server.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", srv.Shutdown(ctx), httpSrv.Shutdown(ctx))
	// Output:
	// emit: <nil>
	// shutdown: <nil> <nil>
}

// New reports every problem of a Config at once.
func ExampleNew_invalidConfig() {
	_, err := socketio.New(socketio.Config{Path: "socket.io", Transports: []string{"carrier-pigeon"}})
	fmt.Println(errors.Is(err, socketio.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// socketio: invalid config: Verifier is required
	// socketio: invalid config: Path "socket.io" must start with / and have no query or fragment
	// socketio: invalid config: unknown transport "carrier-pigeon" (want "polling" or "websocket")
}

// Bad payloads are refused with typed errors, never sent.
func ExampleServer_EmitToUser_errors() {
	srv, _ := socketio.New(socketio.Config{Verifier: fakeVerifier{}})
	defer srv.Shutdown(context.Background())
	ctx := context.Background()

	err := srv.EmitToUser(ctx, "user-42", events.JobProgress, events.JobProgressPayload{JobID: "j", Progress: 140})
	fmt.Println(errors.Is(err, events.ErrInvalidPayload))

	err = srv.EmitToUser(ctx, "user-42", events.JobFailed, events.JobProgressPayload{JobID: "j"})
	fmt.Println(errors.Is(err, events.ErrPayloadType))

	err = srv.EmitToUser(ctx, "", events.JobProgress, events.JobProgressPayload{JobID: "j"})
	fmt.Println(errors.Is(err, socketio.ErrInvalidUserID))
	// Output:
	// true
	// true
	// true
}

type RenameRequest struct {
	FileID string `json:"fileId"`
	Name   string `json:"name"`
}

func (r RenameRequest) Validate() error {
	if r.FileID == "" || r.Name == "" {
		return errors.New("fileId and name are required")
	}
	return nil
}

type RenameResult struct {
	OK bool `json:"ok"`
}

// Typed handlers: the client calls
// socket.emit("file:rename", {fileId, name}, (res) => ...) and gets
// RenameResult, or {error: {code, message}}.
func ExampleOnAck() {
	srv, _ := socketio.New(socketio.Config{Verifier: fakeVerifier{}})
	defer srv.Shutdown(context.Background())

	rename := events.Define[RenameRequest]("file:rename")
	err := socketio.OnAck(srv, rename, func(ctx context.Context, s *socketio.Socket, req RenameRequest) (RenameResult, error) {
		if req.Name == "forbidden" {
			return RenameResult{}, &socketio.Error{Code: "forbidden", Message: "that name is not allowed"}
		}
		// ... rename the file for s.UserID() ...
		return RenameResult{OK: true}, nil
	})
	fmt.Println(err)
	// Output: <nil>
}

type JoinRequest struct {
	Room string `json:"room"`
}

func (r JoinRequest) Validate() error { return socketio.ValidateRoom(r.Room) }

type ChatMessage struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// Handlers for events a client sends: socket.emit("room:join", {room}) puts
// the socket in a room; socket.emit("chat:message", {room, text}) reaches
// every socket in it, on every node.
func ExampleOn() {
	srv, _ := socketio.New(socketio.Config{Verifier: fakeVerifier{}})
	defer srv.Shutdown(context.Background())

	join := events.Define[JoinRequest]("room:join")
	chat := events.Define[ChatMessage]("chat:message")
	err := socketio.On(srv, join, func(ctx context.Context, s *socketio.Socket, req JoinRequest) error {
		return s.Join(req.Room)
	})
	fmt.Println(err)
	err = socketio.On(srv, chat, func(ctx context.Context, s *socketio.Socket, m ChatMessage) error {
		return srv.EmitToRoom(ctx, m.Room, chat, m)
	})
	fmt.Println(err)
	// A second handler for one event is refused.
	fmt.Println(socketio.On(srv, chat, func(context.Context, *socketio.Socket, ChatMessage) error { return nil }) != nil)
	// Output:
	// <nil>
	// <nil>
	// true
}

// EmitToUser reaches every socket of one user (every tab, every device, on
// every node), each as the client's socket.on("job_completed", ...) sees
// it: {"jobId":"job_1","result":{"rows":1200},"timestamp":"..."}.
func ExampleServer_EmitToUser() {
	srv, _ := socketio.New(socketio.Config{Verifier: fakeVerifier{}})
	defer srv.Shutdown(context.Background())

	err := srv.EmitToUser(context.Background(), "user-42", events.JobCompleted,
		events.JobCompletedPayload{JobID: "job_1", Result: map[string]int{"rows": 1200}})
	fmt.Println(err) // nil also when user-42 has no socket: nobody to tell
	// Output: <nil>
}

// A queue worker that holds no sockets pushes to users through the
// cluster's Redis: every node delivers to its sockets of the user. The
// worker's broker must use the nodes' Redis mode and prefix: an emit
// nobody can receive fails (adapter.ErrModeMismatch,
// adapter.ErrNoListeners) instead of reporting success.
func ExampleNewEmitter() {
	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	broker, err := adapter.NewRedisBroker(adapter.RedisBrokerConfig{Client: rdb, Mode: adapter.RedisStreams})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close(context.Background())
	emitter, err := socketio.NewEmitter(socketio.EmitterConfig{Broker: broker})
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	err = emitter.EmitToUser(ctx, "user-42", events.JobProgress, events.JobProgressPayload{JobID: "job_1", Progress: 40})
	switch {
	case errors.Is(err, adapter.ErrModeMismatch), errors.Is(err, adapter.ErrNoListeners):
		log.Fatal(err) // a deployment mistake: fix the worker's mode or prefix
	case errors.Is(err, adapter.ErrRemoteUndelivered):
		log.Print(err) // Redis did not take it: retry later, or let the job's next event tell
	}
}
