package edge

import "testing"

func TestOriginPolicy(t *testing.T) {
	def, err := newOriginPolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := newOriginPolicy([]string{"https://Dash.Example", "https://*.pools.example"})
	if err != nil {
		t.Fatal(err)
	}
	any, err := newOriginPolicy([]string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	const host, ipHost = "edge.example:8690", "10.1.2.3:8690"
	for _, tc := range []struct {
		name   string
		p      originPolicy
		origin string
		want   bool
	}{
		{"no origin: not a browser", def, "", true},
		{"the same name and port: DNS rebinding looks the same", def, "https://edge.example:8690", false},
		{"another site", def, "https://evil.example", false},
		{"a loopback page", def, "http://127.0.0.1:3000", true},
		{"a localhost page", def, "http://localhost:5173", true},
		{"IPv6 loopback", def, "http://[::1]:8080", true},
		{"a site named like loopback", def, "http://localhost.evil.example", false},
		{"not a URL", def, "null", false},
		{"listed, any case", listed, "https://dash.example", true},
		{"listed glob", listed, "https://eu.pools.example", true},
		{"glob does not cross /", listed, "https://evil.example/x.pools.example", false},
		{"glob is not a suffix match", listed, "https://pools.example.evil", false},
		{"listed policy drops the default", listed, "http://127.0.0.1:3000", false},
		{"star", any, "https://whatever.example", true},
	} {
		if got := tc.p.allows(tc.origin, host); got != tc.want {
			t.Errorf("%s: allows(%q) = %v, want %v", tc.name, tc.origin, got, tc.want)
		}
	}
	for origin, want := range map[string]bool{
		"http://10.1.2.3:8690": true,  // the node's own address: its dashboard
		"http://10.1.2.3:9000": false, // another port of it
		"http://10.9.9.9:8690": false,
	} {
		if got := def.allows(origin, ipHost); got != want {
			t.Errorf("host %s: allows(%q) = %v, want %v", ipHost, origin, got, want)
		}
	}
	for _, bad := range []string{"https://[bad", "dash.example.com", "*.example.com", "https://dash.example.com/", "https://a.example/path", "https://"} {
		if _, err := newOriginPolicy([]string{bad}); err == nil {
			t.Errorf("a malformed pattern %q was accepted", bad)
		}
	}
	for _, good := range []string{"*", "http://127.0.0.1:*", "https://*.example.com", "HTTPS://Dash.Example:8443"} {
		if _, err := newOriginPolicy([]string{good}); err != nil {
			t.Errorf("pattern %q refused: %v", good, err)
		}
	}
}

// The origin check answers with allows for the request's Host: a page of
// the node's own IP address and port is accepted, the same page reaching
// the node by a name is not, and the refusal names the setting.
func TestOriginVerdict(t *testing.T) {
	def, err := newOriginPolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query, host string
		allowed     bool
	}{
		{"origin=http%3A%2F%2F10.1.2.3%3A8690", "10.1.2.3:8690", true},
		{"origin=HTTP%3A%2F%2F10.1.2.3%3A8690", "10.1.2.3:8690", true},
		{"origin=http%3A%2F%2F10.1.2.3%3A8690", "10.1.2.3:9999", false},
		{"origin=http%3A%2F%2Fdash.example%3A8690", "dash.example:8690", false},
	} {
		v, err := def.verdict(tc.query, tc.host)
		if err != nil || v.Allowed != tc.allowed || (v.Flag == "") != tc.allowed || (v.Env == "") != tc.allowed {
			t.Errorf("%s for %s: %+v %v, want allowed %v", tc.query, tc.host, v, err, tc.allowed)
		}
	}
}
