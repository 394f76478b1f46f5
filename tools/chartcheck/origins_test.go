package chartcheck

import (
	"strings"
	"testing"
)

// The browser origins the node accepts are config.allowedOrigins and the
// origin of every ingress host, https:// for a host an ingress.tls entry
// lists and http:// otherwise, each once; serve's own Validate accepts the
// result. Without either, the variable is left out (the node's default).
func TestAllowedOriginsFollowTheIngress(t *testing.T) {
	tls := func(hosts ...any) []any { return []any{map[string]any{"secretName": "ingress-tls", "hosts": hosts}} }
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string // ROOMCAST_ALLOWED_ORIGINS; "" absent
	}{
		{"none", minimal(), ""},
		{"explicit only", minimal("config.allowedOrigins", []any{"https://monitor.example.com", "https://*.monitor.example.com"}),
			"https://monitor.example.com,https://*.monitor.example.com"},
		{"ingress off: its hosts are not served", minimal("ingress.hosts", []any{"dash.example.com"}), ""},
		{"ingress without TLS", minimal("ingress.enabled", true, "ingress.hosts", []any{"dash.example.com"}), "http://dash.example.com"},
		{"ingress with TLS for one host", minimal("ingress.enabled", true, "ingress.hosts", []any{"dash.example.com", "ws.example.com"},
			"ingress.tls", tls("ws.example.com")), "http://dash.example.com,https://ws.example.com"},
		{"explicit and ingress, once each", minimal("config.allowedOrigins", []any{"https://ws.example.com", "https://monitor.example.com"},
			"ingress.enabled", true, "ingress.hosts", []any{"ws.example.com"}, "ingress.tls", tls("ws.example.com")),
			"https://ws.example.com,https://monitor.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := decode(t, mustRender(t, tc.vals))
			got, set := "", false
			for _, e := range container(t, o).Env {
				if e.Name == "ROOMCAST_ALLOWED_ORIGINS" {
					got, set = e.Value, true
				}
			}
			if got != tc.want || set != (tc.want != "") {
				t.Errorf("ROOMCAST_ALLOWED_ORIGINS = %q (set: %v), want %q", got, set, tc.want)
			}
			checkServe(t, o.deployment)
			ing, _ := tc.vals["ingress"].(map[string]any)
			enabled, _ := ing["enabled"].(bool)
			hosts, _ := ing["hosts"].([]any)
			if (o.ingress != nil) != enabled {
				t.Fatalf("Ingress rendered: %v, ingress.enabled: %v", o.ingress != nil, enabled)
			}
			if o.ingress != nil && len(o.ingress.Spec.Rules) != len(hosts) {
				t.Errorf("Ingress rules %+v, want one per host", o.ingress.Spec.Rules)
			}
		})
	}
}

// An Ingress without hosts, or a host given as a URL, is refused with a
// message that says what to give.
func TestIngressRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no hosts", minimal("ingress.enabled", true), "ingress.enabled needs ingress.hosts"},
		{"a URL for a host", minimal("ingress.enabled", true, "ingress.hosts", []any{"https://dash.example.com"}), "hosts"},
	} {
		if _, err := render(t, tc.vals); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
