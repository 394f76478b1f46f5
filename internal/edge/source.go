package edge

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// sourcePolicy names the source a connection comes from, for the caps per
// source address. A trusted proxy is never a source itself: behind one,
// every client would share its address and its cap. Its X-Forwarded-For
// names the client instead, and a proxy's connection without one is not
// capped per source (the node-wide limits still apply).
type sourcePolicy struct {
	trusted []netip.Prefix // --trusted-proxies; empty: X-Forwarded-For is never read
}

// newSourcePolicy parses --trusted-proxies: addresses (10.0.0.7, ::1) or
// CIDRs (10.0.0.0/8).
func newSourcePolicy(proxies []string) (sourcePolicy, error) {
	var p sourcePolicy
	for _, s := range proxies {
		s = strings.TrimSpace(s)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return p, fmt.Errorf("trusted proxy %q: want an IP address or a CIDR (10.0.0.0/8)", s)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		p.trusted = append(p.trusted, pfx.Masked())
	}
	return p, nil
}

// CheckTrustedProxies reports whether proxies are valid --trusted-proxies.
func CheckTrustedProxies(proxies []string) error {
	_, err := newSourcePolicy(proxies)
	return err
}

// isTrusted reports whether addr is one of the trusted proxies.
func (p sourcePolicy) isTrusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, pfx := range p.trusted {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// peer is the source of a socket before its request is read: its address,
// or "" when it is a trusted proxy (or not an IP socket).
func (p sourcePolicy) peer(remote net.Addr) string {
	addr, ok := remoteIP(remote)
	if !ok || p.isTrusted(addr) {
		return ""
	}
	return sourceKey(addr)
}

// client is the source of a request: the peer, or, when the peer is a
// trusted proxy, the nearest address of X-Forwarded-For (xff, every
// header's value joined by commas) that is not a trusted proxy. Only the
// entries the trusted proxies appended are believed: whatever a client
// wrote there itself comes before them, and is never reached while an
// untrusted entry comes first.
func (p sourcePolicy) client(remote net.Addr, xff string) string {
	addr, ok := remoteIP(remote)
	if !ok {
		return ""
	}
	if !p.isTrusted(addr) {
		return sourceKey(addr)
	}
	hops := strings.Split(xff, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		raw := strings.TrimSpace(hops[i])
		if raw == "" {
			continue // no header, or an empty entry
		}
		hop, ok := parseHop(raw)
		if !ok {
			// A proxy that names its client otherwise ("unknown", an
			// obfuscated name): those clients share one cap, rather than
			// none at all.
			return "hop:" + truncate(raw)
		}
		if !p.isTrusted(hop) {
			return sourceKey(hop)
		}
	}
	return "" // no client named: the proxy's own request
}

// parseHop reads one X-Forwarded-For entry: an address, with or without a
// port, IPv6 in brackets or not (proxies write all of these).
func parseHop(raw string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(raw); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(raw); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(raw, "["), "]")); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

func remoteIP(remote net.Addr) (netip.Addr, bool) {
	if remote == nil {
		return netip.Addr{}, false
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// sourceKey is the cap's key of an address: the address for IPv4, its /64
// for IPv6, since one subscriber commonly holds a whole /64.
func sourceKey(addr netip.Addr) string {
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}
