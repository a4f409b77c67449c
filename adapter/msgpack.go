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
)

// This file holds herald's own MessagePack codec for the wire format of
// Socket.IO's Redis adapters. It transcodes JSON to MessagePack and back
// without going through Go maps, so object keys keep their order and the JSON
// a remote node delivers is byte for byte the JSON the publishing node
// delivered to its own sockets. (The upstream Go adapter decodes into maps
// and encodes structs by field name, ignoring json tags.)

// ErrMalformed is returned for a message on a Redis channel that is not in
// the Socket.IO Redis adapter's format, or that herald cannot deliver.
var ErrMalformed = errors.New("adapter: malformed message")

// maxDepth bounds nesting in both directions, so that hostile input cannot
// exhaust the stack.
const maxDepth = 200

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ---- MessagePack writing ----

func mpAppendNil(b []byte) []byte { return append(b, 0xc0) }

func mpAppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func mpAppendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return mpAppendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
	}
}

func mpAppendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
	}
}

func mpAppendFloat(b []byte, v float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(v))
}

func mpAppendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
}

func mpAppendString(b []byte, s string) []byte {
	return append(mpAppendStrHeader(b, len(s)), s...)
}

func mpAppendBin(b, data []byte) []byte {
	n := len(data)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, data...)
}

func mpAppendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

func mpAppendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
	}
}

func mpAppendStrings(b []byte, ss []string) []byte {
	b = mpAppendArrayHeader(b, len(ss))
	for _, s := range ss {
		b = mpAppendString(b, s)
	}
	return b
}

// patchHeader rewrites the 5-byte placeholder container header at pos into
// the smallest header for n elements, moving what follows it.
func patchHeader(b []byte, pos, n int, isMap bool) []byte {
	var hdr []byte
	if isMap {
		hdr = mpAppendMapHeader(make([]byte, 0, 5), n)
	} else {
		hdr = mpAppendArrayHeader(make([]byte, 0, 5), n)
	}
	copy(b[pos:], hdr)
	if shift := 5 - len(hdr); shift > 0 {
		copy(b[pos+len(hdr):], b[pos+5:])
		b = b[:len(b)-shift]
	}
	return b
}

// jsonToMsgpack appends the MessagePack form of the JSON value js to b.
// Integers that fit 64 bits become MessagePack integers and every other
// number a float64, as JavaScript's notepack.io encodes them, so that
// msgpackToJSON gives back the bytes encoding/json produced.
func jsonToMsgpack(b, js []byte) ([]byte, error) {
	p := jsonParser{src: js}
	p.skipSpace()
	b, err := p.value(b, 0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, malformed("JSON: trailing data at offset %d", p.pos)
	}
	return b, nil
}

type jsonParser struct {
	src []byte
	pos int
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, malformed("JSON nested deeper than %d", maxDepth)
	}
	if p.pos >= len(p.src) {
		return nil, malformed("JSON: unexpected end")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(b, depth)
	case c == '[':
		return p.array(b, depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return mpAppendString(b, s), nil
	case c == 't':
		return p.literal(b, "true", mpAppendBool(b, true))
	case c == 'f':
		return p.literal(b, "false", mpAppendBool(b, false))
	case c == 'n':
		return p.literal(b, "null", mpAppendNil(b))
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(b)
	default:
		return nil, malformed("JSON: unexpected %q at offset %d", c, p.pos)
	}
}

func (p *jsonParser) literal(b []byte, word string, out []byte) ([]byte, error) {
	if len(p.src)-p.pos < len(word) || string(p.src[p.pos:p.pos+len(word)]) != word {
		return nil, malformed("JSON: bad literal at offset %d", p.pos)
	}
	p.pos += len(word)
	return out, nil
}

func (p *jsonParser) object(b []byte, depth int) ([]byte, error) {
	if data, n, ok := events.ParseBytesJSON(p.src[p.pos:]); ok {
		// Binary data (events.Bytes), which Socket.IO's MessagePack carries
		// as bin.
		p.pos += n
		return mpAppendBin(b, data), nil
	}
	p.pos++ // {
	pos := len(b)
	b = append(b, 0, 0, 0, 0, 0)
	n := 0
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		return patchHeader(b, pos, 0, true), nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, malformed("JSON: object key expected at offset %d", p.pos)
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		b = mpAppendString(b, key)
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, malformed("JSON: ':' expected at offset %d", p.pos)
		}
		p.pos++
		p.skipSpace()
		if b, err = p.value(b, depth+1); err != nil {
			return nil, err
		}
		n++
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, malformed("JSON: unterminated object")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return patchHeader(b, pos, n, true), nil
		default:
			return nil, malformed("JSON: ',' or '}' expected at offset %d", p.pos)
		}
	}
}

func (p *jsonParser) array(b []byte, depth int) ([]byte, error) {
	p.pos++ // [
	pos := len(b)
	b = append(b, 0, 0, 0, 0, 0)
	n := 0
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		return patchHeader(b, pos, 0, false), nil
	}
	for {
		p.skipSpace()
		var err error
		if b, err = p.value(b, depth+1); err != nil {
			return nil, err
		}
		n++
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, malformed("JSON: unterminated array")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return patchHeader(b, pos, n, false), nil
		default:
			return nil, malformed("JSON: ',' or ']' expected at offset %d", p.pos)
		}
	}
}

// str reads a JSON string at p.pos.
func (p *jsonParser) str() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	plain := true
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			raw := p.src[start:p.pos]
			if plain {
				return string(raw[1 : len(raw)-1]), nil
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", malformed("JSON: bad string at offset %d", start)
			}
			return s, nil
		case c == '\\':
			plain = false
			p.pos += 2
		case c < 0x20:
			return "", malformed("JSON: control character in string at offset %d", p.pos)
		default:
			if c >= utf8.RuneSelf {
				plain = false
			}
			p.pos++
		}
	}
	return "", malformed("JSON: unterminated string")
}

func (p *jsonParser) number(b []byte) ([]byte, error) {
	start := p.pos
	isFloat := false
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '.' || c == 'e' || c == 'E' {
			isFloat = true
		} else if c != '-' && c != '+' && (c < '0' || c > '9') {
			break
		}
		p.pos++
	}
	lit := string(p.src[start:p.pos])
	if !validJSONNumber(lit) {
		return nil, malformed("JSON: bad number %q", lit)
	}
	if !isFloat && lit != "-0" { // encoding/json writes a float -0 as "-0"
		if v, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return mpAppendInt(b, v), nil
		}
		if v, err := strconv.ParseUint(lit, 10, 64); err == nil {
			return mpAppendUint(b, v), nil
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, malformed("JSON: bad number %q", lit)
	}
	if math.IsInf(f, 0) {
		return nil, malformed("JSON: number %q out of range", lit)
	}
	return mpAppendFloat(b, f), nil
}

// validJSONNumber reports whether s is a number in JSON's grammar.
func validJSONNumber(s string) bool {
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
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(s)
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
	c, err := r.byte1()
	if err != nil {
		return "", err
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
		return "", malformed("msgpack: string expected, got 0x%02x", c)
	}
	if err != nil {
		return "", err
	}
	s, err := r.need(n)
	return string(s), err
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
