package socketio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-rt/herald/adapter"
	"github.com/herald-rt/herald/socketio"
)

// TestWriteLocalRoomsAndExcept: a message for several rooms reaches each
// socket in them once, none in Except, and nothing else, in order.
func TestWriteLocalRoomsAndExcept(t *testing.T) {
	broker := adapter.NewMemoryBroker()
	ts := startServer(t, socketio.Config{Broker: broker})
	conns := map[string]*websocket.Conn{}
	for name, user := range map[string]string{"alice1": "alice", "alice2": "alice", "bob": "bob", "carol": "carol"} {
		conns[name] = rawConnect(t, ts, ts.token(t, user))
	}
	for i := range 3 {
		m := adapter.Message{
			Rooms:  []string{socketio.UserRoom("alice"), socketio.UserRoom("bob"), socketio.UserRoom("alice")},
			Except: []string{socketio.UserRoom("bob")},
			Event:  "note", Args: []json.RawMessage{json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))},
		}
		if err := broker.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	// A last message to everyone in the rooms, bob included, marks the end.
	end := adapter.Message{Rooms: []string{socketio.UserRoom("alice"), socketio.UserRoom("bob"), socketio.UserRoom("carol")}, Event: "end", Args: []json.RawMessage{json.RawMessage(`{}`)}}
	if err := broker.Publish(context.Background(), end); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"alice1": {`42["note",{"n":0}]`, `42["note",{"n":1}]`, `42["note",{"n":2}]`, `42["end",{}]`},
		"alice2": {`42["note",{"n":0}]`, `42["note",{"n":1}]`, `42["note",{"n":2}]`, `42["end",{}]`},
		"bob":    {`42["end",{}]`},
		"carol":  {`42["end",{}]`},
	}
	for name, ws := range conns {
		var got []string
		for len(got) == 0 || got[len(got)-1] != `42["end",{}]` {
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("%s: %v after %q", name, err, got)
			}
			if string(msg) != "2" {
				got = append(got, string(msg))
			}
		}
		if !slices.Equal(got, want[name]) {
			t.Errorf("%s got %q, want %q", name, got, want[name])
		}
	}
}
