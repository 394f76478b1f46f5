package demo_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/demo"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
)

// The demo keeps going through a restart of the NATS it publishes to: it
// retries what NATS could not take, does not end, and when it has
// published all its events each is stored exactly once (a try stored
// before its acknowledgement was lost is not stored again on its retry).
func TestDemoRidesOutANATSRestart(t *testing.T) {
	ns := natstest.RunServer(t)
	b := bustest.On(t, natstest.Connect(t, ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond)))
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	rs := events.NewRetrying(b, events.RetryOptions{Attempt: 300 * time.Millisecond, MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond})
	var stats demo.Stats
	cfg := demo.Config{Pools: 2, Workers: 3, Workflows: 2, Rate: 500, Events: 400, Seed: 3}
	done := make(chan error, 1)
	go func() { done <- demo.Run(t.Context(), cfg, events.NewPublisher(rs), &stats) }()

	natstest.WaitFor(t, 20*time.Second, func() error {
		if stats.Total() < 50 {
			return errors.New("fewer than 50 events published")
		}
		return nil
	})
	addr, dir := ns.Addr().String(), ns.JetStreamConfig().StoreDir
	ns.Shutdown()
	ns.WaitForShutdown()
	natstest.WaitFor(t, 20*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("the demo ended while NATS was down: %v", err)
		default:
		}
		if rs.Stats().Retries < 3 {
			return errors.New("fewer than 3 retries while NATS is down")
		}
		return nil
	})
	natstest.RunServerAt(t, addr, dir)

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo across the restart: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the demo had published %d of %d events 60 s after NATS came back", stats.Total(), cfg.Events)
	}
	if st := rs.Stats(); st.Recovered == 0 || stats.GaveUp() != 0 {
		t.Fatalf("retry stats %+v, %d given up: want an event stored after retries, none given up", st, stats.GaveUp())
	}
	if stats.Total() != cfg.Events {
		t.Fatalf("published %d, want %d", stats.Total(), cfg.Events)
	}
	stored := map[string]int{}
	for _, r := range []string{"pool:p1", "pool:p2", "workflow:w1", "workflow:w2"} {
		replay(t, b, r, func(name string, _ map[string]any) { stored[name]++ })
	}
	for name, n := range stats.Counts() {
		if stored[name] != n {
			t.Errorf("%s: counted %d, stored %d", name, n, stored[name])
		}
	}
}
