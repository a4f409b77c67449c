package events

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Bytes is binary data inside a payload. Socket.IO clients send and receive
// it as a binary attachment: a Buffer in Node, an ArrayBuffer in browsers
// (a client may send an ArrayBuffer, a typed array, a Buffer or a Blob).
//
//	type Upload struct {
//		Name string       `json:"name"`
//		Data events.Bytes `json:"data"`
//	}
//
// Inside herald, and in a payload's JSON form, Bytes is the marker object
// {"_placeholder":true,"bin":"<base64>"}; the server turns the markers into
// attachments when it writes a packet and back when it reads one. A nil
// Bytes encodes as null; an empty one as an empty attachment.
//
// A plain []byte field is not binary: encoding/json sends it as a base64
// string, and a client's attachment does not decode into it.
type Bytes []byte

// bytesMarker starts the JSON form of Bytes; the base64 text and `"}`
// follow.
const bytesMarker = `{"_placeholder":true,"bin":"`

// MarshalJSON implements json.Marshaler.
func (b Bytes) MarshalJSON() ([]byte, error) {
	if b == nil {
		return []byte("null"), nil
	}
	return AppendBytesJSON(nil, b), nil
}

// UnmarshalJSON implements json.Unmarshaler. It accepts the marker object,
// null, and, for clients that send binary data as text, a base64 string.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case string(data) == "null":
		*b = nil
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		v, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("events: binary data: %w", err)
		}
		*b = v
		return nil
	}
	v, n, ok := ParseBytesJSON(data)
	if ok && n == len(data) {
		*b = v
		return nil
	}
	var probe struct {
		Placeholder bool   `json:"_placeholder"`
		Bin         []byte `json:"bin"`
	}
	// Equivalent JSON written differently (spacing, key order).
	if err := json.Unmarshal(data, &probe); err != nil || !probe.Placeholder || probe.Bin == nil {
		return errNotBinary
	}
	*b = probe.Bin
	return nil
}

var errNotBinary = errors.New("events: not binary data")

// AppendBytesJSON appends the JSON form of binary data to dst. It is the
// form MarshalJSON writes; code that carries payloads between processes
// (adapter's Redis wire formats) uses it with ParseBytesJSON.
func AppendBytesJSON(dst, data []byte) []byte {
	dst = append(dst, bytesMarker...)
	dst = base64.StdEncoding.AppendEncode(dst, data)
	return append(dst, `"}`...)
}

// ParseBytesJSON reports whether js starts with the JSON form of binary
// data exactly as AppendBytesJSON writes it (canonical base64 included), and
// returns the data and the form's length in bytes.
func ParseBytesJSON(js []byte) (data []byte, n int, ok bool) {
	if !bytes.HasPrefix(js, []byte(bytesMarker)) {
		return nil, 0, false
	}
	rest := js[len(bytesMarker):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 || len(rest) < end+2 || rest[end+1] != '}' {
		return nil, 0, false
	}
	data, err := base64.StdEncoding.Strict().AppendDecode([]byte{}, rest[:end])
	// The decoder skips line breaks: a form with any is not canonical.
	if err != nil || base64.StdEncoding.EncodedLen(len(data)) != end {
		return nil, 0, false
	}
	return data, len(bytesMarker) + end + 2, true
}

// HasBytesJSON reports whether the JSON text js may hold binary data, that
// is whether it contains the start of Bytes' JSON form. It is a fast
// filter: false means certainly not.
func HasBytesJSON(js []byte) bool {
	return bytes.Contains(js, []byte(bytesMarker[1:]))
}
