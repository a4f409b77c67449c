package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Every error returned by this package wraps one of them.
var (
	// ErrInvalidName means an event name is empty, too long, not valid UTF-8,
	// or reserved by Socket.IO.
	ErrInvalidName = errors.New("events: invalid event name")
	// ErrInvalidPayload means a payload failed to encode or decode, is not a
	// JSON object, or failed its Validate method.
	ErrInvalidPayload = errors.New("events: invalid payload")
	// ErrPayloadType means a payload of the wrong Go type was given for an event.
	ErrPayloadType = errors.New("events: wrong payload type for event")
)

// MaxNameLength is the longest event name accepted, in bytes.
const MaxNameLength = 128

// reserved holds the names Socket.IO reserves for its own use; an
// application event with one of these names would never reach a handler.
var reserved = map[string]bool{
	"connect":        true,
	"connect_error":  true,
	"disconnect":     true,
	"disconnecting":  true,
	"newListener":    true,
	"removeListener": true,
}

// ValidateName reports whether name can be used as an application event name.
// The error wraps ErrInvalidName.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, MaxNameLength)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	case reserved[name]:
		return fmt.Errorf("%w: %q is reserved by Socket.IO", ErrInvalidName, name)
	}
	return nil
}

// Validator is implemented by payloads that check their own fields. Encode
// and Decode call it, so an invalid payload is neither sent nor handled.
type Validator interface {
	Validate() error
}

// Event is an event name bound to a payload type. Use it wherever herald
// takes an event; Def and New are the only ways to make one.
type Event interface {
	// Name is the event name on the wire.
	Name() string
	// EncodeAny is Encode for a payload of unknown static type; it fails with
	// ErrPayloadType when payload is not the event's payload type.
	EncodeAny(payload any, now time.Time) (json.RawMessage, error)

	sealed()
}

// Def is an event whose payload is a T. T must be a struct or a map with
// string keys (optionally behind a pointer), because every delivered payload
// is a JSON object that carries a "timestamp".
//
// A Def is immutable and safe for concurrent use.
type Def[T any] struct {
	name string
}

// New binds name to payload type T. It fails with ErrInvalidName for a name
// Socket.IO reserves, and with ErrPayloadType when T does not encode to a
// JSON object.
func New[T any](name string) (*Def[T], error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := checkObjectType(reflect.TypeFor[T]()); err != nil {
		return nil, err
	}
	return &Def[T]{name: name}, nil
}

// Define is New for package-level variables: it panics on an invalid name or
// payload type, like regexp.MustCompile. Use New for names that come from
// configuration or other outside input.
func Define[T any](name string) *Def[T] {
	d, err := New[T](name)
	if err != nil {
		panic(err)
	}
	return d
}

func checkObjectType(t reflect.Type) error {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct:
		return nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return nil
	}
	return fmt.Errorf("%w: %s does not encode to a JSON object", ErrPayloadType, t)
}

// Name returns the event name.
func (d *Def[T]) Name() string { return d.name }

func (d *Def[T]) sealed() {}

// String returns the event name.
func (d *Def[T]) String() string { return d.name }

// Encode validates p and returns the JSON object delivered to clients: p's
// JSON encoding with a "timestamp" member (RFC 3339, UTC) set to now when p
// does not already carry a non-zero one.
func (d *Def[T]) Encode(p T, now time.Time) (json.RawMessage, error) {
	if isNil(p) {
		return nil, fmt.Errorf("%w: %s: nil payload", ErrInvalidPayload, d.name)
	}
	if v, ok := any(p).(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPayload, d.name, err)
		}
	}
	// p is a copy: stamping it leaves the caller's value alone. A pointer
	// payload is not stamped; addTimestamp adds the member instead.
	s, stamped := any(&p).(stamper)
	if stamped {
		s.stamp(now)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPayload, d.name, err)
	}
	if stamped {
		return b, nil // Meta carries the timestamp
	}
	return addTimestamp(b, now)
}

func isNil[T any](p T) bool {
	v := reflect.ValueOf(&p).Elem()
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// EncodeAny implements Event.
func (d *Def[T]) EncodeAny(payload any, now time.Time) (json.RawMessage, error) {
	p, ok := payload.(T)
	if !ok {
		return nil, fmt.Errorf("%w: %s wants %s, got %T", ErrPayloadType, d.name, reflect.TypeFor[T](), payload)
	}
	return d.Encode(p, now)
}

// Decode parses a payload received from a client. Unknown fields are
// ignored (clients may be newer than the server); a payload that is not a
// JSON object, does not fit T, or fails T's Validate method is rejected with
// a *PayloadError (errors.Is(err, ErrInvalidPayload)), whose Message names
// the member and the JSON types involved, never Go's, for the client.
func (d *Def[T]) Decode(data []byte) (T, error) {
	var p T
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return p, &PayloadError{Event: d.name, Reason: "not a JSON object"}
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, decodeError(d.name, err)
	}
	if v, ok := any(p).(Validator); ok {
		if err := v.Validate(); err != nil {
			return p, &PayloadError{Event: d.name, Reason: err.Error(), err: err}
		}
	}
	return p, nil
}

// Meta carries the fields herald adds to every delivered payload. Embed it
// in a payload struct to read the timestamp on the receiving side; the
// server fills it when it is zero.
type Meta struct {
	// Timestamp is when the server emitted the event (RFC 3339, UTC).
	Timestamp time.Time `json:"timestamp,omitzero"`
}

type stamper interface{ stamp(time.Time) }

func (m *Meta) stamp(now time.Time) {
	if m.Timestamp.IsZero() {
		m.Timestamp = now.UTC()
	} else {
		m.Timestamp = m.Timestamp.UTC()
	}
}

// addTimestamp makes sure the JSON object b has a "timestamp" member.
func addTimestamp(b []byte, now time.Time) (json.RawMessage, error) {
	if len(b) < 2 || b[0] != '{' {
		// A nil pointer or nil map encodes as null.
		return nil, fmt.Errorf("%w: payload encodes to %.16s, not a JSON object", ErrInvalidPayload, b)
	}
	if hasTopLevelKey(b, "timestamp") {
		return b, nil
	}
	ts := strconv.AppendQuote(nil, now.UTC().Format(time.RFC3339Nano))
	out := make([]byte, 0, len(b)+len(ts)+14)
	out = append(out, `{"timestamp":`...)
	out = append(out, ts...)
	if len(bytes.TrimSpace(b[1:len(b)-1])) > 0 {
		out = append(out, ',')
	}
	out = append(out, b[1:]...)
	return out, nil
}

// hasTopLevelKey reports whether the JSON object b (as produced by
// encoding/json) has the member key at its top level.
func hasTopLevelKey(b []byte, key string) bool {
	if !bytes.Contains(b, []byte(`"`+key+`"`)) {
		return false // fast path: the common case
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return false
	}
	_, ok := m[key]
	return ok
}
