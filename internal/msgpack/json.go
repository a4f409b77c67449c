package msgpack

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/herald-rt/herald/events"
)

// Errors of AppendJSON, wrapped with the detail and the offset in the text.
var (
	// ErrInvalidJSON is returned for text that is not one JSON value.
	ErrInvalidJSON = errors.New("msgpack: invalid JSON")
	// ErrTooDeep is returned for JSON nested deeper than
	// JSONOptions.MaxDepth.
	ErrTooDeep = errors.New("msgpack: JSON nested too deep")
	// ErrNumberRange is returned with JSONOptions.Exact for a number beyond
	// float64's range.
	ErrNumberRange = errors.New("msgpack: JSON number out of range")
)

// DefaultMaxDepth is the nesting AppendJSON accepts by default: the limit
// of encoding/json, which refuses text nested deeper.
const DefaultMaxDepth = 10000

// JSONOptions adjust AppendJSON. The zero value writes what notepack.io
// writes and accepts nesting up to DefaultMaxDepth.
type JSONOptions struct {
	// MaxDepth bounds nesting, so that hostile input cannot exhaust the
	// stack or outgrow what the receiving decoder accepts: a value inside
	// more than MaxDepth arrays and objects is refused with ErrTooDeep.
	// Zero (or less) means DefaultMaxDepth.
	MaxDepth int

	// Exact keeps every number's JSON value, for a reader that writes the
	// MessagePack back as the JSON encoding/json would (the Redis adapters'
	// wire formats): -0 becomes a float 64 -0, where notepack.io writes 0,
	// and a number beyond float64's range is refused with ErrNumberRange,
	// where notepack.io writes an infinity (which JSON cannot hold).
	Exact bool
}

// AppendJSON appends the MessagePack form of the JSON text js, one value
// with optional white space around it, to b. Objects become maps whose
// members keep their order (duplicate names included), arrays arrays,
// strings strings (invalid UTF-8 replaced by U+FFFD, as encoding/json
// decodes it). A number becomes what notepack.io writes for the JavaScript
// number JSON.parse gives: an integral value (2, 2.0 and 2e0 alike) within
// 64 bits the smallest integer that holds it, -0 as 0, anything else a
// float 64; integers written without fraction or exponent are exact (where
// JavaScript rounds them beyond 2^53).
// An object that is exactly events.AppendBytesJSON's marker becomes bin.
//
// On error, which wraps ErrInvalidJSON, ErrTooDeep or ErrNumberRange, it
// returns nil.
func AppendJSON(b, js []byte, opts JSONOptions) ([]byte, error) {
	t := transcoder{src: js, maxDepth: opts.MaxDepth, exact: opts.Exact}
	if t.maxDepth <= 0 {
		t.maxDepth = DefaultMaxDepth
	}
	t.space()
	b, err := t.value(b, 0)
	if err != nil {
		return nil, err
	}
	t.space()
	if t.pos != len(t.src) {
		return nil, t.invalid("trailing data")
	}
	return b, nil
}

// transcoder reads JSON text from src, checking it as it goes.
type transcoder struct {
	src      []byte
	pos      int
	maxDepth int
	exact    bool
}

// invalid returns an ErrInvalidJSON error for what is at t.pos.
func (t *transcoder) invalid(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrInvalidJSON, what, t.pos)
}

func (t *transcoder) space() {
	for t.pos < len(t.src) {
		switch t.src[t.pos] {
		case ' ', '\t', '\n', '\r':
			t.pos++
		default:
			return
		}
	}
}

// value transcodes the value at t.pos, which is inside depth arrays and
// objects.
func (t *transcoder) value(b []byte, depth int) ([]byte, error) {
	if depth > t.maxDepth {
		return nil, fmt.Errorf("%w: deeper than %d at offset %d", ErrTooDeep, t.maxDepth, t.pos)
	}
	if t.pos >= len(t.src) {
		return nil, t.invalid("unexpected end")
	}
	switch c := t.src[t.pos]; {
	case c == '{':
		if data, n, ok := events.ParseBytesJSON(t.src[t.pos:]); ok {
			t.pos += n
			return AppendBin(b, data), nil
		}
		return t.container(b, '}', depth)
	case c == '[':
		return t.container(b, ']', depth)
	case c == '"':
		return t.str(b)
	case c == 't':
		return t.literal(AppendBool(b, true), "true")
	case c == 'f':
		return t.literal(AppendBool(b, false), "false")
	case c == 'n':
		return t.literal(AppendNil(b), "null")
	case c == '-' || c >= '0' && c <= '9':
		return t.number(b)
	default:
		return nil, t.invalid(fmt.Sprintf("unexpected %q", c))
	}
}

// literal checks that word is at t.pos and returns b, in which the caller
// has written it.
func (t *transcoder) literal(b []byte, word string) ([]byte, error) {
	if len(t.src)-t.pos < len(word) || string(t.src[t.pos:t.pos+len(word)]) != word {
		return nil, t.invalid("bad literal")
	}
	t.pos += len(word)
	return b, nil
}

// container transcodes the object (end '}') or array (end ']') at t.pos.
// Its header, whose size depends on the count, is written over a
// placeholder once the members are.
func (t *transcoder) container(b []byte, end byte, depth int) ([]byte, error) {
	t.pos++ // { or [
	hdr := len(b)
	b = append(b, 0, 0, 0, 0, 0)
	t.space()
	if t.pos < len(t.src) && t.src[t.pos] == end {
		t.pos++
		return patchHeader(b, hdr, 0, end == '}'), nil
	}
	for n := 1; ; n++ {
		t.space()
		var err error
		if end == '}' {
			if t.pos >= len(t.src) || t.src[t.pos] != '"' {
				return nil, t.invalid("object key expected")
			}
			if b, err = t.str(b); err != nil {
				return nil, err
			}
			t.space()
			if t.pos >= len(t.src) || t.src[t.pos] != ':' {
				return nil, t.invalid("':' expected")
			}
			t.pos++
			t.space()
		}
		if b, err = t.value(b, depth+1); err != nil {
			return nil, err
		}
		t.space()
		switch {
		case t.pos >= len(t.src):
			return nil, t.invalid("unexpected end")
		case t.src[t.pos] == ',':
			t.pos++
		case t.src[t.pos] == end:
			t.pos++
			return patchHeader(b, hdr, n, end == '}'), nil
		default:
			return nil, t.invalid(fmt.Sprintf("',' or '%c' expected", end))
		}
	}
}

// patchHeader writes the smallest header for n elements over the 5-byte
// placeholder at pos, moving what follows it.
func patchHeader(b []byte, pos, n int, isMap bool) []byte {
	var hdr []byte
	if isMap {
		hdr = AppendMapHeader(b[pos:pos], n)
	} else {
		hdr = AppendArrayHeader(b[pos:pos], n)
	}
	if shift := 5 - len(hdr); shift > 0 {
		copy(b[pos+len(hdr):], b[pos+5:])
		b = b[:len(b)-shift]
	}
	return b
}

// str transcodes the string at t.pos.
func (t *transcoder) str(b []byte) ([]byte, error) {
	start := t.pos
	t.pos++ // opening quote
	escaped := false
	for t.pos < len(t.src) {
		switch c := t.src[t.pos]; {
		case c == '"':
			t.pos++
			raw := t.src[start:t.pos]
			if s := raw[1 : len(raw)-1]; !escaped && utf8.Valid(s) {
				return append(AppendStringHeader(b, len(s)), s...), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				t.pos = start
				return nil, t.invalid("bad string")
			}
			return AppendString(b, s), nil
		case c == '\\':
			escaped = true
			t.pos += 2
		case c < 0x20:
			return nil, t.invalid("control character in string")
		default:
			t.pos++
		}
	}
	t.pos = start
	return nil, t.invalid("unterminated string")
}

// number transcodes the number at t.pos.
func (t *transcoder) number(b []byte) ([]byte, error) {
	start := t.pos
	for t.pos < len(t.src) {
		c := t.src[t.pos]
		if c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' && (c < '0' || c > '9') {
			break
		}
		t.pos++
	}
	lit := string(t.src[start:t.pos])
	if !validNumber(lit) {
		t.pos = start
		return nil, t.invalid(fmt.Sprintf("bad number %q", lit))
	}
	// An integer literal is exact up to 64 bits (JavaScript would round it
	// to a float64 first); -0 is not one (it is a float: below).
	if v, err := strconv.ParseInt(lit, 10, 64); err == nil && (v != 0 || lit[0] != '-') {
		return AppendInt(b, v), nil
	}
	if v, err := strconv.ParseUint(lit, 10, 64); err == nil {
		return AppendUint(b, v), nil
	}
	// A valid literal fails only with ErrRange: ±Inf for overflow, 0 (no
	// error) for underflow.
	f, _ := strconv.ParseFloat(lit, 64)
	if t.exact {
		if math.IsInf(f, 0) {
			t.pos = start
			return nil, fmt.Errorf("%w: %s at offset %d", ErrNumberRange, lit, t.pos)
		}
		if f == 0 && math.Signbit(f) {
			return AppendFloat(b, f), nil
		}
	}
	return AppendNumber(b, f), nil
}

// validNumber reports whether s is a number in JSON's grammar.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i = digits(s, i); i < 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i = digits(s, i); i < 0 {
			return false
		}
	}
	return i == len(s)
}

// digits returns the index after the run of digits at s[i:], or -1 if
// there is none.
func digits(s string, i int) int {
	d := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == d {
		return -1
	}
	return i
}
