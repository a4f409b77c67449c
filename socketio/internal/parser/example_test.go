package parser_test

import (
	"encoding/json"
	"fmt"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/socketio/internal/parser"
)

// An event with binary data goes out as a BINARY_EVENT and its
// attachment; a decoder puts the data back in place.
func ExampleDefault() {
	data := `["upload",{"name":"a.bin","data":` + string(events.AppendBytesJSON(nil, []byte{1, 2, 3})) + `}]`
	msgs, err := parser.Default().Encode(&parser.Packet{Type: parser.Event, Nsp: "/files", ID: 7, HasID: true, Data: json.RawMessage(data)})
	if err != nil {
		panic(err)
	}
	for _, m := range msgs {
		if m.Binary {
			fmt.Printf("binary % x\n", m.Data)
		} else {
			fmt.Printf("text   %s\n", m.Data)
		}
	}

	d := parser.Default().NewDecoder()
	for _, m := range msgs {
		p, err := d.Add(m)
		if err != nil {
			panic(err) // close the connection
		}
		if p != nil {
			fmt.Printf("%v %s id=%d %s\n", p.Type, p.Nsp, p.ID, p.Data)
		}
	}
	// Output:
	// text   51-/files,7["upload",{"name":"a.bin","data":{"_placeholder":true,"num":0}}]
	// binary 01 02 03
	// EVENT /files id=7 ["upload",{"name":"a.bin","data":{"_placeholder":true,"bin":"AQID"}}]
}

// SplitArray takes an event's name and arguments apart without decoding
// them.
func ExampleSplitArray() {
	elems, err := parser.SplitArray([]byte(`["job_progress", {"jobId":"j1","progress":40}, true]`))
	if err != nil {
		panic(err)
	}
	for _, e := range elems {
		fmt.Println(string(e))
	}
	// Output:
	// "job_progress"
	// {"jobId":"j1","progress":40}
	// true
}

// AppendEvent writes a broadcast once for every connection of the
// default parser.
func ExampleAppendEvent() {
	msg, err := parser.AppendEvent(nil, "/", "job_progress", 0, false, []json.RawMessage{json.RawMessage(`{"jobId":"j1","progress":40}`)})
	fmt.Println(string(msg), err)
	// Output:
	// 2["job_progress",{"jobId":"j1","progress":40}] <nil>
}
