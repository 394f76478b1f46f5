package servertest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Metric sums the samples of a node's /metrics (its admin address)
// named name whose labels include every one of labels (each
// `key="value"`); 0 when there are none.
func Metric(admin, name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sum := 0.0
	for sc.Scan() {
		series, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(series, "#") {
			continue
		}
		got, labelSet, _ := strings.Cut(series, "{")
		if got != name || !hasLabels(labelSet, labels) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", series, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// Closes is the node's count of connections closed for reason
// (roomcast_connection_closes_total), failing the test when /metrics
// cannot be read.
func Closes(tb testing.TB, admin, reason string) float64 {
	tb.Helper()
	v, err := Metric(admin, "roomcast_connection_closes_total", `reason="`+reason+`"`)
	if err != nil {
		tb.Fatalf("node %s: /metrics: %v", admin, err)
	}
	return v
}

// hasLabels reports whether a sample's label set (`a="x",b="y"}`) holds
// every one of want.
func hasLabels(set string, want []string) bool {
	have := strings.Split(strings.TrimSuffix(set, "}"), ",")
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}
