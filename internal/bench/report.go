package bench

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Report is the outcome of a run. Counts are over the whole run; a
// delivery is one event received by one connection.
type Report struct {
	Mode        string   `json:"mode"` // "load" or "idle"
	URLs        []string `json:"urls"`
	Connections int      `json:"connections"`   // asked for
	Subscribed  int      `json:"subscribed"`    // connected and subscribed
	DialFailed  int      `json:"dial_failures"` // could not connect or subscribe
	DialSeconds float64  `json:"dial_seconds"`  // connecting and subscribing all
	Rooms       int      `json:"rooms"`

	// Load mode.
	Rate               float64  `json:"rate,omitempty"`             // events/s asked for
	DurationSeconds    float64  `json:"duration_seconds,omitempty"` // publishing, as asked
	Published          int64    `json:"events_published"`           // acknowledged by JetStream
	PublishErrors      int64    `json:"publish_errors"`
	PublishSeconds     float64  `json:"publish_seconds,omitempty"` // publishing, as it took
	Expected           int64    `json:"deliveries_expected"`
	Received           int64    `json:"deliveries_received"`
	Lost               int64    `json:"deliveries_lost"`
	Gaps               int64    `json:"gaps"`         // events skipped within a room's counter
	OutOfOrder         int64    `json:"out_of_order"` // seq not above the previous, or a counter repeated
	Unexpected         int64    `json:"unexpected"`   // messages a bench connection should not get
	DeliveriesPerSec   float64  `json:"deliveries_per_second"`
	Latency            *Latency `json:"latency,omitempty"`
	ConnectionsDropped int      `json:"connections_dropped"` // readers ended by an error before the end

	// Load mode with a server pid: the server's CPU time (user and
	// system) from the start of publishing until every delivery arrived
	// (or the grace ended), and that per delivery.
	ServerCPUSeconds     float64 `json:"server_cpu_seconds,omitempty"`
	CPUMicrosPerDelivery float64 `json:"cpu_us_per_delivery,omitempty"`

	// Idle mode with an admin URL.
	Idle *IdleReport `json:"idle,omitempty"`

	Errors []ErrorCount `json:"errors"`
}

// IdleReport is the server-side memory measurement of idle mode, read from
// the edge's /metrics.
type IdleReport struct {
	AdminURL          string  `json:"admin_url,omitempty"`
	PID               int     `json:"pid,omitempty"` // measured through /proc instead
	RSSBefore         int64   `json:"rss_before_bytes"`
	RSSAfter          int64   `json:"rss_after_bytes"`
	ConnectionsBefore int64   `json:"websocket_connections_before"`
	ConnectionsAfter  int64   `json:"websocket_connections_after"`
	Settled           bool    `json:"rss_settled"` // two readings 500ms apart within 1%
	SettleSeconds     float64 `json:"settle_seconds"`
	BytesPerConn      float64 `json:"bytes_per_idle_subscribed_connection"`
}

// ErrorCount is how often one stage failed, with the first error as an
// example.
type ErrorCount struct {
	Stage   string `json:"stage"` // dial, subscribe, read, publish, admin
	Count   int    `json:"count"`
	Example string `json:"example"`
}

// Problem says why the run failed (deliveries lost, gaps, connections that
// could not be made or dropped, publishes or the idle measurement that
// failed), or nil.
func (r *Report) Problem() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if r.Subscribed == 0 {
		add("no connection subscribed")
	}
	if r.DialFailed > 0 {
		add("%d of %d connections failed to connect or subscribe", r.DialFailed, r.Connections)
	}
	if r.Lost > 0 {
		add("%d of %d deliveries lost", r.Lost, r.Expected)
	}
	if r.Gaps > 0 || r.OutOfOrder > 0 {
		add("%d gaps and %d out-of-order events", r.Gaps, r.OutOfOrder)
	}
	if r.PublishErrors > 0 {
		add("%d events could not be published", r.PublishErrors)
	}
	if r.ConnectionsDropped > 0 {
		add("%d connections dropped during the run", r.ConnectionsDropped)
	}
	for _, e := range r.Errors {
		if e.Stage == "admin" {
			add("the idle measurement failed: %s", e.Example)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "; "))
}

// WriteText prints the report as a person reads it.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	edges := "edge"
	if len(r.URLs) != 1 {
		edges = "edges"
	}
	fmt.Fprintf(&b, "connections   %d subscribed of %d (%d failed) to %d %s in %.2fs, %d rooms\n",
		r.Subscribed, r.Connections, r.DialFailed, len(r.URLs), edges, r.DialSeconds, r.Rooms)
	if r.Mode == ModeLoad {
		fmt.Fprintf(&b, "published     %d events in %.2fs (asked %.1f/s for %.1fs), %d publish errors\n",
			r.Published, r.PublishSeconds, r.Rate, r.DurationSeconds, r.PublishErrors)
		fmt.Fprintf(&b, "deliveries    %d expected, %d received, %d lost; %.0f deliveries/s\n",
			r.Expected, r.Received, r.Lost, r.DeliveriesPerSec)
		if l := r.Latency; l != nil && l.Samples > 0 {
			fmt.Fprintf(&b, "latency       p50 %.2fms  p90 %.2fms  p99 %.2fms  max %.2fms  (mean %.2fms)\n",
				l.P50, l.P90, l.P99, l.Max, l.Mean)
		}
		if r.ServerCPUSeconds > 0 {
			fmt.Fprintf(&b, "server CPU    %.3fs, %.2fµs per delivery\n", r.ServerCPUSeconds, r.CPUMicrosPerDelivery)
		}
		fmt.Fprintf(&b, "order         %d gaps, %d out of order, %d unexpected messages, %d connections dropped\n",
			r.Gaps, r.OutOfOrder, r.Unexpected, r.ConnectionsDropped)
	}
	if d := r.Idle; d != nil {
		settled := fmt.Sprintf("settled after %.1fs", d.SettleSeconds)
		if !d.Settled {
			settled = fmt.Sprintf("not settled within %.1fs", d.SettleSeconds)
		}
		if d.PID > 0 {
			fmt.Fprintf(&b, "server        pid %d RSS %s before, %s after (%s)\n", d.PID, mib(d.RSSBefore), mib(d.RSSAfter), settled)
		} else {
			fmt.Fprintf(&b, "server        RSS %s before, %s after (%s); websocket_connections %d -> %d\n",
				mib(d.RSSBefore), mib(d.RSSAfter), settled, d.ConnectionsBefore, d.ConnectionsAfter)
		}
		fmt.Fprintf(&b, "memory        %.0f bytes per idle subscribed connection\n", d.BytesPerConn)
	}
	if len(r.Errors) == 0 {
		b.WriteString("errors        none\n")
	}
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "errors        %s: %d, first: %s\n", e.Stage, e.Count, e.Example)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// tally counts errors by stage, keeping the first of each as an example.
// Errors are rare, so one mutex is enough.
type tally struct {
	mu      sync.Mutex
	byStage map[string]*ErrorCount
	order   []string
}

func (t *tally) add(stage string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byStage == nil {
		t.byStage = make(map[string]*ErrorCount)
	}
	e := t.byStage[stage]
	if e == nil {
		e = &ErrorCount{Stage: stage, Example: err.Error()}
		t.byStage[stage] = e
		t.order = append(t.order, stage)
	}
	e.Count++
}

func (t *tally) list() []ErrorCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ErrorCount, 0, len(t.order))
	for _, s := range t.order {
		out = append(out, *t.byStage[s])
	}
	return out
}
