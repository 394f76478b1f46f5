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

// syncChoices are the ways a server can sync that the benchmarks compare:
// NATS's default (every 2 minutes), every second, and before every
// acknowledgement.
var syncChoices = []struct {
	name     string
	always   bool
	interval time.Duration
}{
	{"sync=2m", false, 2 * time.Minute},
	{"sync=1s", false, time.Second},
	{"sync=always", true, 0},
}

// BenchmarkPublishSync measures acknowledged publishes a second into
// roomcast's stream (file storage in b.TempDir, one replica, a
// Nats-Msg-Id on each) with each of syncChoices: what --nats-sync costs.
// The guide (docs/deployment.md, "Durability") quotes it; run the choices side by
// side several times, since the machine's noise is larger than their
// differences but one:
//
//	go test -c -o /tmp/natsembed.test ./internal/natsembed/
//	cd internal/natsembed && for i in 1 2 3 4 5 6; do
//	  /tmp/natsembed.test -test.run '^$' -test.bench 'PublishSync$' -test.benchtime 2s
//	done
func BenchmarkPublishSync(b *testing.B) {
	for _, c := range syncChoices {
		b.Run(c.name, func(b *testing.B) {
			s, err := natsembed.Start(natsembed.Options{
				Listen: "127.0.0.1:-1", DataDir: b.TempDir(), ServerName: "bench",
				Logger: natstest.Quiet, SyncAlways: c.always, SyncInterval: c.interval,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown()
			publishInParallel(b, s.ClientURL(), 1)
		})
	}
}

// BenchmarkPublishSyncCluster is BenchmarkPublishSync on three servers
// with a stream of three replicas, as natsconf/cluster.conf runs. Here the
// three share one machine and one disk, so the figure is a floor.
func BenchmarkPublishSyncCluster(b *testing.B) {
	for _, c := range syncChoices {
		b.Run(c.name, func(b *testing.B) {
			cl := natstest.RunClusterWith(b, 3, func(o *natsembed.Options) {
				o.SyncAlways, o.SyncInterval = c.always, c.interval
			})
			publishInParallel(b, cl.URLs(), 3)
		})
	}
}

// publishInParallel makes b.N acknowledged publishes into a stream of
// replicas replicas, shared among benchPublishers connections, and reports
// them a second.
func publishInParallel(b *testing.B, url string, replicas int) {
	ctx := context.Background()
	buses := make([]*bus.Bus, benchPublishers)
	for i := range buses {
		bb, err := bus.New(natstest.Connect(b, url), bus.Options{Stream: bus.StreamConfig{Replicas: replicas}})
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
				if _, err := bb.Publish(ctx, room, benchPayload, wire.PublishOptions{MsgID: fmt.Sprintf("p%d-%d", p, n)}); err != nil {
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
