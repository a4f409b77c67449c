package events_test

import (
	"fmt"
	"time"

	"github.com/herald-rt/herald/events"
)

// A service defines its own event by binding a name to a payload type.
func ExampleDefine() {
	type ChatMessage struct {
		Room string `json:"room"`
		Text string `json:"text"`
	}
	chat := events.Define[ChatMessage]("chat:message")

	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	data, err := chat.Encode(ChatMessage{Room: "general", Text: "hello"}, at)
	fmt.Println(string(data), err)
	// Output: {"timestamp":"2026-11-22T12:00:00Z","room":"general","text":"hello"} <nil>
}

func ExampleDef_Encode() {
	at := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	data, _ := events.JobProgress.Encode(events.JobProgressPayload{JobID: "job_1", Progress: 40}, at)
	fmt.Println(string(data))

	_, err := events.JobProgress.Encode(events.JobProgressPayload{JobID: "job_1", Progress: 140}, at)
	fmt.Println(err)
	// Output:
	// {"jobId":"job_1","progress":40,"timestamp":"2026-11-22T12:00:00Z"}
	// events: invalid payload: job_progress: progress: 140 is outside 0..100
}
