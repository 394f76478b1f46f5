package chartcheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/edge"
)

// The connection budgets reach serve as their ROOMCAST_* variables:
// config.maxUnauthenticated and config.maxUnauthenticatedPerSource always
// (serve's own defaults unless set: 0, auto, and
// edge.DefaultMaxUnauthenticatedPerSource), config.trustedProxies
// joined by commas and only when it lists something. serve's own parsing
// and Validate read them back to the values given, for every form of
// address the schema lets through.
func TestConnectionBudgetsRender(t *testing.T) {
	for _, tc := range []struct {
		name           string
		vals           map[string]any
		unauth, perSrc int
		proxies        []string // ROOMCAST_TRUSTED_PROXIES split; nil: absent
	}{
		{"defaults", minimal(), 0, edge.DefaultMaxUnauthenticatedPerSource, nil},
		{"set", minimal("config.maxUnauthenticated", 200, "config.maxUnauthenticatedPerSource", 8,
			"config.trustedProxies", []any{"10.244.0.0/16", "10.0.0.7"}), 200, 8, []string{"10.244.0.0/16", "10.0.0.7"}},
		{"IPv6 and IPv4-mapped", minimal("config.trustedProxies", []any{"fd00::/8", "2001:db8::1", "::ffff:10.1.0.0/112", "::1"}),
			0, 32, []string{"fd00::/8", "2001:db8::1", "::ffff:10.1.0.0/112", "::1"}},
		{"anonymous: rendered, unused by serve", vals("nats.url", "nats://nats:4222", "allowAnonymous", true,
			"config.maxUnauthenticatedPerSource", 1, "config.trustedProxies", []any{"0.0.0.0/0"}), 0, 1, []string{"0.0.0.0/0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := decode(t, mustRender(t, tc.vals))
			c := container(t, o)
			for name, want := range map[string]int{
				"ROOMCAST_MAX_UNAUTHENTICATED":            tc.unauth,
				"ROOMCAST_MAX_UNAUTHENTICATED_PER_SOURCE": tc.perSrc,
			} {
				if got := envValue(t, c, name); got != strconv.Itoa(want) {
					t.Errorf("%s = %q, want %d", name, got, want)
				}
			}
			var proxies []string
			for _, e := range c.Env {
				if e.Name == "ROOMCAST_TRUSTED_PROXIES" {
					proxies = strings.Split(e.Value, ",")
				}
			}
			if !slices.Equal(proxies, tc.proxies) {
				t.Errorf("ROOMCAST_TRUSTED_PROXIES = %q, want %q (nil: absent)", proxies, tc.proxies)
			}
			cfg := checkServe(t, o.deployment)
			if cfg.MaxUnauthenticated != tc.unauth || cfg.MaxUnauthenticatedPerSource != tc.perSrc || !slices.Equal(cfg.TrustedProxies, tc.proxies) {
				t.Errorf("serve read --max-unauthenticated %d, --max-unauthenticated-per-source %d, --trusted-proxies %q; want %d, %d, %q",
					cfg.MaxUnauthenticated, cfg.MaxUnauthenticatedPerSource, cfg.TrustedProxies, tc.unauth, tc.perSrc, tc.proxies)
			}
		})
	}
}

// The per-source caps key on the peer's address, so behind the chart's
// Ingress every client is the ingress controller: NOTES.txt warns of it,
// and says what to set, exactly when ingress.enabled and
// config.trustedProxies is empty, with the caps the pods apply.
func TestNotesWarnIngressClientsShareOneSource(t *testing.T) {
	const warning = "WARNING: every client reaches the pods from the ingress controller"
	ingress := []any{"ingress.enabled", true, "ingress.hosts", []any{"ws.example.com"}}
	proxies := []any{"config.trustedProxies", []any{"10.244.0.0/16"}}
	for _, tc := range []struct {
		name string
		vals map[string]any
		warn bool
	}{
		{"ingress, no trusted proxies", minimal(append(slices.Clone(ingress), "config.maxUnauthenticatedPerSource", 5)...), true},
		{"ingress and trusted proxies", minimal(append(slices.Clone(ingress), proxies...)...), false},
		{"no ingress", minimal(), false},
		{"no ingress, trusted proxies", minimal(proxies...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			notes := decode(t, mustRender(t, tc.vals)).notes
			if got := strings.Contains(notes, warning); got != tc.warn {
				t.Fatalf("NOTES.txt warns of the shared source: %v, want %v:\n%s", got, tc.warn, notes)
			}
			if !tc.warn {
				return
			}
			for _, w := range []string{
				"config.trustedProxies", "pod CIDR", "X-Forwarded-For",
				fmt.Sprintf("(%d handshakes in progress, 5 connections waiting to authenticate)", edge.DefaultMaxHandshakesPerSource),
			} {
				if !strings.Contains(notes, w) {
					t.Errorf("the warning does not say %q:\n%s", w, notes)
				}
			}
		})
	}
}
