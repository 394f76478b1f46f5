package edge

import (
	"net"
	"testing"
)

// The source of a request is its peer, unless the peer is a trusted
// proxy: then the nearest X-Forwarded-For hop that is not one, never
// what a client wrote before the proxies' own hops. IPv6 sources are
// their /64.
func TestSourceOfARequest(t *testing.T) {
	p, err := newSourcePolicy([]string{"10.0.0.0/8", " 192.0.2.1", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, tc := range []struct {
		remote, xff, peer, client string
	}{
		{"198.51.100.7:5000", "", "198.51.100.7", "198.51.100.7"},
		{"198.51.100.7:5000", "203.0.113.9", "198.51.100.7", "198.51.100.7"}, // an untrusted peer's header is ignored
		{"10.1.2.3:5000", "203.0.113.9", "", "203.0.113.9"},
		{"10.1.2.3:5000", "6.6.6.6, 203.0.113.9, 10.9.9.9", "", "203.0.113.9"},
		{"192.0.2.1:5000", "10.0.0.1", "", ""}, // only proxies: no client named
		{"192.0.2.1:5000", "", "", ""},
		{"192.0.2.1:5000", "unknown", "", "hop:unknown"},                              // named otherwise: such clients share one cap
		{"10.1.2.3:5000", "203.0.113.9:41234", "", "203.0.113.9"},                     // with its port
		{"10.1.2.3:5000", "[2001:db8:5:6::7]", "", "2001:db8:5:6::/64"},               // IPv6 in brackets
		{"10.1.2.3:5000", "[2001:db8:5:6::7]:443, 10.0.0.2", "", "2001:db8:5:6::/64"}, // and a port, then a trusted hop
		{"[2001:db8:1:2:3::4]:5000", "", "2001:db8:1:2::/64", "2001:db8:1:2::/64"},
		{"[2001:db8::1]:5000", "2001:db8:5:6::7", "", "2001:db8:5:6::/64"},
		{"[::ffff:198.51.100.7]:5000", "", "198.51.100.7", "198.51.100.7"},
	} {
		if got := p.peer(tcp(tc.remote)); got != tc.peer {
			t.Errorf("peer %s: %q, want %q", tc.remote, got, tc.peer)
		}
		if got := p.client(tcp(tc.remote), tc.xff); got != tc.client {
			t.Errorf("client %s X-Forwarded-For %q: %q, want %q", tc.remote, tc.xff, got, tc.client)
		}
	}
	for _, bad := range []string{"proxy.example", "10.0.0.0/33", ""} {
		if CheckTrustedProxies([]string{bad}) == nil {
			t.Errorf("trusted proxy %q accepted", bad)
		}
	}
}
