package chartcheck

import (
	"testing"

	"github.com/roomcast/roomcast/internal/rebalance"
)

// config.rebalance reaches serve as --rebalance, --rebalance-tolerance and
// --rebalance-rate: serve's defaults unless set, read back by serve's own
// parsing to the values given; values out of serve's bounds fail the
// schema.
func TestRebalanceRenders(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want rebalance.Policy
	}{
		{"defaults", minimal(), rebalance.DefaultPolicy()},
		{"set", minimal("config.rebalance.enabled", false, "config.rebalance.tolerance", 0.25, "config.rebalance.rate", 20),
			rebalance.Policy{Enabled: false, Tolerance: 0.25, Rate: 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := checkServe(t, decode(t, mustRender(t, tc.vals)).deployment)
			if cfg.Rebalance != tc.want {
				t.Errorf("serve read %+v, want %+v", cfg.Rebalance, tc.want)
			}
		})
	}
	for _, bad := range []map[string]any{
		minimal("config.rebalance.tolerance", -0.1),
		minimal("config.rebalance.tolerance", 2),
		minimal("config.rebalance.rate", 0),
		minimal("config.rebalance.rate", 2.5),
		minimal("config.rebalance.pace", 10),
	} {
		if _, err := render(t, bad); err == nil {
			t.Errorf("rendered %v: the schema must refuse it", bad["config"])
		}
	}
}
