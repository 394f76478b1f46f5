package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
)

// The Grafana dashboard and the alert rules the Helm chart ships.
const (
	dashboardFile = "../../charts/roomcast/dashboards/roomcast.json"
	rulesFile     = "../../charts/roomcast/alerts/roomcast-rules.yaml"
)

var (
	// selectorRE finds a series selector in PromQL: a metric name of the
	// node's prefixes (or NATS's), and its braces if it has them. Enough
	// for the chart's expressions; not a PromQL parser.
	selectorRE = regexp.MustCompile(`\b((?:roomcast|websocket|nats|go|process)_[a-zA-Z0-9_]+)\b(\{[^}]*\})?`)
	// matcherRE finds a label matcher in a selector's braces.
	matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*"([^"]*)"`)
)

// wanted is a series an expression selects: a metric name and the label
// values it matches literally (label="value"; regular expressions and
// Grafana variables match any value).
type wanted struct {
	where, name string
	labels      map[string]string
}

func (w wanted) String() string {
	var ls []string
	for name, value := range w.labels {
		ls = append(ls, fmt.Sprintf("%s=%q", name, value))
	}
	slices.Sort(ls)
	return fmt.Sprintf("%s{%s} (%s)", w.name, strings.Join(ls, ","), w.where)
}

// A fresh node, before any client, exposes every series the dashboard and
// the alert rules query, with the label values they match: rate() and
// increase() over a series that appears with its first event miss that
// event, so an alert on the first slow consumer would never fire. The
// series of metrics labelled by room kind (metrics.Lazy) appear with the
// first event of a room of that kind instead.
func TestDashboardAndAlertSeriesExistBeforeTraffic(t *testing.T) {
	var want []wanted
	for _, e := range append(dashboardExprs(t), ruleExprs(t)...) {
		ws := selected(e.where, e.expr)
		if len(ws) == 0 {
			t.Errorf("%s: no series found in %q; the test's parser missed it", e.where, e.expr)
		}
		want = append(want, ws...)
	}
	srv := startNode(t, nil, nil)
	families := scrape(t, srv.AdminAddr())
	lazy := metrics.NewUnregistered().Lazy()
	var later []wanted
	for _, w := range want {
		if slices.Contains(lazy, w.name) {
			later = append(later, w)
			continue
		}
		if err := exposed(families, w); err != nil {
			t.Errorf("before any traffic: %v", err)
		}
	}
	if len(later) == 0 || t.Failed() {
		return
	}
	// Lazy series: one event of a room makes them.
	c := dial(t, srv)
	subscribe(t, c, "pool:p1", nil)
	newPublisher(t, srv.NATSURL()).event("pool:p1", "e", 1)
	readEvents(t, c, 1)
	natstest.WaitFor(t, 10*time.Second, func() error {
		families := scrape(t, srv.AdminAddr())
		for _, w := range later {
			if err := exposed(families, w); err != nil {
				return fmt.Errorf("after an event of pool:p1: %w", err)
			}
		}
		return nil
	})
}

// expr is one PromQL expression and where it is.
type expr struct{ where, expr string }

// dashboardExprs returns every query of the dashboard: each "expr" of a
// panel's targets and each variable's "definition", wherever they nest.
func dashboardExprs(t *testing.T) []expr {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []expr
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				if s, ok := child.(string); ok && (k == "expr" || k == "definition") && s != "" {
					out = append(out, expr{dashboardFile + path + "." + k, s})
				}
				walk(path+"."+k, child)
			}
		case []any:
			for i, child := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), child)
			}
		}
	}
	walk("", doc)
	if len(out) < 20 {
		t.Fatalf("only %d queries found in %s", len(out), dashboardFile)
	}
	return out
}

// ruleExprs returns every rule's expr: `expr: ...` on one line, or a block
// (`expr: |`) of the lines indented under it.
func ruleExprs(t *testing.T) []expr {
	raw, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []expr
	var block *strings.Builder
	indent := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		lead := len(line) - len(strings.TrimLeft(line, " "))
		if block != nil && (trimmed == "" || lead > indent) {
			block.WriteString(trimmed + "\n")
			continue
		}
		if block != nil {
			out[len(out)-1].expr = block.String()
			block = nil
		}
		value, ok := strings.CutPrefix(trimmed, "expr:")
		if !ok {
			continue
		}
		out = append(out, expr{fmt.Sprintf("%s:%d", rulesFile, n), strings.TrimSpace(value)})
		if v := strings.TrimSpace(value); v == "|" || v == ">" {
			block, indent = &strings.Builder{}, lead
		}
	}
	if block != nil {
		out[len(out)-1].expr = block.String()
	}
	if len(out) < 7 {
		t.Fatalf("only %d expressions found in %s", len(out), rulesFile)
	}
	return out
}

// selected returns the series an expression selects.
func selected(where, e string) []wanted {
	var out []wanted
	for _, m := range selectorRE.FindAllStringSubmatch(e, -1) {
		w := wanted{where: where, name: m[1], labels: map[string]string{}}
		for _, lm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			if lm[2] == "=" && !strings.Contains(lm[3], "$") {
				w.labels[lm[1]] = lm[3]
			}
		}
		out = append(out, w)
	}
	return out
}

// exposed says why the scrape has no series w selects, nil if it has one.
// A histogram's _bucket, _sum and _count are its family's series.
func exposed(families map[string]*dto.MetricFamily, w wanted) error {
	f := families[w.name]
	if f == nil {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(w.name, suffix)
			if h := families[base]; ok && h.GetType() == dto.MetricType_HISTOGRAM {
				f = h
			}
		}
	}
	if f == nil {
		return fmt.Errorf("no series of %s", w)
	}
	for _, m := range f.GetMetric() {
		if matches(m, w.labels) {
			return nil
		}
	}
	return fmt.Errorf("no series of %s with those labels among %d", w, len(f.GetMetric()))
}

// matches reports whether m has every label value of want.
func matches(m *dto.Metric, want map[string]string) bool {
	for name, value := range want {
		if label(m, name) != value {
			return false
		}
	}
	return true
}
