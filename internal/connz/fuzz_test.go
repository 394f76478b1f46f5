package connz

import (
	"net/url"
	"testing"
)

// FuzzParseQuery: any query string parses to a query within its bounds or
// to an error, never a panic; Apply takes whatever parses.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "sort=age&limit=10", "remote=::1", "remote=[fe80::1%25eth0]:80", "room=pool:p1&offset=99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := ParseQuery(v)
		if err != nil {
			return
		}
		if q.Limit < 1 || q.Limit > MaxLimit || q.Offset < 0 {
			t.Fatalf("%q parsed to %+v, out of bounds", s, q)
		}
		p := Apply(sample(), q, "n")
		if len(p.Connections) > q.Limit || p.Total > 5 {
			t.Fatalf("%q: page %+v beyond its bounds", s, p)
		}
	})
}
