package parser

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/herald-rt/herald/events"
)

// mpKind is the kind of a MessagePack value as JSON sees it.
type mpKind uint8

const (
	mpUndefined mpKind = iota // notepack.io's undefined: nothing written
	mpNull                    // nil, and what JSON.stringify writes as null (NaN, infinities, invalid Dates)
	mpBool
	mpNumber
	mpString // strings and valid Dates
	mpBin    // bin and the ArrayBuffer extension: an events.Bytes marker
	mpArray
	mpMap
)

// msgpackUndefined is notepack.io's undefined (fixext 1 of type 0), as
// mpReader.scalar returns it.
type msgpackUndefined struct{}

// otherValue is what mpReader.scalar returns for a value that is neither
// a number, a string, nil nor undefined.
type otherValue struct{}

// mpReader reads MessagePack values from a byte slice and writes them as
// the JSON text JSON.stringify would write for what notepack.io decodes:
//
//   - a map becomes an object whose members keep their order, except as a
//     JavaScript object orders them: members named by an array index
//     ("0" to "4294967294") first, in numeric order; a name given twice
//     keeps its first position and its last value; a member whose value is
//     undefined is left out. Unlike JavaScript, a member named __proto__
//     is kept, as JSON.parse keeps it. A key that is not a string is an
//     error (notepack.io would turn it into one).
//   - undefined is null in an array;
//   - strings are escaped as JSON.stringify escapes them; invalid UTF-8 is
//     replaced by U+FFFD as Node's Buffer.toString replaces it;
//   - integers are exact, where notepack.io rounds those beyond 2^53 to a
//     float64; floats are written as JavaScript's Number.prototype.toString
//     writes them; NaN and infinities are null;
//   - bin and notepack.io's ArrayBuffer extension (ext of type 0) become
//     events.Bytes markers; its Date extension (fixext 8 of type 0) the
//     ISO 8601 text of Date.prototype.toJSON, or null outside Date's range.
//     Other extensions, MessagePack's timestamp among them, are refused
//     (notepack.io would decode them as [type, Buffer] or a Date).
//
// Every length is checked against the bytes left before anything is
// allocated, and nesting is bounded by maxMsgpackDepth.
type mpReader struct {
	b   []byte
	pos int
	// members holds the members of the maps being written, innermost
	// last.
	members []mpMember
}

// mpMember is one map member written at dst[key:end]: the key's JSON
// string up to colon, then ':' and the value.
type mpMember struct {
	key, colon, end int
	undefined       bool
}

func (r *mpReader) truncated() error {
	return invalidf("truncated at offset %d", r.pos)
}

func (r *mpReader) need(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, r.truncated()
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s, nil
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

// length reads an n-byte length and checks it against the bytes left:
// every element, and every byte of a string, takes at least one.
func (r *mpReader) length(n int) (int, error) {
	v, err := r.uintN(n)
	if err != nil {
		return 0, err
	}
	if v > uint64(len(r.b)-r.pos) {
		return 0, invalidf("length %d at offset %d exceeds the message", v, r.pos)
	}
	return int(v), nil
}

// mapHeader reads the header of a map and returns its length; if the
// value at r.pos is no map, it reads nothing and returns false.
func (r *mpReader) mapHeader() (int, bool, error) {
	if r.pos >= len(r.b) {
		return 0, false, r.truncated()
	}
	switch c := r.b[r.pos]; {
	case c&0xf0 == 0x80:
		r.pos++
		return int(c & 0x0f), true, nil
	case c == 0xde || c == 0xdf:
		r.pos++
		n, err := r.length(2 << (c - 0xde))
		return n, err == nil, err
	}
	return 0, false, nil
}

// strHeader reads the header of a string and returns its length; if the
// value at r.pos is no string, it reads nothing and returns false.
func (r *mpReader) strHeader() (int, bool, error) {
	if r.pos >= len(r.b) {
		return 0, false, r.truncated()
	}
	switch c := r.b[r.pos]; {
	case c&0xe0 == 0xa0:
		r.pos++
		return int(c & 0x1f), true, nil
	case c >= 0xd9 && c <= 0xdb:
		r.pos++
		n, err := r.length(1 << (c - 0xd9))
		return n, err == nil, err
	}
	return 0, false, nil
}

// key reads a map key, which must be a string, and returns its bytes as
// they are in the message.
func (r *mpReader) key() ([]byte, error) {
	n, ok, err := r.strHeader()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalidf("map key at offset %d is %s, not a string", r.pos, mpTypeName(r.b[r.pos]))
	}
	return r.need(n)
}

// scalar reads one value for the packet's own members: an int64, a
// uint64 (beyond int64), a float64, nil (nil, and NaN and infinities as
// JSON holds them), a string, msgpackUndefined, or otherValue for
// anything else (checked as value checks it).
func (r *mpReader) scalar(depth int) (any, error) {
	if r.pos >= len(r.b) {
		return nil, r.truncated()
	}
	if n, ok, err := r.strHeader(); err != nil {
		return nil, err
	} else if ok {
		s, err := r.need(n)
		if err != nil {
			return nil, err
		}
		return jsString(s), nil
	}
	c := r.b[r.pos]
	switch {
	case c <= 0x7f:
		r.pos++
		return int64(c), nil
	case c >= 0xe0:
		r.pos++
		return int64(int8(c)), nil
	case c == 0xc0:
		r.pos++
		return nil, nil
	case c == 0xca, c == 0xcb:
		r.pos++
		f, err := r.float(c)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, err
		}
		return f, nil
	case c >= 0xcc && c <= 0xd3:
		r.pos++
		v, u, big, err := r.integer(c)
		switch {
		case err != nil:
			return nil, err
		case big:
			return u, nil
		}
		return v, nil
	case c == 0xd4 && len(r.b)-r.pos >= 3 && r.b[r.pos+1] == 0:
		r.pos += 3
		return msgpackUndefined{}, nil
	}
	if _, _, err := r.value(nil, depth); err != nil {
		return nil, err
	}
	return otherValue{}, nil
}

// float reads the float 32 (0xca) or float 64 (0xcb) after c.
func (r *mpReader) float(c byte) (float64, error) {
	if c == 0xca {
		v, err := r.uintN(4)
		return float64(math.Float32frombits(uint32(v))), err
	}
	v, err := r.uintN(8)
	return math.Float64frombits(v), err
}

// integer reads the uint 8 to int 64 (0xcc to 0xd3) after c: v, or u
// when big (a uint 64 beyond int64's range).
func (r *mpReader) integer(c byte) (v int64, u uint64, big bool, err error) {
	if c <= 0xcf {
		x, err := r.uintN(1 << (c - 0xcc))
		if x > math.MaxInt64 {
			return 0, x, true, err
		}
		return int64(x), 0, false, err
	}
	n := 1 << (c - 0xd0)
	x, err := r.uintN(n)
	switch n {
	case 1:
		return int64(int8(x)), 0, false, err
	case 2:
		return int64(int16(x)), 0, false, err
	case 4:
		return int64(int32(x)), 0, false, err
	}
	return int64(x), 0, false, err
}

// value reads one value and appends its JSON text to dst; depth is the
// nesting of the containers around it. Undefined appends nothing.
func (r *mpReader) value(dst []byte, depth int) ([]byte, mpKind, error) {
	if r.pos >= len(r.b) {
		return nil, 0, r.truncated()
	}
	c := r.b[r.pos]
	r.pos++
	switch {
	case c <= 0x7f:
		return strconv.AppendInt(dst, int64(c), 10), mpNumber, nil
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), mpNumber, nil
	case c&0xf0 == 0x80:
		dst, err := r.mapValue(dst, int(c&0x0f), depth)
		return dst, mpMap, err
	case c&0xf0 == 0x90:
		dst, err := r.arrayValue(dst, int(c&0x0f), depth)
		return dst, mpArray, err
	case c&0xe0 == 0xa0:
		return r.str(dst, int(c&0x1f))
	}
	switch c {
	case 0xc0:
		return append(dst, "null"...), mpNull, nil
	case 0xc2:
		return append(dst, "false"...), mpBool, nil
	case 0xc3:
		return append(dst, "true"...), mpBool, nil
	case 0xc4, 0xc5, 0xc6: // bin 8, 16, 32
		n, err := r.length(1 << (c - 0xc4))
		if err != nil {
			return nil, 0, err
		}
		s, err := r.need(n)
		if err != nil {
			return nil, 0, err
		}
		return events.AppendBytesJSON(dst, s), mpBin, nil
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32
		n, err := r.length(1 << (c - 0xc7))
		if err != nil {
			return nil, 0, err
		}
		return r.ext(dst, n, false)
	case 0xca, 0xcb:
		f, err := r.float(c)
		if err != nil {
			return nil, 0, err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...), mpNull, nil
		}
		return appendJSNumber(dst, f), mpNumber, nil
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3:
		v, u, big, err := r.integer(c)
		switch {
		case err != nil:
			return nil, 0, err
		case big:
			return strconv.AppendUint(dst, u, 10), mpNumber, nil
		}
		return strconv.AppendInt(dst, v, 10), mpNumber, nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		return r.ext(dst, 1<<(c-0xd4), true)
	case 0xd9, 0xda, 0xdb:
		n, err := r.length(1 << (c - 0xd9))
		if err != nil {
			return nil, 0, err
		}
		return r.str(dst, n)
	case 0xdc, 0xdd:
		n, err := r.length(2 << (c - 0xdc))
		if err != nil {
			return nil, 0, err
		}
		dst, err = r.arrayValue(dst, n, depth)
		return dst, mpArray, err
	case 0xde, 0xdf:
		n, err := r.length(2 << (c - 0xde))
		if err != nil {
			return nil, 0, err
		}
		dst, err = r.mapValue(dst, n, depth)
		return dst, mpMap, err
	}
	return nil, 0, invalidf("unknown type 0x%02x at offset %d", c, r.pos-1)
}

func (r *mpReader) str(dst []byte, n int) ([]byte, mpKind, error) {
	s, err := r.need(n)
	if err != nil {
		return nil, 0, err
	}
	return appendJSONString(dst, s), mpString, nil
}

// ext reads an extension value of n data bytes. notepack.io writes three:
// undefined (fixext 1, type 0), Date (fixext 8, type 0: milliseconds since
// the epoch, int64) and, in Node, ArrayBuffer (ext 8/16/32, type 0).
func (r *mpReader) ext(dst []byte, n int, fixed bool) ([]byte, mpKind, error) {
	s, err := r.need(1)
	if err != nil {
		return nil, 0, err
	}
	typ := int8(s[0])
	data, err := r.need(n)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case typ != 0:
	case !fixed:
		return events.AppendBytesJSON(dst, data), mpBin, nil
	case n == 1:
		return dst, mpUndefined, nil
	case n == 8:
		ms := int64(binary.BigEndian.Uint64(data))
		if !jsDateValid(ms) {
			return append(dst, "null"...), mpNull, nil
		}
		return appendJSDate(dst, ms), mpString, nil
	}
	return nil, 0, invalidf("extension type %d of %d bytes is not supported", typ, n)
}

func (r *mpReader) arrayValue(dst []byte, n, depth int) ([]byte, error) {
	if depth >= maxMsgpackDepth {
		return nil, invalidf("nested deeper than %d", maxMsgpackDepth)
	}
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		var kind mpKind
		var err error
		if dst, kind, err = r.value(dst, depth+1); err != nil {
			return nil, err
		}
		if kind == mpUndefined {
			dst = append(dst, "null"...) // as JSON.stringify
		}
	}
	return append(dst, ']'), nil
}

func (r *mpReader) mapValue(dst []byte, n, depth int) ([]byte, error) {
	if depth >= maxMsgpackDepth {
		return nil, invalidf("nested deeper than %d", maxMsgpackDepth)
	}
	start := len(dst)
	dst = append(dst, '{')
	base := len(r.members)
	plain := true // no member to drop, merge or move
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		key, err := r.key()
		if err != nil {
			return nil, err
		}
		m := mpMember{key: len(dst)}
		dst = appendJSONString(dst, key)
		m.colon = len(dst)
		dst = append(dst, ':')
		var kind mpKind
		if dst, kind, err = r.value(dst, depth+1); err != nil {
			return nil, err
		}
		m.end, m.undefined = len(dst), kind == mpUndefined
		if m.undefined || isArrayIndex(dst[m.key:m.colon]) {
			plain = false
		}
		r.members = append(r.members, m)
	}
	ms := r.members[base:]
	if plain && hasDuplicateKeys(dst, ms) {
		plain = false
	}
	if plain {
		dst = append(dst, '}')
	} else {
		dst = rewriteObject(dst, start, ms)
	}
	r.members = r.members[:base]
	return dst, nil
}

// isArrayIndex reports whether the JSON string key names an array index,
// "0" to "4294967294" in canonical form, which a JavaScript object
// orders before its other members.
func isArrayIndex(key []byte) bool {
	d := key[1 : len(key)-1]
	if len(d) == 0 || len(d) > 10 || d[0] == '0' && len(d) > 1 {
		return false
	}
	var v uint64
	for _, c := range d {
		if !isDigit(c) {
			return false
		}
		v = v*10 + uint64(c-'0')
	}
	return v <= math.MaxUint32-1
}

// hasDuplicateKeys reports whether two of the members written in dst
// have the same key (JSON strings written one way only are equal when
// their texts are).
func hasDuplicateKeys(dst []byte, ms []mpMember) bool {
	if len(ms) <= 16 {
		for i, a := range ms {
			for _, b := range ms[:i] {
				if string(dst[a.key:a.colon]) == string(dst[b.key:b.colon]) {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[string]struct{}, len(ms))
	for _, m := range ms {
		k := string(dst[m.key:m.colon])
		if _, dup := seen[k]; dup {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

// rewriteObject rewrites the object written at dst[start:] from its
// members ms as a JavaScript object would hold them (see mpReader) and
// closes it.
func rewriteObject(dst []byte, start int, ms []mpMember) []byte {
	// first and last occurrence of each distinct key, in order of first
	// occurrence.
	type slot struct{ first, last int }
	slots := make([]slot, 0, len(ms))
	index := make(map[string]int, len(ms))
	for i, m := range ms {
		k := string(dst[m.key:m.colon])
		if j, ok := index[k]; ok {
			slots[j].last = i
			continue
		}
		index[k] = len(slots)
		slots = append(slots, slot{i, i})
	}
	// Array indexes first, in numeric order; the rest keep their order.
	slices.SortStableFunc(slots, func(a, b slot) int {
		ka, kb := dst[ms[a.first].key:ms[a.first].colon], dst[ms[b.first].key:ms[b.first].colon]
		ia, ib := isArrayIndex(ka), isArrayIndex(kb)
		switch {
		case ia && ib:
			// Canonical decimal numbers: shorter is smaller.
			if len(ka) != len(kb) {
				return len(ka) - len(kb)
			}
			return slices.Compare(ka, kb)
		case ia:
			return -1
		case ib:
			return 1
		}
		return 0
	})
	out := make([]byte, 0, len(dst)-start+1)
	out = append(out, '{')
	for _, s := range slots {
		v := ms[s.last]
		if v.undefined {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, dst[v.key:v.end]...)
	}
	out = append(out, '}')
	return append(dst[:start], out...)
}

// appendJSNumber appends f, finite, as JavaScript's Number.prototype
// .toString writes it (and so JSON.stringify): the shortest decimal that
// reads back as f, in plain notation from 1e-6 up to 1e21 and in
// exponential notation ("1e+21", "1.5e-7") outside; -0 as 0.
func appendJSNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±xx
	var digits [24]byte
	k := 0
	i := 0
	for ; e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[k] = e[i]
			k++
		}
	}
	exp, _ := strconv.Atoi(string(e[i+1:]))
	n := exp + 1 // the decimal point is n digits after the first one's start
	d := digits[:k]
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// jsMaxDate is the largest distance from the epoch, in milliseconds, of a
// JavaScript Date.
const jsMaxDate = 8.64e15

func jsDateValid(ms int64) bool { return ms <= jsMaxDate && ms >= -jsMaxDate }

// appendJSDate appends what JSON.stringify writes for the Date of ms
// milliseconds since the epoch: Date.prototype.toISOString's text, or
// null outside JavaScript's Date range.
func appendJSDate(dst []byte, ms int64) []byte {
	if !jsDateValid(ms) {
		return append(dst, "null"...)
	}
	t := time.UnixMilli(ms).UTC()
	dst = append(dst, '"')
	switch y := t.Year(); {
	case y < 0:
		dst = fmt.Appendf(dst, "-%06d", -y)
	case y > 9999:
		dst = fmt.Appendf(dst, "+%06d", y)
	default:
		dst = fmt.Appendf(dst, "%04d", y)
	}
	dst = t.AppendFormat(dst, "-01-02T15:04:05.000Z")
	return append(dst, '"')
}

// mpTypeName names the MessagePack type that starts with c, for errors.
func mpTypeName(c byte) string {
	switch {
	case c <= 0x7f || c >= 0xe0 || c >= 0xcc && c <= 0xd3:
		return "an integer"
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		return "a map"
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		return "an array"
	case c&0xe0 == 0xa0 || c >= 0xd9 && c <= 0xdb:
		return "a string"
	case c == 0xc0:
		return "nil"
	case c == 0xc2 || c == 0xc3:
		return "a boolean"
	case c >= 0xc4 && c <= 0xc6:
		return "bin"
	case c == 0xca || c == 0xcb:
		return "a float"
	case c >= 0xc7 && c <= 0xc9 || c >= 0xd4 && c <= 0xd8:
		return "an extension"
	}
	return fmt.Sprintf("type 0x%02x", c)
}
