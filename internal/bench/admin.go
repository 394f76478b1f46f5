package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The metrics idle mode reads from the edge's /metrics.
const (
	metricRSS         = "process_resident_memory_bytes"
	metricConnections = "websocket_connections"
	// The storm scenario's read amplification.
	metricStreamRequests = "roomcast_stream_requests_total"
	// The resume scenario waits for the state keeper to read what it stored.
	metricKeeperLag = "roomcast_state_keeper_lag_events"
)

// Bounds of the idle measurement.
const (
	connectionsWait = 30 * time.Second       // for websocket_connections to reach the target
	connectionsPoll = 100 * time.Millisecond // how often it is read meanwhile
	settleWait      = 20 * time.Second       // for the RSS to settle
	settlePoll      = 500 * time.Millisecond // between two RSS readings
	settleTolerance = 0.01                   // two readings this close (relative) have settled
	scrapeTimeout   = 5 * time.Second
	maxMetricsBytes = 16 << 20
)

// sample is one reading of an edge's metrics.
type sample struct {
	rss   int64
	conns int64
}

// admin reads an edge's /metrics.
type admin struct {
	url   string // the /metrics URL
	token string // bearer token, or empty
	http  *http.Client
}

// newAdmin takes the admin base URL (http://127.0.0.1:9090) or the full
// /metrics URL, and the edge's admin token if it asks for one.
func newAdmin(base, token string) *admin {
	u := strings.TrimRight(base, "/")
	if !strings.HasSuffix(u, "/metrics") {
		u += "/metrics"
	}
	return &admin{url: u, token: token, http: &http.Client{Timeout: scrapeTimeout}}
}

// scrape reads the resident memory and the connection count.
func (a *admin) scrape(ctx context.Context) (sample, error) {
	families, err := a.families(ctx)
	if err != nil {
		return sample{}, err
	}
	sum := func(name string) (int64, error) {
		f, ok := families[name]
		if !ok {
			return 0, fmt.Errorf("%s has no %s", a.url, name)
		}
		return int64(math.Round(total(f))), nil
	}
	var s sample
	if s.rss, err = sum(metricRSS); err != nil {
		return sample{}, err
	}
	if s.conns, err = sum(metricConnections); err != nil {
		return sample{}, err
	}
	return s, nil
}

// streamRequests reads the edge's count of JetStream requests, all kinds
// (0 before the first).
func (a *admin) streamRequests(ctx context.Context) (float64, error) {
	families, err := a.families(ctx)
	if err != nil {
		return 0, err
	}
	if f, ok := families[metricStreamRequests]; ok {
		return total(f), nil
	}
	return 0, nil
}

// waitKeeper waits until the edge's state keeper has read every stored
// event, polling its metrics, for as long as ctx allows: its lag read 0
// twice in a row, further apart than the keeper's own idle poll (100 ms),
// so a 0 from before it looked at the newest events does not count.
func (a *admin) waitKeeper(ctx context.Context) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for zeros := 0; zeros < 2; {
		families, err := a.families(ctx)
		if err != nil {
			return err
		}
		zeros++
		if f, ok := families[metricKeeperLag]; !ok || total(f) > 0 {
			zeros = 0
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the state keeper did not catch up: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// families reads and parses the edge's /metrics.
func (a *admin) families(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request: %w", err)
	}
	req.Header.Set("Accept", "text/plain")
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read metrics %s: %s", a.url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return nil, fmt.Errorf("parse metrics of %s: %w", a.url, err)
	}
	return families, nil
}

// total is the sum of a family's gauges, counters and untyped values.
func total(f *dto.MetricFamily) float64 {
	var v float64
	for _, m := range f.GetMetric() {
		switch {
		case m.GetGauge() != nil:
			v += m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			v += m.GetCounter().GetValue()
		case m.GetUntyped() != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v
}

// measureIdle completes the idle measurement once added connections are
// subscribed on the measured edge: it waits until the edge counts them
// (websocket_connections at before.conns+added), then until its RSS settles
// (two readings settlePoll apart within settleTolerance, at most settleWait),
// and divides the growth of the RSS by the growth of websocket_connections
// (by added when that did not grow). Nothing is forced (no GC): it measures
// what the process holds.
func (a *admin) measureIdle(ctx context.Context, log *slog.Logger, before sample, added int) (*IdleReport, error) {
	rep := &IdleReport{AdminURL: a.url, RSSBefore: before.rss, ConnectionsBefore: before.conns}
	target := before.conns + int64(added)
	deadline := time.Now().Add(connectionsWait)
	var cur sample
	for {
		s, err := a.scrape(ctx)
		if err != nil {
			return nil, err
		}
		cur = s
		if cur.conns >= target {
			break
		}
		if !time.Now().Before(deadline) {
			log.Warn("websocket_connections did not reach the target; measuring anyway",
				"websocket_connections", cur.conns, "target", target, "waited", connectionsWait)
			break
		}
		if !sleepUntil(ctx, time.Now().Add(connectionsPoll)) {
			return nil, ctx.Err()
		}
	}

	start := time.Now()
	for time.Since(start) < settleWait {
		if !sleepUntil(ctx, time.Now().Add(settlePoll)) {
			return nil, ctx.Err()
		}
		next, err := a.scrape(ctx)
		if err != nil {
			return nil, err
		}
		settled := math.Abs(float64(next.rss-cur.rss)) < settleTolerance*float64(cur.rss)
		cur = next
		if settled {
			rep.Settled = true
			break
		}
	}
	rep.SettleSeconds = time.Since(start).Seconds()
	rep.RSSAfter, rep.ConnectionsAfter = cur.rss, cur.conns
	divisor := cur.conns - before.conns
	if divisor <= 0 {
		divisor = int64(added)
	}
	if divisor > 0 {
		rep.BytesPerConn = float64(cur.rss-before.rss) / float64(divisor)
	}
	return rep, nil
}
