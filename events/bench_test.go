package events_test

import (
	"testing"
	"time"

	"github.com/herald-rt/herald/events"
)

func BenchmarkEncodeJobProgress(b *testing.B) {
	p := events.JobProgressPayload{JobID: "job_0123456789abcdef", Progress: 40, Message: "step 2 of 5"}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.JobProgress.Encode(p, at); err != nil {
			b.Fatal(err)
		}
	}
}

type benchCustom struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// BenchmarkEncodeCustom covers payloads without events.Meta, where the
// timestamp is spliced into the encoded object.
func BenchmarkEncodeCustom(b *testing.B) {
	ev := events.Define[benchCustom]("bench:custom")
	p := benchCustom{Room: "general", Text: "hello, world"}
	at := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.Encode(p, at); err != nil {
			b.Fatal(err)
		}
	}
}
