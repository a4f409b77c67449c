package socketio

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"

	"github.com/herald-rt/herald/events"
)

// Binary attachments. Inside herald a payload is JSON in which binary data
// is the marker object of events.Bytes; upstream wants a tree of []any and
// map[string]any with []byte leaves, which its parser turns into
// attachments, and hands received attachments over as readers. wireArg and
// argJSON convert between the two at the edge.

// wireArg returns what upstream writes for the JSON argument js: js itself
// (written byte for byte) unless it holds binary data. Then the objects and
// arrays on the way to a binary value become maps and slices (an object's
// members are then written in sorted order), the marker objects []byte,
// and everything else stays as it was.
func wireArg(js json.RawMessage) any {
	if !events.HasBytesJSON(js) {
		return js
	}
	v, err := binaryValue(js, 0)
	if err != nil {
		return js // not reached: herald's JSON is valid
	}
	return v
}

func binaryValue(js []byte, depth int) (any, error) {
	if depth > maxArgDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxArgDepth)
	}
	if !events.HasBytesJSON(js) {
		return json.RawMessage(js), nil
	}
	if data, n, ok := events.ParseBytesJSON(js); ok && n == len(js) {
		return data, nil
	}
	switch js[0] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(js, &m); err != nil {
			return nil, err
		}
		out := make(map[string]any, len(m))
		for k, raw := range m {
			v, err := binaryValue(raw, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case '[':
		var a []json.RawMessage
		if err := json.Unmarshal(js, &a); err != nil {
			return nil, err
		}
		out := make([]any, len(a))
		for i, raw := range a {
			v, err := binaryValue(raw, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return json.RawMessage(js), nil
}

// wireArgs converts herald's JSON arguments for upstream.
func wireArgs(args []json.RawMessage) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = wireArg(a)
	}
	return out
}

// maxArgDepth bounds the nesting of an argument herald converts.
const maxArgDepth = 64

// byteser is what upstream's parser hands over for a received attachment
// (types.BufferInterface).
type byteser interface{ Bytes() []byte }

// argJSON returns the JSON form of an argument upstream decoded from a
// client's packet, binary attachments as events.Bytes markers.
func argJSON(v any) ([]byte, error) {
	if !parser.HasBinary(v) {
		return json.Marshal(v)
	}
	return appendArgJSON(nil, v, 0)
}

func appendArgJSON(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxArgDepth {
		return nil, fmt.Errorf("socketio: argument nested deeper than %d", maxArgDepth)
	}
	switch x := v.(type) {
	case []byte:
		return events.AppendBytesJSON(b, x), nil
	case byteser:
		return events.AppendBytesJSON(b, x.Bytes()), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendArgJSON(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			kb, err := json.Marshal(k)
			if err != nil {
				return nil, err
			}
			b = append(append(b, kb...), ':')
			if b, err = appendArgJSON(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	e, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, e...), nil
}

// resultArg returns what upstream writes for a handler's result r.
func resultArg(r any) (any, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("socketio: encode result: %w", err)
	}
	return wireArg(b), nil
}
