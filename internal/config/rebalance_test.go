package config

import (
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/rebalance"
)

// Rebalancing is on by default with the package's defaults, set by flag
// or variable; bad values are refused naming their flag.
func TestRebalanceSettings(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Rebalance != rebalance.DefaultPolicy() || !c.Rebalance.Enabled {
		t.Fatalf("defaults %+v, want %+v", c.Rebalance, rebalance.DefaultPolicy())
	}
	c, err = parseServe(t, []string{"--rebalance-rate", "20"}, map[string]string{"ROOMCAST_REBALANCE": "false", "ROOMCAST_REBALANCE_TOLERANCE": "0.25"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (rebalance.Policy{Enabled: false, Tolerance: 0.25, Rate: 20}); c.Rebalance != want {
		t.Fatalf("got %+v, want %+v", c.Rebalance, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c, _ = parseServe(t, []string{"--rebalance-tolerance", "2", "--rebalance-rate", "-1"}, nil)
	err = c.Validate()
	for _, want := range []string{"--rebalance-tolerance", "--rebalance-rate"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
