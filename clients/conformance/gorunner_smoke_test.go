package conformance_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// The Go runner against an in-process node: ready first, then connected,
// the subscribe response (no state: -1), an event with its n; it returns
// nil when its context ends.
func TestGoRunnerReportsRecords(t *testing.T) {
	srv := servertest.Start(t, nil, nil)
	var mu sync.Mutex
	var recs []record
	emit := func(r record) {
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
	}
	snapshot := func() []record {
		mu.Lock()
		defer mu.Unlock()
		return append([]record(nil), recs...)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- runGo(ctx, runnerConfig{URLs: []string{servertest.WSURL(srv)}, Rooms: []roomConfig{{Room: "pool:smoke", History: true}}}, emit)
	}()
	nc := natstest.Connect(t, srv.NATSURL())
	natstest.WaitFor(t, 30*time.Second, func() error {
		if r := snapshot(); len(r) < 3 || r[2].Kind != "subscribed" {
			return fmt.Errorf("records %+v", r)
		}
		return nil
	})
	if err := nc.PublishMsg(&nats.Msg{Subject: "roomcast.rooms.pool.smoke", Data: []byte(`{"event":"e","data":{"n":7}}`)}); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 30*time.Second, func() error {
		if r := snapshot(); len(r) < 4 {
			return fmt.Errorf("records %+v", r)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runGo: %v", err)
	}
	r := snapshot()
	if r[0].Kind != "ready" || r[1].Notice != "connected" || r[2].State != -1 || r[2].Room != "pool:smoke" ||
		r[3].Kind != "event" || r[3].N != 7 || r[3].Seq == 0 {
		t.Fatalf("records %+v", r)
	}
}
