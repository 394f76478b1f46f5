package main

import (
	"context"
	"strings"
	"testing"

	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/servertest"
)

// The README's five-minute tour: tail a pool's room, run the demo against the
// node's NATS; tail prints the demo's events, and the demo reports what it
// published.
func TestDemoReachesATailingClient(t *testing.T) {
	srv := servertest.Start(t, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb servertest.SyncBuffer
	done := make(chan int)
	go func() { done <- runWith(ctx, &out, &errb, "", "tail", "--url", servertest.WSURL(srv), "pool:p1") }()
	waitOutput(t, &errb, "subscribed to pool:p1")

	code, stdout, stderr := runCmd(t.Context(), "", "demo", "--nats", srv.NATSURL(), "--rate", "2000", "--events", "200", "--pools", "1", "--workers", "3")
	if code != 0 {
		t.Fatalf("demo: exit %d, stderr %q", code, stderr)
	}
	for _, name := range []string{events.WorkerStatusChanged, events.PoolStatusChanged, events.PoolScaling} {
		if !strings.Contains(stdout, name) {
			t.Fatalf("the summary %q does not count %s", stdout, name)
		}
	}
	waitOutput(t, &out, "pool:p1  #")
	waitOutput(t, &out, events.PoolScaling)
	waitOutput(t, &out, events.WorkerStatusChanged)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("tail exit %d: %s", code, errb.String())
	}
}

// --duration ends the demo, as a success, and the summary says what
// publishing retried and gave up.
func TestDemoStopsAfterItsDuration(t *testing.T) {
	srv := servertest.Start(t, nil, nil)
	code, stdout, stderr := runCmd(t.Context(), "", "demo", "--nats", srv.NATSURL(), "--rate", "200", "--duration", "300ms")
	if code != 0 {
		t.Fatalf("demo: exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{events.PoolStatusChanged, "retried publishes          0", "given up                   0"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("the summary %q lacks %q", stdout, want)
		}
	}
	if code, _, stderr := runCmd(t.Context(), "", "demo", "--duration", "-1s"); code != 2 || !strings.Contains(stderr, "--duration") {
		t.Fatalf("--duration -1s: exit %d, stderr %q; want a usage error naming it", code, stderr)
	}
}
