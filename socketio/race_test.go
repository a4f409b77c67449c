package socketio_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/internal/redistest"
	"github.com/herald-rt/herald/socketio"
)

// TestConnectRightAfterOpen sends the Socket.IO CONNECT the moment the
// Engine.IO OPEN packet arrives, as socket.io-client does, one connection
// after another (an idle server answers fastest, which is when the race
// shows). Upstream starts reading a WebSocket before its Socket.IO client
// listens to it, so a CONNECT that arrived in between was dropped and the
// client hung until connectTimeout: without gate.go about 1 connection in
// 300 got no answer here; herald holds the reads until then.
func TestConnectRightAfterOpen(t *testing.T) {
	t.Run("memory", func(t *testing.T) { connectRightAfterOpen(t, startServer(t, socketio.Config{})) })
	t.Run("recovery", func(t *testing.T) {
		a, _ := recoveryNodes(t, redistest.Start(t).Client(t))
		connectRightAfterOpen(t, a)
	})
}

func connectRightAfterOpen(t *testing.T, ts *testServer) {
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	tok := ts.token(t, "racer")
	const total, parallel = 600, 1
	var wg sync.WaitGroup
	errs := make(chan error, total)
	sem := make(chan struct{}, parallel)
	for i := range total {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, msg, err := conn.ReadMessage(); err != nil || msg[0] != '0' {
				errs <- fmt.Errorf("open %d: %q %v", i, msg, err)
				return
			}
			if err := conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `40{"token":%q}`, tok)); err != nil {
				errs <- err
				return
			}
			for {
				_, msg, err := conn.ReadMessage()
				if err != nil {
					errs <- fmt.Errorf("connection %d: no CONNECT answer: %v", i, err)
					return
				}
				if strings.HasPrefix(string(msg), "40") {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	// Every client closed its connection: no socket may stay behind.
	deadline := time.Now().Add(10 * time.Second)
	for ts.SocketCount() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := ts.SocketCount(); n > 0 {
		t.Errorf("%d sockets still registered after every client closed", n)
	}
	n := 0
	for err := range errs {
		if n < 5 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Errorf("%d of %d connections got no CONNECT answer", n, total)
	}
}
