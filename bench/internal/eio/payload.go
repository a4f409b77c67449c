package eio

import "bytes"

// recordSeparator joins the packets of an Engine.IO v4 long-polling
// payload.
var recordSeparator = []byte{0x1e}

// CutPayload parses the first packet of an Engine.IO v4 long-polling
// payload (text packets joined by "\x1e", the record separator) and returns
// it with the rest of the payload after the separator. more reports whether
// there was a separator, i.e. whether rest holds one more packet (which may
// be empty, and then malformed). A packet that does not parse is returned
// as Parse returns it (Kind Invalid, an error wrapping ErrMalformed); the
// rest is good all the same. Binary packets ("b" and base64, which the
// bench servers never send) are malformed here.
//
// Like Parse it does not allocate: the Packet and rest alias payload.
func CutPayload(payload []byte) (p Packet, rest []byte, more bool, err error) {
	packet, rest, more := bytes.Cut(payload, recordSeparator)
	p, err = Parse(packet)
	return p, rest, more, err
}
