package parser

// HasPlaceholder reports whether the JSON text js holds an object whose
// "_placeholder" member is true, other than an events.Bytes marker.
func HasPlaceholder(js []byte) bool {
	s, err := scanJSON(js, scanMarkers|scanPlaceholders)
	return err == nil && len(s.holders) > 0
}
