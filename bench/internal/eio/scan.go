package eio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrMissingField means the bench payload lacks "seq" or "sentAt".
var ErrMissingField = errors.New("eio: bench payload: missing field")

// ErrNotInteger means "seq" or "sentAt" is not a JSON integer that fits an
// int64.
var ErrNotInteger = errors.New("eio: bench payload: not an integer")

// SplitEvent splits the Data of an Event packet, `["name",arg1,...]`, into
// the event name and the bytes from the first argument on (empty when the
// event has none). The name aliases data unless it holds a JSON escape,
// then it is a decoded copy. SplitEvent reads only as far as the first
// argument and does not validate what follows. Errors wrap ErrMalformed.
func SplitEvent(data []byte) (name, args []byte, err error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return nil, nil, fmt.Errorf("%w: event is not a JSON array", ErrMalformed)
	}
	i = skipSpace(data, i+1)
	if i >= len(data) || data[i] != '"' {
		return nil, nil, fmt.Errorf("%w: event name is not a string", ErrMalformed)
	}
	end, escaped := skipString(data, i)
	if end < 0 {
		return nil, nil, fmt.Errorf("%w: unterminated event name", ErrMalformed)
	}
	name = data[i+1 : end-1]
	if escaped {
		if name, err = unescape(data[i:end]); err != nil {
			return nil, nil, err
		}
	}
	i = skipSpace(data, end)
	switch {
	case i < len(data) && data[i] == ']':
		return name, nil, nil
	case i < len(data) && data[i] == ',':
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return nil, nil, fmt.Errorf("%w: missing event argument", ErrMalformed)
		}
		return name, data[i:], nil
	}
	return nil, nil, fmt.Errorf("%w: bad event array", ErrMalformed)
}

// BenchFields reads the integer members "seq" and "sentAt" of the JSON
// object at the start of b (what follows the object is not looked at). It
// scans the members without decoding them: strings are skipped with
// bytes.IndexByte, so a large "pad" costs little. As with encoding/json, a
// member given twice counts with its last value. It does not allocate
// unless a member name holds a JSON escape.
//
// On valid JSON it agrees with encoding/json; invalid JSON is rejected with
// an error wrapping ErrMalformed or, when the scan does not notice, read as
// far as it makes sense. A missing member is ErrMissingField, a value that
// is not an integer ErrNotInteger.
func BenchFields(b []byte) (seq, sentAt int64, err error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	var seqRaw, sentAtRaw []byte
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return 0, 0, fmt.Errorf("%w: seq", ErrMissingField)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, fmt.Errorf("%w: member name is not a string", ErrMalformed)
		}
		end, escaped := skipString(b, i)
		if end < 0 {
			return 0, 0, fmt.Errorf("%w: unterminated member name", ErrMalformed)
		}
		key := b[i+1 : end-1]
		if escaped {
			if key, err = unescape(b[i:end]); err != nil {
				return 0, 0, err
			}
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, fmt.Errorf("%w: missing ':'", ErrMalformed)
		}
		i = skipSpace(b, i+1)
		vend := skipValue(b, i)
		if vend < 0 {
			return 0, 0, fmt.Errorf("%w: bad member value", ErrMalformed)
		}
		switch string(key) { // no allocation: the compiler compares in place
		case "seq":
			seqRaw = b[i:vend]
		case "sentAt":
			sentAtRaw = b[i:vend]
		}
		i = skipSpace(b, vend)
		if i >= len(b) {
			return 0, 0, fmt.Errorf("%w: unterminated object", ErrMalformed)
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return 0, 0, fmt.Errorf("%w: expected ',' or '}'", ErrMalformed)
		}
		i = skipSpace(b, i+1)
	}
	if seqRaw == nil {
		return 0, 0, fmt.Errorf("%w: seq", ErrMissingField)
	}
	if sentAtRaw == nil {
		return 0, 0, fmt.Errorf("%w: sentAt", ErrMissingField)
	}
	var ok bool
	if seq, ok = parseInt(seqRaw); !ok {
		return 0, 0, fmt.Errorf("%w: seq", ErrNotInteger)
	}
	if sentAt, ok = parseInt(sentAtRaw); !ok {
		return 0, 0, fmt.Errorf("%w: sentAt", ErrNotInteger)
	}
	return seq, sentAt, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the JSON string that starts with
// the quote at b[i], or -1 when it is not terminated, and whether the
// string holds a backslash.
func skipString(b []byte, i int) (end int, escaped bool) {
	i++
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1, escaped
		}
		q += i
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for j := q - 1; j >= i && b[j] == '\\'; j-- {
			n++
		}
		if bytes.IndexByte(b[i:q], '\\') >= 0 {
			escaped = true
		}
		if n%2 == 0 {
			return q + 1, escaped
		}
		i = q + 1
	}
}

// skipValue returns the index just past the JSON value that starts at b[i],
// or -1 when there is none. Objects and arrays are skipped by counting
// brackets outside strings; numbers and literals run to the next delimiter.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		end, _ := skipString(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, _ := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// parseInt parses a JSON integer: an optional '-' and decimal digits.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n > (1<<63)/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	switch {
	case neg && n <= 1<<63:
		return -int64(n), true // 1<<63 converts to, and negates to, math.MinInt64
	case !neg && n < 1<<63:
		return int64(n), true
	}
	return 0, false
}

// unescape decodes the JSON string literal s (quotes included). It is the
// slow path, for names with escapes, which the servers never send.
func unescape(s []byte) ([]byte, error) {
	var v string
	if err := json.Unmarshal(s, &v); err != nil {
		return nil, fmt.Errorf("%w: bad string: %w", ErrMalformed, err)
	}
	return []byte(v), nil
}
