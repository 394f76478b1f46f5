package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// metricName finds the names of roomcast's metrics in a text.
var metricName = regexp.MustCompile(`\b(?:websocket|roomcast)_[a-z_]+\b`)

// dashboard is the Grafana dashboard the Helm chart ships.
const dashboard = "../../charts/roomcast/dashboards/roomcast.json"

// Every metric the dashboard queries exists: it cannot drift from the code.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	names := NewUnregistered().Names()
	queries := 0
	check := func(where, expr string) {
		queries++
		for _, name := range metricName.FindAllString(expr, -1) {
			if !slices.Contains(names, name) {
				t.Errorf("%s queries %s, which the node does not export", where, name)
			}
		}
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			check("variable "+v.Name, v.Definition)
		}
	}
	if queries < 10 {
		t.Fatalf("only %d queries found in the dashboard", queries)
	}
	if !slices.Contains(names, "websocket_connections") || !slices.Contains(names, "websocket_broadcast_duration_seconds_bucket") {
		t.Fatalf("Names misses the compatible metrics: %v", names)
	}
}

// rules are the alerting rules the Helm chart ships.
const rules = "../../charts/roomcast/alerts/roomcast-rules.yaml"

// Every metric the alert rules use exists.
func TestAlertRulesUseExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	names := NewUnregistered().Names()
	found := metricName.FindAllString(string(raw), -1)
	if len(found) < 6 {
		t.Fatalf("only %d metric references in %s", len(found), rules)
	}
	for _, name := range found {
		if !slices.Contains(names, name) {
			t.Errorf("%s uses %s, which the node does not export", rules, name)
		}
	}
}

// operations is the operators' guide, whose metrics table they read.
const operations = "../../docs/operations.md"

// protocol is the contract, whose section 7 lists the metrics.
const protocol = "../../docs/protocol.md"

// The operators' guide and the contract list every metric in a table row, and name
// none the node does not export.
func TestDocsListEveryMetric(t *testing.T) {
	names := NewUnregistered().Names()
	for _, doc := range []string{operations, protocol} {
		t.Run(filepath.Base(doc), func(t *testing.T) {
			raw, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			text := string(raw)
			for _, name := range names {
				if strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
					continue
				}
				if !strings.Contains(text, "| `"+name+"` |") {
					t.Errorf("%s's metrics table lacks %s", doc, name)
				}
			}
			for _, name := range metricName.FindAllString(text, -1) {
				if !slices.Contains(names, name) {
					t.Errorf("%s names %s, which the node does not export", doc, name)
				}
			}
		})
	}
}
