package bench

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

func startNode(t *testing.T) *server.Server { return servertest.Start(t, nil, nil) }

// runBench runs cfg, logging to the test, and reports any problem found.
func runBench(ctx context.Context, t *testing.T, cfg Config) *Report {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	t.Logf("report:\n%s", text.String())
	if err := rep.Problem(); err != nil {
		t.Errorf("problem: %v", err)
	}
	return rep
}

// testLog writes the bench's progress to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestBenchAgainstNode(t *testing.T) {
	// The node's /metrics asks for a token, as in production: the idle
	// run reads it with the token.
	const adminToken = "bench-admin-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t, nil, func(c *config.Serve) { c.AdminTokenFile = tokenFile })
	urls := []string{"ws://" + srv.WSAddr() + "/ws"}
	adminURL := "http://" + srv.AdminAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("load", func(t *testing.T) {
		rep := runBench(ctx, t, Config{
			URLs: urls, NATSURL: srv.NATSURL(),
			Conns: 20, Rooms: 4, Rate: 50, Duration: time.Second, Grace: 15 * time.Second,
		})
		const published, perRoom = 50, 5 // 20 connections over 4 rooms
		if rep.Mode != ModeLoad || rep.Subscribed != 20 || rep.DialFailed != 0 {
			t.Errorf("mode %s, subscribed %d, failed %d; want load, 20, 0", rep.Mode, rep.Subscribed, rep.DialFailed)
		}
		if rep.Published != published || rep.PublishErrors != 0 {
			t.Errorf("published %d with %d errors, want %d and none", rep.Published, rep.PublishErrors, published)
		}
		if rep.Expected != published*perRoom || rep.Received != rep.Expected || rep.Lost != 0 {
			t.Errorf("deliveries: expected %d, received %d, lost %d; want %d, all, none", rep.Expected, rep.Received, rep.Lost, published*perRoom)
		}
		if rep.Gaps != 0 || rep.OutOfOrder != 0 || rep.Unexpected != 0 || rep.ConnectionsDropped != 0 || len(rep.Errors) != 0 {
			t.Errorf("gaps %d, out of order %d, unexpected %d, dropped %d, errors %+v; want none",
				rep.Gaps, rep.OutOfOrder, rep.Unexpected, rep.ConnectionsDropped, rep.Errors)
		}
		l := rep.Latency
		if l == nil || l.Samples != uint64(rep.Received) || !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max && l.Mean > 0) {
			t.Errorf("latency %+v: want positive, ordered percentiles over every delivery", l)
		}
		if rep.DeliveriesPerSec <= 0 {
			t.Errorf("deliveries/s %v, want positive", rep.DeliveriesPerSec)
		}
	})

	// The load run's connections are gone before the idle run counts them.
	if _, err := newAdmin(adminURL, "").scrape(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("metrics read without the token: %v, want 401", err)
	}
	adm := newAdmin(adminURL, adminToken)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s, err := adm.scrape(ctx)
		if err == nil && s.conns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections still open on the node: %+v, %v", s, err)
		}
		if !sleepUntil(ctx, time.Now().Add(20*time.Millisecond)) {
			t.Fatal(ctx.Err())
		}
	}

	t.Run("idle", func(t *testing.T) {
		const conns = 200
		// The node shares this process with the load run and, under -count,
		// with earlier nodes: give their freed memory back to the OS, or
		// the new connections reuse it and the RSS need not grow.
		debug.FreeOSMemory()
		rep := runBench(ctx, t, Config{URLs: urls, AdminURL: adminURL, AdminToken: adminToken, Conns: conns, Rooms: 10})
		if rep.Mode != ModeIdle || rep.Connections != conns || rep.Subscribed != conns {
			t.Errorf("mode %s, connections %d, subscribed %d; want idle, %d, %d", rep.Mode, rep.Connections, rep.Subscribed, conns, conns)
		}
		d := rep.Idle
		if d == nil {
			t.Fatalf("no idle measurement; errors %+v", rep.Errors)
		}
		if d.ConnectionsAfter-d.ConnectionsBefore != conns {
			t.Errorf("websocket_connections %d -> %d, want %d more", d.ConnectionsBefore, d.ConnectionsAfter, conns)
		}
		if !(d.BytesPerConn > 0) || d.RSSBefore <= 0 {
			t.Errorf("bytes per connection %v (RSS %d -> %d), want positive", d.BytesPerConn, d.RSSBefore, d.RSSAfter)
		}
	})
}

func TestConfigRefusesTooManyConnections(t *testing.T) {
	_, err := Run(context.Background(), Config{Conns: MaxConns + 1})
	if err == nil || !strings.Contains(err.Error(), "open file") {
		t.Fatalf("want a refusal naming the file limit, got %v", err)
	}
}

func TestHistogramBuckets(t *testing.T) {
	for _, v := range []int64{0, 1, 63, 64, 65, 100, 1000, 123_456, 5_000_000, 1 << 36, 1<<37 - 1} {
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		if got := bucketValue(i); math.Abs(float64(got-v)) > float64(v)/subCount+1 {
			t.Errorf("value %d: bucket %d reports %d, more than 1/%d off", v, i, got, subCount)
		}
	}
	for v := int64(1); v < 1<<37; v = v*3/2 + 1 {
		if bucketOf(v) < bucketOf(v-1) {
			t.Fatalf("buckets not monotonic at %d", v)
		}
	}
	if bucketOf(1<<40) != numBuckets-1 {
		t.Errorf("a huge value is not clamped into the last bucket")
	}

	var h histogram
	var m mergedHistogram
	for i := int64(1); i <= 1000; i++ {
		h.record(i * int64(time.Microsecond))
	}
	h.record(-5) // clocks: counted as zero
	m.add(&h)
	m.add(&histogram{}) // an idle connection's
	if m.n != 1001 || m.max != int64(time.Millisecond) {
		t.Fatalf("merged %d samples, max %d", m.n, m.max)
	}
	for q, want := range map[float64]float64{0.5: 500e3, 0.9: 900e3, 0.99: 990e3} {
		if got := float64(m.quantile(q)); math.Abs(got-want) > want*0.04 {
			t.Errorf("quantile %v = %v, want %v within 4%%", q, got, want)
		}
	}
	if got := m.quantile(1); got != m.max {
		t.Errorf("quantile 1 = %d, want the max %d", got, m.max)
	}
}

func TestParseTick(t *testing.T) {
	p := tickPayload(1234567890123, 42)
	data, ok := bytes.CutPrefix(p, []byte(`{"event":"bench.tick","data":`))
	if !ok {
		t.Fatalf("payload %s", p)
	}
	data = data[:len(data)-1] // the payload's closing brace
	for _, c := range []struct {
		in   string
		want tick
		ok   bool
	}{
		{string(data), tick{SentNS: 1234567890123, N: 42}, true},          // as published: the fast path
		{`{"n": 7, "sent_ns": -5}`, tick{SentNS: -5, N: 7}, true},         // any other layout
		{`{"sent_ns":1,"n":x}`, tick{}, false},                            // broken
		{`{"sent_ns":1,"n":2,"extra":true}`, tick{SentNS: 1, N: 2}, true}, // more fields
	} {
		got, ok := parseTick([]byte(c.in))
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseTick(%s) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// The hand parser of bench events agrees with the edge's encoder, and
// refuses what it does not know (which then goes through encoding/json).
func TestParseEventFrame(t *testing.T) {
	data := []byte(`{"sent_ns":123,"n":4}`)
	for _, e := range []*wire.Event{
		{Room: wire.MustRoom("bench:r7"), Seq: 99, Time: time.Now(), Name: tickEvent, Data: data},
		{Room: wire.MustRoom("bench:r7"), Seq: 1, Name: tickEvent, Data: data}, // no ts
	} {
		seq, got, ok := parseEventFrame(wire.EventFrame(e).Payload(), "bench:r7")
		if !ok || seq != e.Seq || string(got) != string(data) {
			t.Errorf("%s: seq %d, data %s, %v", wire.EventFrame(e).Payload(), seq, got, ok)
		}
	}
	other := wire.EventFrame(&wire.Event{Room: wire.MustRoom("bench:r70"), Seq: 5, Name: tickEvent, Data: data}).Payload()
	for _, p := range []string{string(other), `{"type":"pong","id":"x"}`, `{"type":"event","event":"bench.tick","room":"bench:r7","seq":x,"data":{}}`} {
		if _, _, ok := parseEventFrame([]byte(p), "bench:r7"); ok {
			t.Errorf("parsed %s as an event of bench:r7", p)
		}
	}
}
