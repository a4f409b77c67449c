package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// PayloadError is a payload that Def.Decode refused: not a JSON object, a
// member of the wrong JSON type, or a failed Validate. Error and Message
// speak JSON (the payload's member names and JSON types), never Go (no
// struct, field or type names), so Message can go back to the client that
// sent the payload. The decoder's own error, which may name Go types, is
// kept for logs: Unwrap returns it. errors.Is(err, ErrInvalidPayload)
// holds.
type PayloadError struct {
	// Event is the event's name.
	Event string
	// Field is the path of the offending member ("room", "inner.count"),
	// or "" when the payload as a whole is wrong or Validate refused it.
	Field string
	// Reason says what is wrong, in JSON terms: "want a string, got a
	// number", "not a JSON object", or Validate's error message.
	Reason string

	err error
}

// Message is what the client is told: Reason, after the Field it concerns.
func (e *PayloadError) Message() string {
	if e.Field == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

func (e *PayloadError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidPayload, e.Event, e.Message())
}

// Is makes errors.Is(err, ErrInvalidPayload) true.
func (e *PayloadError) Is(target error) bool { return target == ErrInvalidPayload }

// Unwrap returns the underlying error (the JSON decoder's, or Validate's),
// for logs: its text may name Go types.
func (e *PayloadError) Unwrap() error { return e.err }

// decodeError describes a json.Unmarshal error in JSON terms.
func decodeError(event string, err error) *PayloadError {
	pe := &PayloadError{Event: event, Reason: "a member has an invalid value", err: err}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var timeErr *time.ParseError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field == "":
		pe.Reason = fmt.Sprintf("not a JSON object (got %s)", article(typeErr.Value))
	case errors.As(err, &typeErr):
		pe.Field = typeErr.Field
		pe.Reason = fmt.Sprintf("want %s, got %s", jsonKind(typeErr.Type), article(typeErr.Value))
	case errors.As(err, &syntaxErr):
		pe.Reason = fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)
	case errors.As(err, &timeErr):
		pe.Reason = "a member is not an RFC 3339 time"
	}
	return pe
}

// jsonKind names the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another JSON type"
}

// article turns the decoder's description of a JSON value ("number",
// "string", "bool", "array", "object", "number -5") into words.
func article(value string) string {
	switch value {
	case "number", "string", "boolean", "null":
		return "a " + value
	case "bool":
		return "a boolean"
	case "array", "object":
		return "an " + value
	}
	if len(value) > 7 && value[:7] == "number " {
		return "the number " + value[7:]
	}
	return "another JSON value"
}
