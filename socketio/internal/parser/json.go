package parser

import (
	"encoding/json"
	"fmt"

	"github.com/herald-rt/herald/events"
)

// maxJSONDepth bounds the nesting of the JSON text the parsers check, as
// encoding/json does (which refuses text nested deeper): a value may be
// inside at most this many arrays and objects.
const maxJSONDepth = 10000

// scanFlags select what a jsonScan records besides checking the text.
type scanFlags uint8

const (
	// scanMarkers records events.Bytes markers, exactly the objects
	// events.ParseBytesJSON recognises (Encode).
	scanMarkers scanFlags = 1 << iota
	// scanPlaceholders records the objects whose "_placeholder" member is
	// true, the outermost ones only (the attachments' placeholders of a
	// binary packet, as socket.io-parser's reconstructPacket finds them).
	scanPlaceholders
)

// span is the text js[start:end].
type span struct{ start, end int }

// marker is an events.Bytes marker at js[start:end] and its data.
type marker struct {
	span
	data []byte
}

// placeholder is an object at js[start:end] whose "_placeholder" member
// is true; num is the text of its last "num" member (start -1 if none).
type placeholder struct {
	span
	num span
}

// jsonScan checks JSON text in one pass, linear in its length, without
// decoding it. Its grammar is JSON's (RFC 8259), as JSON.parse and
// encoding/json read it; like encoding/json it does not check that
// strings are valid UTF-8 (the default decoder checks the whole message
// first), and it refuses nesting deeper than maxJSONDepth.
type jsonScan struct {
	js    []byte
	pos   int
	flags scanFlags
	// first is the first element of the top-level array (start -1 when
	// the text is no array or an empty one).
	first   span
	markers []marker
	holders []placeholder
}

// scanJSON checks that js is one JSON value, with optional white space
// around it, and records what flags ask for.
func scanJSON(js []byte, flags scanFlags) (jsonScan, error) {
	return scanJSONAt(js, flags, 0)
}

// scanJSONAt is scanJSON for a value that will be inside depth arrays and
// objects.
func scanJSONAt(js []byte, flags scanFlags, depth int) (jsonScan, error) {
	s := jsonScan{js: js, flags: flags, first: span{-1, -1}}
	s.space()
	if err := s.value(depth); err != nil {
		return jsonScan{}, err
	}
	s.space()
	if s.pos != len(s.js) {
		return jsonScan{}, s.fail("trailing data")
	}
	return s, nil
}

func (s *jsonScan) fail(what string) error {
	return invalidf("JSON: %s at offset %d", what, s.pos)
}

func (s *jsonScan) space() {
	for s.pos < len(s.js) && isSpace(s.js[s.pos]) {
		s.pos++
	}
}

// isSpace reports whether c is white space in JSON.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// value checks the value at s.pos, which is inside depth arrays and
// objects.
func (s *jsonScan) value(depth int) error {
	if s.pos >= len(s.js) {
		return s.fail("unexpected end")
	}
	switch c := s.js[s.pos]; c {
	case '{':
		return s.object(depth + 1)
	case '[':
		return s.array(depth + 1)
	case '"':
		return s.str()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return s.number()
		}
		return s.fail(fmt.Sprintf("unexpected %q", c))
	}
}

func (s *jsonScan) literal(word string) error {
	if len(s.js)-s.pos < len(word) || string(s.js[s.pos:s.pos+len(word)]) != word {
		return s.fail("bad literal")
	}
	s.pos += len(word)
	return nil
}

// object checks the object at s.pos; depth counts it.
func (s *jsonScan) object(depth int) error {
	if depth > maxJSONDepth {
		return s.fail(fmt.Sprintf("nested deeper than %d", maxJSONDepth))
	}
	start := s.pos
	if s.flags&scanMarkers != 0 {
		if data, n, ok := events.ParseBytesJSON(s.js[s.pos:]); ok {
			s.pos += n
			s.markers = append(s.markers, marker{span{start, s.pos}, data})
			return nil
		}
	}
	s.pos++ // {
	s.space()
	if s.pos < len(s.js) && s.js[s.pos] == '}' {
		s.pos++
		return nil
	}
	holders := s.flags&scanPlaceholders != 0
	isPlaceholder, num := false, span{-1, -1}
	for {
		s.space()
		if s.pos >= len(s.js) || s.js[s.pos] != '"' {
			return s.fail("object key expected")
		}
		keyStart := s.pos
		if err := s.str(); err != nil {
			return err
		}
		key := s.js[keyStart:s.pos]
		s.space()
		if s.pos >= len(s.js) || s.js[s.pos] != ':' {
			return s.fail("':' expected")
		}
		s.pos++
		s.space()
		valStart := s.pos
		if err := s.value(depth); err != nil {
			return err
		}
		if holders {
			// JSON.parse keeps a member's last value.
			if jsonStringIs(key, "_placeholder") {
				isPlaceholder = string(s.js[valStart:s.pos]) == "true"
			} else if jsonStringIs(key, "num") {
				num = span{valStart, s.pos}
			}
		}
		s.space()
		switch {
		case s.pos >= len(s.js):
			return s.fail("unexpected end")
		case s.js[s.pos] == ',':
			s.pos++
		case s.js[s.pos] == '}':
			s.pos++
			if isPlaceholder {
				// reconstructPacket replaces the object whole: placeholders
				// inside it are not looked at.
				i := len(s.holders)
				for i > 0 && s.holders[i-1].start > start {
					i--
				}
				s.holders = append(s.holders[:i], placeholder{span{start, s.pos}, num})
			}
			return nil
		default:
			return s.fail("',' or '}' expected")
		}
	}
}

// array checks the array at s.pos; depth counts it.
func (s *jsonScan) array(depth int) error {
	if depth > maxJSONDepth {
		return s.fail(fmt.Sprintf("nested deeper than %d", maxJSONDepth))
	}
	s.pos++ // [
	s.space()
	if s.pos < len(s.js) && s.js[s.pos] == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		s.space()
		start := s.pos
		if err := s.value(depth); err != nil {
			return err
		}
		if depth == 1 && i == 0 {
			s.first = span{start, s.pos}
		}
		s.space()
		switch {
		case s.pos >= len(s.js):
			return s.fail("unexpected end")
		case s.js[s.pos] == ',':
			s.pos++
		case s.js[s.pos] == ']':
			s.pos++
			return nil
		default:
			return s.fail("',' or ']' expected")
		}
	}
}

// strPlain marks the bytes that stand for themselves inside a JSON
// string: not '"', '\\' or a control character.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str checks the string at s.pos.
func (s *jsonScan) str() error {
	start := s.pos
	s.pos++ // "
	for {
		for s.pos < len(s.js) && strPlain[s.js[s.pos]] {
			s.pos++
		}
		if s.pos >= len(s.js) {
			s.pos = start
			return s.fail("unterminated string")
		}
		switch c := s.js[s.pos]; {
		case c == '"':
			s.pos++
			return nil
		case c == '\\':
			if s.pos+1 >= len(s.js) {
				s.pos = start
				return s.fail("unterminated string")
			}
			switch s.js[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if len(s.js)-s.pos < 6 || !isHex(s.js[s.pos+2]) || !isHex(s.js[s.pos+3]) || !isHex(s.js[s.pos+4]) || !isHex(s.js[s.pos+5]) {
					return s.fail("bad \\u escape")
				}
				s.pos += 6
			default:
				return s.fail("bad escape")
			}
		default:
			return s.fail("control character in string")
		}
	}
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number checks the number at s.pos: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScan) number() error {
	if s.js[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(s.js) && s.js[s.pos] == '0':
		s.pos++
	case s.pos < len(s.js) && s.js[s.pos] >= '1' && s.js[s.pos] <= '9':
		s.digits()
	default:
		return s.fail("bad number")
	}
	if s.pos < len(s.js) && s.js[s.pos] == '.' {
		s.pos++
		if !s.digits() {
			return s.fail("bad number")
		}
	}
	if s.pos < len(s.js) && (s.js[s.pos] == 'e' || s.js[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.js) && (s.js[s.pos] == '+' || s.js[s.pos] == '-') {
			s.pos++
		}
		if !s.digits() {
			return s.fail("bad number")
		}
	}
	return nil
}

// digits skips a run of digits and reports whether there was one.
func (s *jsonScan) digits() bool {
	start := s.pos
	for s.pos < len(s.js) && isDigit(s.js[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// jsonStringIs reports whether the JSON string literal lit (quotes
// included, already checked) holds exactly want.
func jsonStringIs(lit []byte, want string) bool {
	inner := lit[1 : len(lit)-1]
	if string(inner) == want {
		return true
	}
	for _, c := range inner {
		if c == '\\' {
			var s string
			return json.Unmarshal(lit, &s) == nil && s == want
		}
	}
	return false
}

// SplitArray returns the elements of the JSON array js, each as its own
// raw JSON text without the white space around it, in order. The
// elements share js's memory (each with its capacity cut at its end, so
// that appending to one copies it). An empty array gives an empty,
// non-nil slice. It fails, with an error wrapping ErrInvalidPacket, when
// js is not one valid JSON array (white space around it allowed) or is
// nested deeper than encoding/json accepts (10000 levels).
//
// SplitArray is linear in len(js) and allocates nothing but the result.
func SplitArray(js []byte) ([]json.RawMessage, error) {
	// Up to len(local) elements: one pass. More: count, then fill.
	var local [32]json.RawMessage
	s := jsonScan{js: js}
	n, err := s.splitArray(local[:])
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, n)
	if n <= len(local) {
		copy(out, local[:n])
		return out, nil
	}
	s = jsonScan{js: js}
	if _, err := s.splitArray(out); err != nil {
		return nil, err // cannot happen: the text was checked
	}
	return out, nil
}

// splitArray checks the array s.js, stores its first len(dst) elements
// in dst and returns the number of elements.
func (s *jsonScan) splitArray(dst []json.RawMessage) (int, error) {
	s.space()
	if s.pos >= len(s.js) || s.js[s.pos] != '[' {
		return 0, s.fail("not an array")
	}
	s.pos++
	s.space()
	n := 0
	if s.pos < len(s.js) && s.js[s.pos] == ']' {
		s.pos++
	} else {
	elements:
		for {
			s.space()
			start := s.pos
			if err := s.value(1); err != nil {
				return 0, err
			}
			if n < len(dst) {
				dst[n] = s.js[start:s.pos:s.pos]
			}
			n++
			s.space()
			switch {
			case s.pos >= len(s.js):
				return 0, s.fail("unexpected end")
			case s.js[s.pos] == ',':
				s.pos++
			case s.js[s.pos] == ']':
				s.pos++
				break elements
			default:
				return 0, s.fail("',' or ']' expected")
			}
		}
	}
	s.space()
	if s.pos != len(s.js) {
		return 0, s.fail("trailing data")
	}
	return n, nil
}

// appendJSONString appends s as JSON.stringify writes a string: '"',
// '\\' and control characters escaped (\b, \t, \n, \f, \r, others as
// \u00xx), everything else as it is (no escaping of <, >, &, U+2028 or
// U+2029). Invalid UTF-8 cannot occur in a JavaScript string: each
// maximal invalid subsequence becomes U+FFFD, as Node's
// Buffer.toString and TextDecoder decode it.
func appendJSONString[T string | []byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if strPlain[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		n, ok := utf8Seq(s, i)
		if !ok {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			start = i + n
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// utf8Seq returns the length of the UTF-8 sequence at s[i:] (s[i] >=
// 0x80) and whether it is valid. For an invalid one it returns the
// length of its maximal subpart (at least 1), which the WHATWG UTF-8
// decoder (TextDecoder, Node's Buffer.toString) replaces by one U+FFFD.
func utf8Seq[T string | []byte](s T, i int) (int, bool) {
	var need int
	lo, hi := byte(0x80), byte(0xbf)
	switch c := s[i]; {
	case c >= 0xc2 && c <= 0xdf:
		need = 1
	case c == 0xe0:
		need, lo = 2, 0xa0
	case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
		need = 2
	case c == 0xed: // no surrogates
		need, hi = 2, 0x9f
	case c == 0xf0:
		need, lo = 3, 0x90
	case c >= 0xf1 && c <= 0xf3:
		need = 3
	case c == 0xf4: // up to U+10FFFF
		need, hi = 3, 0x8f
	default:
		return 1, false
	}
	for n := 1; n <= need; n++ {
		if i+n >= len(s) || s[i+n] < lo || s[i+n] > hi {
			return n, false
		}
		lo, hi = 0x80, 0xbf
	}
	return need + 1, true
}

// jsString returns b as a JavaScript string decoded from UTF-8 would
// hold it: invalid sequences replaced by U+FFFD (see utf8Seq).
func jsString(b []byte) string {
	i := 0
	for i < len(b) && b[i] < 0x80 {
		i++
	}
	if i == len(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+8)
	start := 0
	for i < len(b) {
		if b[i] < 0x80 {
			i++
			continue
		}
		n, ok := utf8Seq(b, i)
		if !ok {
			out = append(out, b[start:i]...)
			out = append(out, "\uFFFD"...)
			start = i + n
		}
		i += n
	}
	return string(append(out, b[start:]...))
}
