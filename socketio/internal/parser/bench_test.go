package parser_test

import (
	"encoding/json"
	"testing"

	"github.com/herald-rt/herald/socketio/internal/parser"
)

// benchArg is a typical event payload: a small JSON object.
const benchArg = `{"jobId":"j-123","progress":40,"message":"h\u00e9llo \"q\"","timestamp":"2025-01-02T03:04:05Z"}`

func BenchmarkAppendEvent(b *testing.B) {
	args := []json.RawMessage{json.RawMessage(benchArg)}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = parser.AppendEvent(dst[:0], "/", "job_progress", 0, false, args); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(dst)))
}

func BenchmarkDecodeEvent(b *testing.B) {
	msg := parser.Message{Data: []byte(`2/admin,12["job_progress",` + benchArg + `]`)}
	d := parser.Default().NewDecoder()
	b.SetBytes(int64(len(msg.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if p, err := d.Add(msg); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}

func BenchmarkDecodeEventMsgpack(b *testing.B) {
	msgs, err := parser.Msgpack().Encode(&parser.Packet{Type: parser.Event, Nsp: "/admin", ID: 12, HasID: true,
		Data: json.RawMessage(`["job_progress",` + benchArg + `]`)})
	if err != nil {
		b.Fatal(err)
	}
	d := parser.Msgpack().NewDecoder()
	b.SetBytes(int64(len(msgs[0].Data)))
	b.ReportAllocs()
	for b.Loop() {
		if p, err := d.Add(msgs[0]); err != nil || p == nil {
			b.Fatal(p, err)
		}
	}
}

func BenchmarkEncodeBinaryEvent(b *testing.B) {
	p := &parser.Packet{Type: parser.Event, Nsp: "/", Data: json.RawMessage(`["file",{"name":"f","data":` + marker(make([]byte, 1024)...) + `}]`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parser.Default().Encode(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitArray(b *testing.B) {
	js := []byte(`["job_progress",` + benchArg + `,1,null,"x"]`)
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parser.SplitArray(js); err != nil {
			b.Fatal(err)
		}
	}
}
