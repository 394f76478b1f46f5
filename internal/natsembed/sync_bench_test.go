package natsembed_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natsembed"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// benchPublishers publish at once, each on its own connection, as a few
// pool workers do.
const benchPublishers = 4

// benchPayload is an event of the usual size (about 150 bytes).
var benchPayload = []byte(`{"event":"worker.status_changed","data":{"worker_id":"w-000042","status":"busy","pool_id":"p1","task_id":"t-0000000017","since":"2026-12-06T21:00:00Z"}}`)

// BenchmarkPublishSync measures acknowledged publishes a second into
// roomcast's stream (file storage in b.TempDir, one replica, a
// Nats-Msg-Id on each) with each way the embedded server can sync: NATS's
// default (every 2 minutes), every second, and before every
// acknowledgement. It is what --nats-sync costs; the guide quotes it.
//
//	go test -run '^$' -bench PublishSync -count 6 ./internal/natsembed/
func BenchmarkPublishSync(b *testing.B) {
	for _, c := range []struct {
		name     string
		always   bool
		interval time.Duration
	}{
		{"sync=2m", false, 2 * time.Minute},
		{"sync=1s", false, time.Second},
		{"sync=always", true, 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := natsembed.Start(natsembed.Options{
				Listen: "127.0.0.1:-1", DataDir: b.TempDir(), ServerName: "bench",
				Logger: natstest.Quiet, SyncAlways: c.always, SyncInterval: c.interval,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown()
			publishInParallel(b, s.ClientURL())
		})
	}
}

// publishInParallel makes b.N acknowledged publishes, shared among
// benchPublishers connections, and reports them a second.
func publishInParallel(b *testing.B, url string) {
	ctx := context.Background()
	buses := make([]*bus.Bus, benchPublishers)
	for i := range buses {
		bb, err := bus.New(natstest.Connect(b, url), bus.Options{})
		if err != nil {
			b.Fatal(err)
		}
		buses[i] = bb
	}
	if err := buses[0].EnsureStream(ctx); err != nil {
		b.Fatal(err)
	}
	room, err := wire.ParseRoom("pool:p1")
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, benchPublishers)
	b.ResetTimer()
	start := time.Now()
	for p, bb := range buses {
		wg.Go(func() {
			for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
				if _, err := bb.Publish(ctx, room, benchPayload, fmt.Sprintf("p%d-%d", p, n)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
}
