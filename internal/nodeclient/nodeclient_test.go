package nodeclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/herald-rt/herald/internal/nodeclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// deadURL returns a URL on which nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr
}

func TestConnectErrorWhenNothingListens(t *testing.T) {
	tests := []struct {
		name       string
		transports []string
	}{
		{name: "default", transports: nil},
		{name: "polling", transports: []string{"polling"}},
		{name: "websocket", transports: []string{"websocket"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := nodeclient.Start(t, nodeclient.Options{URL: deadURL(t), Transports: tt.transports})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m, err := c.WaitType(ctx, "connect_error")
			if err != nil {
				t.Fatal(err)
			}
			if m.Message == "" {
				t.Errorf("connect_error without a message: %s", m)
			}
			c.Close()
			select {
			case <-c.Done():
			default:
				t.Fatal("Close returned before the process was reaped")
			}
			if err := c.Wait(ctx); err != nil {
				t.Errorf("exit: %v; stderr: %s", err, c.Stderr())
			}
			if _, err := c.Next(ctx); !errors.Is(err, nodeclient.ErrExited) {
				t.Errorf("Next after exit = %v, want ErrExited", err)
			}
			if err := c.Emit("x"); !errors.Is(err, nodeclient.ErrClosed) {
				t.Errorf("Emit after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestBadCommandsDoNotCrash(t *testing.T) {
	t.Parallel()
	c := nodeclient.Start(t, nodeclient.Options{URL: deadURL(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cmd := range []map[string]any{
		{"cmd": "no-such-command"},
		{"cmd": "ack", "seq": 42},
		{"cmd": "emit"},
		{"cmd": "emit", "event": "x", "args": "not an array"},
		{"cmd": "setAuth", "auth": "not an object"},
		{"nocmd": true},
	} {
		if err := c.Send(cmd); err != nil {
			t.Fatal(err)
		}
		m, err := c.WaitType(ctx, "error")
		if err != nil {
			t.Fatal(err)
		}
		if m.Message == "" {
			t.Errorf("%v: error without a message", cmd)
		}
	}
	// Still alive and answering.
	if err := c.Send(map[string]any{"cmd": "countOnly", "event": "tick"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(map[string]any{"cmd": "report", "event": "tick"}); err != nil {
		t.Fatal(err)
	}
	m, err := c.WaitType(ctx, "count")
	if err != nil {
		t.Fatal(err)
	}
	if m.Event != "tick" || m.N != 0 || !m.InOrder || m.LastSeq != 0 {
		t.Errorf("count = %s", m)
	}
}

func TestEmitWithAckTimesOut(t *testing.T) {
	t.Parallel()
	// The packet is buffered while disconnected; the client-side ack timer
	// still runs.
	c := nodeclient.Start(t, nodeclient.Options{URL: deadURL(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.EmitWithAck(ctx, "hello", 50*time.Millisecond, "world")
	if !errors.Is(err, nodeclient.ErrAck) {
		t.Fatalf("EmitWithAck = %v, want ErrAck", err)
	}
	// The connect_error that came first was passed over, not consumed.
	if _, err := c.WaitType(ctx, "connect_error"); err != nil {
		t.Fatal(err)
	}
}

func TestCloseCommandExitsZero(t *testing.T) {
	t.Parallel()
	c := nodeclient.Start(t, nodeclient.Options{URL: deadURL(t)})
	if err := c.Send(map[string]any{"cmd": "close"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Wait(ctx); err != nil {
		t.Fatalf("exit: %v; stderr: %s", err, c.Stderr())
	}
}

func TestWaitHonoursContext(t *testing.T) {
	t.Parallel()
	c := nodeclient.Start(t, nodeclient.Options{URL: deadURL(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.WaitType(ctx, "connect")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitType = %v, want DeadlineExceeded", err)
	}
}

func TestMessageUnmarshal(t *testing.T) {
	tests := []struct {
		line string
		want func(m nodeclient.Message) bool
	}{
		{`{"type":"connect","id":"abc","transport":"polling","recovered":true}`,
			func(m nodeclient.Message) bool {
				return m.ID == "abc" && m.AckID == 0 && m.Transport == "polling" && m.Recovered
			}},
		{`{"type":"ack","id":7,"args":[1,"a"]}`,
			func(m nodeclient.Message) bool {
				return m.AckID == 7 && m.ID == "" && len(m.Args) == 2 && string(m.Args[1]) == `"a"`
			}},
		{`{"type":"ack_error","id":3,"message":"operation has timed out"}`,
			func(m nodeclient.Message) bool { return m.AckID == 3 && m.Message == "operation has timed out" }},
		{`{"type":"event","event":"e","args":[{"seq":1}],"hasAck":true,"seq":9,"autoAcked":false}`,
			func(m nodeclient.Message) bool {
				return m.Event == "e" && m.HasAck && m.Seq == 9 && string(m.Args[0]) == `{"seq":1}`
			}},
		{`{"type":"count","event":"e","n":0,"inOrder":true,"lastSeq":null}`,
			func(m nodeclient.Message) bool { return m.N == 0 && m.InOrder && m.LastSeq == 0 }},
		{`{"type":"count","event":"e","n":5000,"inOrder":false,"lastSeq":4999}`,
			func(m nodeclient.Message) bool { return m.N == 5000 && !m.InOrder && m.LastSeq == 4999 }},
		{`{"type":"connect_error","message":"unauthorized","data":{"code":401}}`,
			func(m nodeclient.Message) bool {
				return m.Message == "unauthorized" && string(m.Data) == `{"code":401}`
			}},
		{`{"type":"disconnect","reason":"io server disconnect"}`,
			func(m nodeclient.Message) bool { return m.Reason == "io server disconnect" && m.At.IsZero() }},
		{`{"type":"connect","id":"x","transport":"websocket","recovered":false,"url":"http://127.0.0.1:1","at":1700000000123}`,
			func(m nodeclient.Message) bool {
				return m.URL == "http://127.0.0.1:1" && m.At.Equal(time.UnixMilli(1700000000123))
			}},
		{`{"type":"reconnect_attempt","attempt":2}`,
			func(m nodeclient.Message) bool { return m.Attempt == 2 }},
	}
	for _, tt := range tests {
		var m nodeclient.Message
		if err := json.Unmarshal([]byte(tt.line), &m); err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if !tt.want(m) {
			t.Errorf("%s: got %+v", tt.line, m)
		}
		if m.String() != tt.line {
			t.Errorf("String() = %s, want the raw line", m.String())
		}
	}
}

// TestFailover: reconnection attempts go through the failover URLs in
// turn, starting after the first URL's place in the list.
func TestFailover(t *testing.T) {
	hits := make(chan string, 100)
	var urls []string
	for _, name := range []string{"a", "b", "c"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case hits <- name:
			default:
			}
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	c := nodeclient.Start(t, nodeclient.Options{
		URL: urls[1], Transports: []string{"polling"}, Reconnection: true, Failover: urls,
		Extra: map[string]any{"reconnectionDelay": 10, "reconnectionDelayMax": 10},
	})
	var got []string
	for len(got) < 5 {
		select {
		case h := <-hits:
			got = append(got, h)
		case <-time.After(10 * time.Second):
			t.Fatalf("hits so far %v", got)
		}
	}
	c.Close()
	if want := "b c a b c"; strings.Join(got, " ") != want {
		t.Errorf("attempts went to %v, want %s", got, want)
	}
}
