package socketio_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/herald-rt/herald/socketio"
)

// Behind a load balancer, the handshake rate limit counts each client under
// the address the load balancer saw, not under one the client wrote into
// X-Forwarded-For.
func ExampleForwardedClientIP() {
	cfg := socketio.Config{
		// Verifier: ...,
		ClientIP: socketio.ForwardedClientIP(netip.MustParsePrefix("10.0.0.0/8")), // the load balancers
	}

	r := httptest.NewRequest(http.MethodGet, "/socket.io/", nil)
	r.RemoteAddr = "10.0.0.3:41000" // a load balancer, which appended what it saw
	r.Header.Set("X-Forwarded-For", "192.0.2.66, 198.51.100.7")
	fmt.Println(cfg.ClientIP(r))

	r.RemoteAddr = "203.0.113.5:50000" // a client connecting directly
	r.Header.Set("X-Forwarded-For", "192.0.2.66")
	fmt.Println(cfg.ClientIP(r))
	// Output:
	// 198.51.100.7
	// 203.0.113.5
}

// testProxies are the trusted prefixes of the tests.
var testProxies = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.1/32"),
	netip.MustParsePrefix("2001:db8:1::/48"),
	netip.MustParsePrefix("::ffff:172.16.0.0/108"), // 172.16.0.0/12
}

func TestForwardedClientIP(t *testing.T) {
	const client = "198.51.100.7"
	hops := func(n int, hop string) string { return strings.TrimPrefix(strings.Repeat(", "+hop, n), ", ") }
	tests := []struct {
		name    string
		trusted []netip.Prefix // nil = testProxies
		remote  string
		xff     []string // header lines
		want    string
	}{
		{name: "untrusted peer", remote: "203.0.113.9:5000", want: "203.0.113.9"},
		{name: "untrusted peer, forged header", remote: "203.0.113.9:5000", xff: []string{"192.0.2.66"}, want: "203.0.113.9"},
		{name: "untrusted peer, forged trusted hop", remote: "203.0.113.9:5000", xff: []string{"192.0.2.66, 10.0.0.2"}, want: "203.0.113.9"},
		{name: "untrusted peer, garbage header", remote: "203.0.113.9:5000", xff: []string{"]]]:::,,,"}, want: "203.0.113.9"},
		{name: "trusted peer, no header", remote: "10.0.0.1:5000", want: "10.0.0.1"},
		{name: "trusted peer, empty header", remote: "10.0.0.1:5000", xff: []string{""}, want: "10.0.0.1"},
		{name: "one proxy", remote: "10.0.0.1:5000", xff: []string{client}, want: client},
		{name: "forged leftmost", remote: "10.0.0.1:5000", xff: []string{"192.0.2.66, " + client}, want: client},
		{name: "forged trusted leftmost", remote: "10.0.0.1:5000", xff: []string{"10.9.9.9, " + client}, want: client},
		{name: "chain of proxies", remote: "10.0.0.1:5000", xff: []string{"192.0.2.66, " + client + ", 10.0.0.2, 127.0.0.1"}, want: client},
		{name: "every hop trusted", remote: "10.0.0.1:5000", xff: []string{"10.0.0.5, 10.0.0.4"}, want: "10.0.0.5"},
		{name: "several header lines", remote: "10.0.0.1:5000", xff: []string{"192.0.2.66, " + client, "10.0.0.2", "10.0.0.3"}, want: client},
		{name: "client in an earlier line", remote: "10.0.0.1:5000", xff: []string{client, "10.0.0.2, 10.0.0.3"}, want: client},
		{name: "spaces and tabs", remote: "10.0.0.1:5000", xff: []string{" \t192.0.2.66 ,\t" + client + " \t"}, want: client},
		{name: "port", remote: "10.0.0.1:5000", xff: []string{client + ":5678"}, want: client},
		{name: "IPv6 with port", remote: "10.0.0.1:5000", xff: []string{"[2001:db8:2::7]:443"}, want: "2001:db8:2::7"},

		{name: "garbage rightmost", remote: "10.0.0.1:5000", xff: []string{client + ", garbage"}, want: "10.0.0.1"},
		{name: "garbage after a trusted hop", remote: "10.0.0.1:5000", xff: []string{client + ", garbage, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "garbage left of the client", remote: "10.0.0.1:5000", xff: []string{"garbage, " + client}, want: client},
		{name: "empty entry", remote: "10.0.0.1:5000", xff: []string{client + ",, 10.0.0.2"}, want: "10.0.0.2"},
		{name: "trailing comma", remote: "10.0.0.1:5000", xff: []string{client + ","}, want: "10.0.0.1"},
		{name: "empty last line", remote: "10.0.0.1:5000", xff: []string{client, ""}, want: "10.0.0.1"},
		{name: "brackets without port", remote: "10.0.0.1:5000", xff: []string{"[2001:db8:2::7]"}, want: "10.0.0.1"},
		{name: "bad port", remote: "10.0.0.1:5000", xff: []string{client + ":http"}, want: "10.0.0.1"},
		{name: "leading zeros", remote: "10.0.0.1:5000", xff: []string{"198.051.100.7"}, want: "10.0.0.1"},
		{name: "hostname", remote: "10.0.0.1:5000", xff: []string{"example.com"}, want: "10.0.0.1"},
		{name: "unknown", remote: "10.0.0.1:5000", xff: []string{"unknown"}, want: "10.0.0.1"},
		{name: "CIDR", remote: "10.0.0.1:5000", xff: []string{"198.51.100.0/24"}, want: "10.0.0.1"},
		{name: "control characters", remote: "10.0.0.1:5000", xff: []string{"198.51.100.7\x00"}, want: "10.0.0.1"},
		{name: "huge entry", remote: "10.0.0.1:5000", xff: []string{client + ", " + strings.Repeat("1", 1<<20)}, want: "10.0.0.1"},
		{name: "huge padding", remote: "10.0.0.1:5000", xff: []string{client + "," + strings.Repeat(" ", 200) + "10.0.0.2"}, want: "10.0.0.1"},
		{name: "huge header of commas", remote: "10.0.0.1:5000", xff: []string{strings.Repeat(",", 1<<20)}, want: "10.0.0.1"},
		{name: "31 trusted hops", remote: "10.0.0.1:5000", xff: []string{client + ", " + hops(31, "10.0.0.2")}, want: client},
		{name: "32 trusted hops", remote: "10.0.0.1:5000", xff: []string{client + ", " + hops(32, "10.0.0.2")}, want: "10.0.0.2"},
		{name: "many header lines", remote: "10.0.0.1:5000", xff: append([]string{client}, strings.Split(hops(10_000, "10.0.0.2"), ", ")...), want: "10.0.0.2"},

		{name: "IPv6 proxy", remote: "[2001:db8:1::1]:443", xff: []string{"2001:db8:2::9"}, want: "2001:db8:2::9"},
		{name: "IPv6 untrusted peer", remote: "[2001:db8:2::1]:443", xff: []string{client}, want: "2001:db8:2::1"},
		{name: "IPv6 zone", remote: "10.0.0.1:5000", xff: []string{"fe80::1%eth0"}, want: "fe80::1"},
		{name: "IPv4-mapped hop", remote: "10.0.0.1:5000", xff: []string{"::ffff:" + client}, want: client},
		{name: "IPv4-mapped trusted hop", remote: "10.0.0.1:5000", xff: []string{client + ", ::ffff:10.0.0.2"}, want: client},
		{name: "IPv4-mapped peer", remote: "[::ffff:10.0.0.1]:5000", xff: []string{client}, want: client},
		{name: "IPv4-mapped untrusted peer", remote: "[::ffff:203.0.113.9]:5000", xff: []string{client}, want: "203.0.113.9"},
		{name: "IPv4-mapped prefix", remote: "172.16.5.5:5000", xff: []string{client}, want: client},

		{name: "peer without port", remote: "10.0.0.1", xff: []string{client}, want: client},
		{name: "empty peer", remote: "", xff: []string{client}, want: ""},
		{name: "unix socket peer", remote: "@", xff: []string{client}, want: ""},
		{name: "garbage peer", remote: "not-an-address:80", xff: []string{client}, want: ""},

		{name: "no trusted prefix", trusted: []netip.Prefix{}, remote: "10.0.0.1:5000", xff: []string{client}, want: "10.0.0.1"},
		{name: "zero prefix", trusted: []netip.Prefix{{}}, remote: "10.0.0.1:5000", xff: []string{client}, want: "10.0.0.1"},
		{name: "unmasked prefix", trusted: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/8")}, remote: "10.0.0.1:5000", xff: []string{client}, want: client},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			trusted := tt.trusted
			if trusted == nil {
				trusted = testProxies
			}
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, line := range tt.xff {
				r.Header.Add("X-Forwarded-For", line)
			}
			if got := socketio.ForwardedClientIP(trusted...)(r); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestForwardedClientIPNilRequest(t *testing.T) {
	if got := socketio.ForwardedClientIP(testProxies...)(nil); got != "" {
		t.Errorf("got %q, want \"\"", got)
	}
}

// TestForwardedClientIPCopiesPrefixes checks that changing the slice
// passed in afterwards changes nothing.
func TestForwardedClientIPCopiesPrefixes(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	clientIP := socketio.ForwardedClientIP(trusted...)
	trusted[0] = netip.MustParsePrefix("203.0.113.0/24")
	r := &http.Request{RemoteAddr: "203.0.113.9:5000", Header: http.Header{"X-Forwarded-For": {"198.51.100.7"}}}
	if got := clientIP(r); got != "203.0.113.9" {
		t.Errorf("got %q, want the peer's address", got)
	}
}

// FuzzForwardedClientIP checks that no header or peer address makes
// ForwardedClientIP panic or return something other than "" or an IP, and
// that the header of an untrusted peer is ignored. Newlines in xff separate
// header lines.
func FuzzForwardedClientIP(f *testing.F) {
	for _, s := range [][2]string{
		{"10.0.0.1:5000", "192.0.2.66, 198.51.100.7, 10.0.0.2"},
		{"203.0.113.9:5000", "198.51.100.7"},
		{"[2001:db8:1::1]:443", "[2001:db8:2::7]:443,::ffff:10.0.0.2\n10.0.0.3"},
		{"10.0.0.1:5000", ",, garbage ,[::1],1.2.3.4:99999"},
		{"[::ffff:10.0.0.1]:80", "fe80::1%eth0"},
	} {
		f.Add(s[0], s[1])
	}
	clientIP := socketio.ForwardedClientIP(testProxies...)
	trusted := func(a netip.Addr) bool {
		for _, p := range testProxies {
			if p.Contains(a) || p.Contains(netip.AddrFrom16(a.As16())) {
				return true
			}
		}
		return false
	}
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": strings.Split(xff, "\n")}}
		got := clientIP(r)
		peer := clientIP(&http.Request{RemoteAddr: remote, Header: http.Header{}})
		if got != "" {
			a, err := netip.ParseAddr(got)
			if err != nil || a.String() != got || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("got %q, not an IP in canonical form", got)
			}
		}
		if peer == "" {
			if got != "" {
				t.Fatalf("peer %q is no address, but got %q", remote, got)
			}
			return
		}
		if p := netip.MustParseAddr(peer); !trusted(p) && got != peer {
			t.Fatalf("untrusted peer %q, header %q: got %q, want the peer's address", remote, xff, got)
		}
	})
}
