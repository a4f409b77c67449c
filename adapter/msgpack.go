package adapter

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/herald-rt/herald/events"
	"github.com/herald-rt/herald/internal/msgpack"
)

// This file holds herald's own MessagePack codec for the wire format of
// Socket.IO's Redis adapters: writing is internal/msgpack's, reading is
// here. It transcodes JSON to MessagePack and back without going through Go
// maps, so object keys keep their order and the JSON a remote node delivers
// is byte for byte the JSON the publishing node delivered to its own
// sockets. (The upstream Go adapter decodes into maps and encodes structs
// by field name, ignoring json tags.)

// ErrMalformed is returned for a message on a Redis channel that is not in
// the Socket.IO Redis adapter's format, or that herald cannot deliver.
var ErrMalformed = errors.New("adapter: malformed message")

// maxDepth bounds nesting in both directions, so that hostile input cannot
// exhaust the stack.
const maxDepth = 200

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ---- JSON to MessagePack ----

// jsonToMsgpack appends the MessagePack form of the JSON value js to b, as
// msgpack.AppendJSON writes it with exact numbers (-0 stays -0, numbers
// beyond float64's range are refused), so that toJSON gives back the bytes
// encoding/json produced. Nesting is bounded by maxDepth, as in reading.
func jsonToMsgpack(b, js []byte) ([]byte, error) {
	b, err := msgpack.AppendJSON(b, js, msgpack.JSONOptions{MaxDepth: maxDepth, Exact: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return b, nil
}

// ---- MessagePack reading ----

// mpReader reads MessagePack values from a byte slice.
type mpReader struct {
	b   []byte
	pos int
}

func (r *mpReader) need(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, malformed("msgpack: truncated at offset %d", r.pos)
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
}

func (r *mpReader) byte1() (byte, error) {
	s, err := r.need(1)
	if err != nil {
		return 0, err
	}
	return s[0], nil
}

func (r *mpReader) uintN(n int) (uint64, error) {
	s, err := r.need(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(s[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(s)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(s)), nil
	default:
		return binary.BigEndian.Uint64(s), nil
	}
}

// length reads a length of n bytes and checks it against what is left:
// every element takes at least one byte.
func (r *mpReader) length(n int) (int, error) {
	v, err := r.uintN(n)
	if err != nil {
		return 0, err
	}
	if v > uint64(len(r.b)-r.pos) {
		return 0, malformed("msgpack: length %d exceeds the message", v)
	}
	return int(v), nil
}

// peekNil consumes a nil and reports whether there was one.
func (r *mpReader) peekNil() bool {
	if r.pos < len(r.b) && r.b[r.pos] == 0xc0 {
		r.pos++
		return true
	}
	return false
}

func (r *mpReader) arrayLen() (int, error) { return r.containerLen(0x90, 0xdc, "array") }

func (r *mpReader) mapLen() (int, error) { return r.containerLen(0x80, 0xde, "map") }

// containerLen reads the header of an array or map: fix is the fixarray or
// fixmap prefix, len16 the 16-bit form (the 32-bit form follows it).
func (r *mpReader) containerLen(fix, len16 byte, what string) (int, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == fix:
		return int(c & 0x0f), nil
	case c == len16:
		return r.length(2)
	case c == len16+1:
		return r.length(4)
	}
	return 0, malformed("msgpack: %s expected, got 0x%02x", what, c)
}

func (r *mpReader) str() (string, error) {
	s, err := r.strBytes()
	return string(s), err
}

// strBytes reads a string and returns its bytes, in r's buffer.
func (r *mpReader) strBytes() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9:
		n, err = r.length(1)
	case c == 0xda:
		n, err = r.length(2)
	case c == 0xdb:
		n, err = r.length(4)
	default:
		return nil, malformed("msgpack: string expected, got 0x%02x", c)
	}
	if err != nil {
		return nil, err
	}
	return r.need(n)
}

// integer reads any MessagePack integer, or a float64 with an integral
// value (how JavaScript encoders may write numbers).
func (r *mpReader) integer() (int64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	}
	switch c {
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := r.uintN(1 << (c - 0xcc))
		if err != nil {
			return 0, err
		}
		if v > math.MaxInt64 {
			return 0, malformed("msgpack: integer out of range")
		}
		return int64(v), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		v, err := r.uintN(n)
		if err != nil {
			return 0, err
		}
		switch n {
		case 1:
			return int64(int8(v)), nil
		case 2:
			return int64(int16(v)), nil
		case 4:
			return int64(int32(v)), nil
		}
		return int64(v), nil
	case 0xcb:
		v, err := r.uintN(8)
		if err != nil {
			return 0, err
		}
		f := math.Float64frombits(v)
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, malformed("msgpack: integer expected, got %v", f)
		}
		return int64(f), nil
	}
	return 0, malformed("msgpack: integer expected, got 0x%02x", c)
}

// skip skips one value.
func (r *mpReader) skip(depth int) error {
	if depth > maxDepth {
		return malformed("msgpack nested deeper than %d", maxDepth)
	}
	c, err := r.byte1()
	if err != nil {
		return err
	}
	var n int
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return nil
	case c&0xf0 == 0x80:
		return r.skipN(2*int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return r.skipN(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		_, err = r.need(int(c & 0x1f))
		return err
	}
	switch c {
	case 0xcc, 0xd0:
		_, err = r.need(1)
	case 0xcd, 0xd1:
		_, err = r.need(2)
	case 0xce, 0xd2, 0xca:
		_, err = r.need(4)
	case 0xcf, 0xd3, 0xcb:
		_, err = r.need(8)
	case 0xd9, 0xc4:
		if n, err = r.length(1); err == nil {
			_, err = r.need(n)
		}
	case 0xda, 0xc5:
		if n, err = r.length(2); err == nil {
			_, err = r.need(n)
		}
	case 0xdb, 0xc6:
		if n, err = r.length(4); err == nil {
			_, err = r.need(n)
		}
	case 0xdc:
		if n, err = r.length(2); err == nil {
			err = r.skipN(n, depth)
		}
	case 0xdd:
		if n, err = r.length(4); err == nil {
			err = r.skipN(n, depth)
		}
	case 0xde:
		if n, err = r.length(2); err == nil {
			err = r.skipN(2*n, depth)
		}
	case 0xdf:
		if n, err = r.length(4); err == nil {
			err = r.skipN(2*n, depth)
		}
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		_, err = r.need(1 + 1<<(c-0xd4))
	case 0xc7, 0xc8, 0xc9:
		if n, err = r.length(1 << (c - 0xc7)); err == nil {
			_, err = r.need(1 + n)
		}
	default:
		return malformed("msgpack: unknown type 0x%02x", c)
	}
	return err
}

func (r *mpReader) skipN(n, depth int) error {
	for range n {
		if err := r.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// toJSON appends the JSON form of one MessagePack value to b, as
// JSON.stringify would write the value notepack.io decodes: integers and
// floats as numbers (NaN and infinities as null), maps as objects whose keys
// keep their order, timestamps (extension -1, and notepack.io's Date
// extension 0) as ISO 8601 strings, binary data in the JSON form of
// events.Bytes. Other extensions and maps with non-string keys are refused.
func (r *mpReader) toJSON(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, malformed("msgpack nested deeper than %d", maxDepth)
	}
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f:
		return strconv.AppendInt(b, int64(c), 10), nil
	case c >= 0xe0:
		return strconv.AppendInt(b, int64(int8(c)), 10), nil
	case c&0xf0 == 0x80:
		return r.objectJSON(b, int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return r.arrayJSON(b, int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		s, err := r.need(int(c & 0x1f))
		if err != nil {
			return nil, err
		}
		return appendJSONString(b, s), nil
	}
	var n int
	switch c {
	case 0xc0:
		return append(b, "null"...), nil
	case 0xc2:
		return append(b, "false"...), nil
	case 0xc3:
		return append(b, "true"...), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := r.uintN(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		return strconv.AppendUint(b, v, 10), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		r.pos--
		v, err := r.integer()
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(b, v, 10), nil
	case 0xca:
		v, err := r.uintN(4)
		if err != nil {
			return nil, err
		}
		return appendJSONFloat(b, float64(math.Float32frombits(uint32(v))), 32), nil
	case 0xcb:
		v, err := r.uintN(8)
		if err != nil {
			return nil, err
		}
		return appendJSONFloat(b, math.Float64frombits(v), 64), nil
	case 0xd9, 0xda, 0xdb:
		if n, err = r.length(1 << (c - 0xd9)); err != nil {
			return nil, err
		}
		s, err := r.need(n)
		if err != nil {
			return nil, err
		}
		return appendJSONString(b, s), nil
	case 0xdc, 0xdd:
		if n, err = r.length(2 << (c - 0xdc)); err != nil {
			return nil, err
		}
		return r.arrayJSON(b, n, depth)
	case 0xde, 0xdf:
		if n, err = r.length(2 << (c - 0xde)); err != nil {
			return nil, err
		}
		return r.objectJSON(b, n, depth)
	case 0xc4, 0xc5, 0xc6:
		if n, err = r.length(1 << (c - 0xc4)); err != nil {
			return nil, err
		}
		data, err := r.need(n)
		if err != nil {
			return nil, err
		}
		return events.AppendBytesJSON(b, data), nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return r.extJSON(b, 1<<(c-0xd4))
	case 0xc7, 0xc8, 0xc9:
		if n, err = r.length(1 << (c - 0xc7)); err != nil {
			return nil, err
		}
		return r.extJSON(b, n)
	}
	return nil, malformed("msgpack: unknown type 0x%02x", c)
}

func (r *mpReader) arrayJSON(b []byte, n, depth int) ([]byte, error) {
	b = append(b, '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = r.toJSON(b, depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

func (r *mpReader) objectJSON(b []byte, n, depth int) ([]byte, error) {
	b = append(b, '{')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		key, err := r.str()
		if err != nil {
			return nil, malformed("msgpack: map key is not a string")
		}
		b = appendJSONString(b, []byte(key))
		b = append(b, ':')
		if b, err = r.toJSON(b, depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// extJSON converts the timestamp extensions to the string
// JavaScript's Date.prototype.toJSON gives (millisecond precision, UTC).
func (r *mpReader) extJSON(b []byte, n int) ([]byte, error) {
	typ, err := r.byte1()
	if err != nil {
		return nil, err
	}
	data, err := r.need(n)
	if err != nil {
		return nil, err
	}
	var t time.Time
	switch {
	case int8(typ) == -1 && n == 4:
		t = time.Unix(int64(binary.BigEndian.Uint32(data)), 0)
	case int8(typ) == -1 && n == 8:
		v := binary.BigEndian.Uint64(data)
		t = time.Unix(int64(v&(1<<34-1)), int64(v>>34))
	case int8(typ) == -1 && n == 12:
		t = time.Unix(int64(binary.BigEndian.Uint64(data[4:])), int64(binary.BigEndian.Uint32(data)))
	case typ == 0 && n == 8:
		// notepack.io's legacy Date: milliseconds since the epoch, int64.
		ms := int64(binary.BigEndian.Uint64(data))
		if ms > 8.64e15 || ms < -8.64e15 { // outside JavaScript's Date range
			return append(b, "null"...), nil
		}
		t = time.UnixMilli(ms)
	default:
		return nil, malformed("msgpack: extension type %d is not supported", int8(typ))
	}
	return append(append(append(b, '"'), t.UTC().Format("2006-01-02T15:04:05.000Z07:00")...), '"'), nil
}

// appendJSONString appends s as a JSON string exactly as encoding/json
// writes it (HTML-safe escaping, invalid UTF-8 replaced).
func appendJSONString(b, s []byte) []byte {
	for _, c := range s {
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, err := json.Marshal(string(s))
			if err != nil { // cannot happen for a string
				return append(b, `""`...)
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONFloat formats f as encoding/json does; NaN and infinities, which
// JSON cannot hold, become null as in JSON.stringify.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
