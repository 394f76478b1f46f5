package metrics

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/roomcast/roomcast/internal/wire"
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

// Every labelled metric has a series for each of its known label values
// from the start, but those Lazy names; so a new labelled metric must be
// started at 0 or declared lazy.
func TestLabelledCountersStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "edge-a")
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			if f.GetType() == dto.MetricType_COUNTER && s.GetCounter().GetValue() != 0 {
				t.Errorf("%s starts at %v", f.GetName(), s.GetCounter().GetValue())
			}
		}
		series[f.GetName()] = len(f.GetMetric())
	}
	want := map[string]int{
		"websocket_messages_total":         len(wire.MessageTypes()),
		"roomcast_connection_closes_total": len(CloseReasons()),
		"roomcast_request_errors_total":    len(wire.Codes()),
		"roomcast_auth_failures_total":     len(AuthFailureReasons()),
		"roomcast_upgrades_refused_total":  len(RefusedReasons()),
		"roomcast_stream_requests_total":   len(StreamKinds()),
		"roomcast_resumes_total":           2 * len(ResumeSources()),
		"roomcast_state_writes_total":      2,
		"roomcast_state_reads_total":       2,
	}
	lazy := m.Lazy()
	for _, name := range m.Names() {
		switch {
		case slices.Contains(lazy, name):
			if series[name] != 0 {
				t.Errorf("%s is lazy but has %d series", name, series[name])
			}
		case want[name] > 0:
			if series[name] != want[name] {
				t.Errorf("%s has %d series, want %d", name, series[name], want[name])
			}
		case strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count"):
		case series[name] != 1:
			t.Errorf("%s has %d series: start its label values at 0 (and list it above), or make it lazy", name, series[name])
		}
	}
	if !slices.Contains(lazy, "websocket_broadcast_duration_seconds_bucket") || !slices.Contains(lazy, "roomcast_state_keys") {
		t.Errorf("Lazy() = %v, want the histograms by room kind", lazy)
	}
}
