package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The compatible metrics of docs/protocol.md section 7, read with Prometheus's
// own parser after known traffic.
func TestCompatibleMetrics(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.ServerName = "edge-a" })
	pub := newPublisher(t, srv.NATSURL())
	for range 3 {
		subscribe(t, dial(t, srv), "pool:p1", nil)
	}
	pub.event("pool:p1", "e", 1)
	natstest.WaitFor(t, 10*time.Second, func() error {
		families := scrape(t, srv.AdminAddr())
		conns := families["websocket_connections"]
		if conns == nil || conns.Metric[0].GetGauge().GetValue() != 3 || label(conns.Metric[0], "server") != "edge-a" {
			return fmt.Errorf("websocket_connections %v", conns)
		}
		events := 0.0
		for _, m := range families["websocket_messages_total"].GetMetric() {
			if label(m, "message_type") == wire.TypeEvent {
				events = m.GetCounter().GetValue()
			}
		}
		if events != 3 {
			return fmt.Errorf("events counted %v, want 3", events)
		}
		if v := value(families, "roomcast_connections_accepted_total"); v != 3 {
			return fmt.Errorf("connections accepted %v, want 3", v)
		}
		if v := value(families, "roomcast_delivered_bytes_total"); v < 3*60 {
			return fmt.Errorf("delivered bytes %v, want three frames' worth", v)
		}
		if h := families["roomcast_publish_to_delivery_seconds"]; h == nil || h.Metric[0].GetHistogram().GetSampleCount() != 3 {
			return fmt.Errorf("publish-to-delivery latency %v, want an observation per client's write", h)
		}
		if h := families["roomcast_send_batch_frames"]; h == nil || h.Metric[0].GetHistogram().GetSampleCount() < 3 {
			return fmt.Errorf("send batches %v, want at least the three events' writes", h)
		}
		for _, m := range families["websocket_broadcast_duration_seconds"].GetMetric() {
			if label(m, "channel") == "pool" && m.GetHistogram().GetSampleCount() == 1 {
				return nil
			}
		}
		return fmt.Errorf("no broadcast observed with channel=pool: %v", families["websocket_broadcast_duration_seconds"])
	})
}

// /readyz answers JSON; on shutdown it says 503 for --drain-delay while the
// listener still takes clients.
func TestReadinessGoesFirstOnShutdown(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.DrainDelay = 2 * time.Second })
	if code, body := readyz(t, srv.AdminAddr()); code != http.StatusOK || !body.Ready {
		t.Fatalf("before shutdown: %d %+v", code, body)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srv.Shutdown()
	}()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if code, body := readyz(t, srv.AdminAddr()); code != http.StatusServiceUnavailable || body.Reason != "draining" {
			return fmt.Errorf("/readyz %d %+v", code, body)
		}
		return nil
	})
	c := dial(t, srv) // the listener is still open
	subscribe(t, c, "pool:late", nil)
	<-stopped
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	for enabled, want := range map[bool]int{true: http.StatusOK, false: http.StatusNotFound} {
		srv := startNode(t, nil, func(c *config.Serve) { c.Pprof = enabled })
		resp, err := http.Get("http://" + srv.AdminAddr() + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("--pprof=%v: /debug/pprof/ %d, want %d", enabled, resp.StatusCode, want)
		}
	}
}

type readyBody struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
}

func readyz(t *testing.T, admin string) (int, readyBody) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b readyBody
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return resp.StatusCode, b
}

func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value is the value of the family's only counter or gauge, -1 if none.
func value(families map[string]*dto.MetricFamily, name string) float64 {
	f := families[name]
	if f == nil || len(f.Metric) != 1 {
		return -1
	}
	if c := f.Metric[0].GetCounter(); c != nil {
		return c.GetValue()
	}
	return f.Metric[0].GetGauge().GetValue()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
