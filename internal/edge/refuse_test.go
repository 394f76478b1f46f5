package edge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wheel"
)

// authEdge runs a Server that requires HMAC tokens (see serveEdge) and
// returns it, its address and a valid token.
func authEdge(t *testing.T, o Options) (*Server, string, string) {
	t.Helper()
	secret := []byte("a test secret of at least thirty-two bytes")
	keys, err := auth.HMACKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	if o.Auth, err = auth.NewVerifier(keys, auth.Options{}); err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewHMACSigner(secret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Sign("u-1", []string{"pool:read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	w := wheel.New(100 * time.Millisecond)
	t.Cleanup(w.Close) // after the server's cleanup, registered below
	o.Conn.Wheel = w
	s, addr := serveEdge(t, o)
	return s, addr, tok
}

// logLines is where a slog handler writes: each record is one Write (slog
// writes a record at once), handed to the test as it comes.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

var refusedLine = regexp.MustCompile(`msg="upgrade refused" reason=(\w+) .*held_back=(\d+)`)

// expectRefusedLines reads the log until it has one "upgrade refused" line
// for each of reasons, each with held back, failing on a second line of
// one reason; it returns the lines by reason.
func expectRefusedLines(t *testing.T, log logLines, heldBack string, reasons ...string) map[string]string {
	t.Helper()
	got := make(map[string]string)
	deadline := time.After(10 * time.Second)
	for len(got) < len(reasons) {
		select {
		case <-deadline:
			t.Fatalf("after 10s, refusal lines only for %v of %v", got, reasons)
		case line := <-log:
			m := refusedLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			if _, dup := got[m[1]]; dup || m[2] != heldBack {
				t.Fatalf("line %q: want one line per reason, held_back=%s", line, heldBack)
			}
			got[m[1]] = line
		}
	}
	return got
}

// Each reason of refusal, driven over a real socket, counts in
// roomcast_upgrades_refused_total (every reason exported at 0 from the
// start) and is logged at info once per interval with the count held back,
// never with the query of the request (it may carry a token); an origin
// refusal names the setting that would allow it.
func TestRefusedUpgradesAreCountedAndLogged(t *testing.T) {
	drained := make(chan struct{})
	var draining atomic.Bool
	t.Cleanup(func() { // after the server's cleanup, which ends the drain below
		if draining.Load() {
			<-drained
		}
	})
	var clock atomic.Int64
	clock.Store(time.Unix(1000, 0).UnixNano())
	log := make(logLines, 10000)
	m := metrics.NewUnregistered()
	s, addr, tok := authEdge(t, Options{
		Logger: slog.New(slog.NewTextHandler(log, nil)), Metrics: m,
		Now:            func() time.Time { return time.Unix(0, clock.Load()) },
		MaxConnections: 4, MaxUnauthenticated: 2, MaxUnauthenticatedPerSource: 1,
		HeadTimeout: 500 * time.Millisecond, AllowedOrigins: []string{"https://dash.example"},
		AuthTimeout: time.Minute, // the token-less connections below stay for the whole test
	})
	if n := testutil.CollectAndCount(m.Refused); n != len(metrics.RefusedReasons()) {
		t.Fatalf("%d series of refusals before any, want one per reason at 0", n)
	}
	base := "ws://" + addr
	bearer := http.Header{"Authorization": {"Bearer " + tok}}
	for _, c := range []struct {
		from string
		h    http.Header
	}{{"127.0.0.2", nil}, {"127.0.0.3", nil}, {"127.0.0.4", bearer}, {"127.0.0.5", bearer}} {
		nc, err := dialWS(c.from, base+"/", c.h, 10*time.Second)
		if err != nil {
			t.Fatalf("connection from %s: %v", c.from, err)
		}
		t.Cleanup(func() { nc.Close() })
	}
	// The node is full, and so are the token-less budget and 127.0.0.2's share.
	drive := map[string]func() error{
		metrics.RefusedOrigin: func() error {
			return refused(base+"/ws?token=secret-in-query", http.Header{"Origin": {"https://evil.example"}}, "127.0.0.6", 403)
		},
		metrics.RefusedBadRequest:      func() error { return refused(base+"/other?token=secret-in-query", nil, "127.0.0.6", 404) },
		metrics.RefusedUnauthenticated: func() error { return refused(base+"/", nil, "127.0.0.6", 503) },
		metrics.RefusedSource:          func() error { return refused(base+"/", nil, "127.0.0.2", 503) },
		metrics.RefusedCapacity:        func() error { return refused(base+"/", bearer, "127.0.0.6", 503) },
		metrics.RefusedTimeout: func() error {
			expectClosedByServer(t, startSlow(t, "127.0.0.6", addr))
			return nil
		},
	}
	var reasons []string
	for reason := range drive {
		reasons = append(reasons, reason)
	}
	driveAll := func(times int, want float64) {
		t.Helper()
		for reason, f := range drive {
			for range times {
				if err := f(); err != nil {
					t.Fatalf("%s: %v", reason, err)
				}
			}
			c := m.Refused.WithLabelValues(reason)
			waitFor(t, reason+" refusals counted", func() bool { return testutil.ToFloat64(c) == want })
		}
	}

	driveAll(2, 2)
	lines := expectRefusedLines(t, log, "0", reasons...)
	if o := lines[metrics.RefusedOrigin]; !strings.Contains(o, "origin=https://evil.example") || !strings.Contains(o, "--allowed-origins https://evil.example") {
		t.Errorf("origin refusal line %q: want the origin and the setting that allows it", o)
	}
	clock.Add(int64(DefaultRefusalLogInterval + time.Second))
	driveAll(1, 3)
	for _, line := range expectRefusedLines(t, log, "1", reasons...) {
		lines["again"] += line
	}

	draining.Store(true)
	go func() {
		defer close(drained)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Drain(ctx, 0) // returns once the cleanup closes the listener
	}()
	waitFor(t, "the drain started", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.draining })
	if err := refused(base+"/", bearer, "127.0.0.6", 503); err != nil {
		t.Fatalf("draining: %v", err)
	}
	lines["draining"] = expectRefusedLines(t, log, "0", metrics.RefusedDraining)[metrics.RefusedDraining]
	for _, line := range lines {
		if strings.Contains(line, "secret") {
			t.Errorf("a refusal line has the request's query: %q", line)
		}
	}
}

// refused reports an error unless an upgrade from from to url with the
// header h is refused with status.
func refused(url string, h http.Header, from string, status int) error {
	nc, err := dialWS(from, url, h, 10*time.Second)
	if err == nil {
		nc.Close()
		return errors.New("upgraded")
	}
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != status {
		return err
	}
	return nil
}
