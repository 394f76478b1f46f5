package edge

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// originPolicy decides which browser origins may open a WebSocket: a page
// on another site must not use a visitor's browser (its cookies, its
// network position) to read rooms. Clients that are not browsers send no
// Origin and are not concerned.
type originPolicy struct {
	patterns []string // lower case; empty: the request's own host and loopback pages only
	denyAll  bool     // no browser page at all
}

// originShape is what an origin pattern must look like: a scheme, ://,
// and a host with an optional port, globs allowed, nothing after.
var originShape = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://[^/?#\s]+$`)

// newOriginPolicy checks the patterns of --allowed-origins: an origin
// (https://dash.example.com), "*" for any, or a glob whose * stands for
// any run of characters but "/" (https://*.example.com).
func newOriginPolicy(patterns []string) (originPolicy, error) {
	var p originPolicy
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimSpace(pat))
		if _, err := path.Match(pat, ""); err != nil {
			return p, fmt.Errorf("allowed origin %q: %w", pat, err)
		}
		if pat != "*" && !originShape.MatchString(pat) {
			// A browser's Origin is scheme://host[:port]: a pattern
			// without the scheme, or with a path, would never match.
			return p, fmt.Errorf("allowed origin %q: want scheme://host[:port] (https://dash.example.com), a glob of one, or *", pat)
		}
		p.patterns = append(p.patterns, pat)
	}
	return p, nil
}

// CheckOrigins reports whether patterns are valid --allowed-origins.
func CheckOrigins(patterns []string) error {
	_, err := newOriginPolicy(patterns)
	return err
}

// allows reports whether a browser page of origin may connect with host
// as the request's Host.
func (p originPolicy) allows(origin, host string) bool {
	switch {
	case origin == "":
		return true // not a browser
	case p.denyAll:
		return false
	}
	origin = strings.ToLower(origin)
	if len(p.patterns) == 0 {
		return sameHostOrLoopback(origin, host)
	}
	for _, pat := range p.patterns {
		if pat == "*" || pat == origin {
			return true
		}
		if ok, _ := path.Match(pat, origin); ok {
			return true
		}
	}
	return false
}

// sameHostOrLoopback is the default: a page from a loopback address (a
// developer's local page), or served by the same host and port as the
// WebSocket (the dashboard) when that host is an IP address. A host name
// is not enough: a page that rebinds its own name's DNS to this node sends
// an Origin equal to the Host it asks for; a deployment behind a name lists
// its origins.
func sameHostOrLoopback(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if IsLoopbackHost(u.Hostname()) {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	return strings.EqualFold(u.Host, host) && net.ParseIP(strings.Trim(h, "[]")) != nil
}

// IsLoopbackHost reports whether a host name or address is loopback:
// localhost, 127.0.0.0/8 or ::1. It decides what is served without
// protection (protected mode) as well as which pages may connect.
func IsLoopbackHost(name string) bool {
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// originCheckPath is where the dashboard asks, before it connects, whether
// this node would accept its WebSocket: GET /origin-check?origin=<the
// page's origin>. The browser cannot read why an upgrade failed (a 403 is
// just a closed socket to it), so without the question a refused page
// would say "reconnecting" forever instead of what to set.
const originCheckPath = "origin-check"

// originMaxLen bounds the origin a check may ask about: a host name is
// at most 253 bytes, a scheme and a port a few more.
const originMaxLen = 300

// originVerdict answers an origin check. It holds nothing secret: anyone
// may try an upgrade with any Origin and see the same answer as a 403.
type originVerdict struct {
	Origin  string `json:"origin"`         // the origin asked about, lower case
	Allowed bool   `json:"allowed"`        // the upgrade would accept it with this Host
	Flag    string `json:"flag,omitempty"` // refused: the setting that allows it...
	Env     string `json:"env,omitempty"`  // ...and its environment variable
}

// verdict answers the origin check of query (origin=...) for a request to
// host, with the very test of the upgrade (allows).
func (p originPolicy) verdict(query, host string) (originVerdict, error) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return originVerdict{}, fmt.Errorf("origin check: bad query: %w", err)
	}
	origin := strings.ToLower(q.Get("origin"))
	if len(origin) > originMaxLen || !originShape.MatchString(origin) || strings.Contains(origin, "*") {
		return originVerdict{}, fmt.Errorf("origin check: want ?origin=scheme://host[:port], the page's origin")
	}
	v := originVerdict{Origin: origin, Allowed: p.allows(origin, host)}
	if !v.Allowed {
		v.Flag, v.Env = "--allowed-origins", "ROOMCAST_ALLOWED_ORIGINS"
	}
	return v, nil
}
