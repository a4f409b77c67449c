package socketio

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Bounds on the X-Forwarded-For walk of ForwardedClientIP.
const (
	// maxForwardedHops is how many entries of X-Forwarded-For are looked
	// at, from the right; a longer chain of trusted proxies ends at the
	// last one looked at.
	maxForwardedHops = 32
	// maxHopLength is the longest entry accepted, in bytes, spaces
	// around it included: "[" + an IPv6 address with an IPv4 tail, a
	// zone and a port + "]" fit.
	maxHopLength = 96
)

// ForwardedClientIP returns a function for Config.ClientIP that reads the
// client's address from X-Forwarded-For, for a Server behind proxies whose
// addresses are in trusted (a load balancer, nginx, ...).
//
// When the TCP peer (r.RemoteAddr) is not in a trusted prefix, the header
// is ignored, since anyone can send one, and the function returns the peer's
// IP. When it is, the function walks X-Forwarded-For (every line of it,
// comma-separated entries) from right to left, skipping the addresses in
// trusted prefixes, and returns the first address not in one: the address
// the outermost trusted proxy saw connecting. A client can prepend any
// addresses it likes to the header, but not past that proxy. When every
// entry is trusted, it returns the leftmost one.
//
// An entry is an IP address, optionally with a port (1.2.3.4:5678,
// [2001:db8::1]:443), the port dropped. A malformed entry (empty, not an
// address, an address in brackets without a port, longer than makes sense)
// ends the walk: the function returns the last address it trusted, usually
// the proxy nearest the client, so such requests are counted under the
// proxy's address rather than under one a client could choose. At most 32
// entries are looked at, the rightmost ones; a longer chain of trusted
// proxies ends the same way. The work done is bounded whatever the size of
// the header.
//
// Addresses are returned in netip.Addr's string form, IPv4-mapped IPv6
// addresses (::ffff:192.0.2.1) as IPv4 and without IPv6 zones, so that one
// client always gets the same string. An IPv4-mapped prefix
// (::ffff:10.0.0.0/104) is treated as its IPv4 prefix (10.0.0.0/8); an
// invalid prefix (the zero netip.Prefix) matches nothing. When r.RemoteAddr
// is not an IP address, with or without a port, the function returns "",
// the address all such requests share.
//
// With no trusted prefix, the function always returns the peer's IP, as a
// nil Config.ClientIP does. The function is safe for concurrent use.
func ForwardedClientIP(trusted ...netip.Prefix) func(r *http.Request) string {
	prefixes := make([]netip.Prefix, 0, len(trusted))
	for _, p := range trusted {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		prefixes = append(prefixes, p.Masked())
	}
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	return func(r *http.Request) string {
		if r == nil {
			return ""
		}
		peer, ok := parseHop(r.RemoteAddr)
		if !ok {
			return ""
		}
		if !isTrusted(peer) {
			return peer.String()
		}
		ip := peer // the last trusted address
		lines := r.Header.Values("X-Forwarded-For")
		hops := 0
		for i := len(lines) - 1; i >= 0; i-- {
			line := lines[i]
			for more := true; more; {
				if hops == maxForwardedHops {
					return ip.String()
				}
				hops++
				// Only the tail of line is searched for the comma, so a
				// huge entry costs no more than a short one.
				from := max(0, len(line)-maxHopLength-1)
				var hop string
				if j := strings.LastIndexByte(line[from:], ','); j >= 0 {
					hop, line = line[from+j+1:], line[:from+j]
				} else if from > 0 {
					return ip.String() // an entry too long to be an address
				} else {
					hop, more = line, false
				}
				a, ok := parseHop(hop)
				if !ok {
					return ip.String()
				}
				if !isTrusted(a) {
					return a.String()
				}
				ip = a
			}
		}
		return ip.String()
	}
}

// parseHop parses an entry of X-Forwarded-For, or a RemoteAddr: an IP
// address, optionally with a port, with spaces and tabs around it.
func parseHop(s string) (netip.Addr, bool) {
	if len(s) > maxHopLength {
		return netip.Addr{}, false
	}
	s = strings.Trim(s, " \t")
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}
