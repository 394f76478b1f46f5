package bus

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// BenchmarkKeyedPublish: what keeping the state costs a publisher. Each
// op starts a NATS server (not timed) and publishes 50,000 keyed events
// with async JetStream publishes, round robin over 10 rooms of 1,000 keys
// each, on a bus whose keeper runs ("keeper-on") or not ("keeper-off";
// the state stream exists either way). pub-events/s is from the first
// publish to the last acknowledgement. With the keeper: ms-catchup is
// from the last acknowledgement until the keeper's position reaches the
// last event, kept-events/s is the events over the time from the first
// publish to that, and max-lag-events the highest lag the keeper
// reported (roomcast_state_keeper_lag_events, read every 2,048 publishes).
//
//	go test -run '^$' -bench KeyedPublish -benchtime 1x -count 6 ./internal/bus/
func BenchmarkKeyedPublish(b *testing.B) {
	const n, rooms, keys = 50_000, 10, 1_000
	for _, keeping := range []bool{false, true} {
		name := "keeper-off"
		if keeping {
			name = "keeper-on"
		}
		b.Run(name, func(b *testing.B) {
			var published, kept, catchup time.Duration
			var maxLag float64
			for range b.N {
				b.StopTimer()
				ns := natstest.RunServer(b)
				bus := stateBus(b, natstest.Connect(b, ns.ClientURL()), StreamConfig{MaxMsgsPerRoom: n}, StateConfig{MaxKeysPerRoom: keys})
				stop := func() {}
				if keeping {
					stop = runKeeper(b, bus, "n1")
					natstest.WaitFor(b, 20*time.Second, func() error {
						if testutil.ToFloat64(bus.m.KeeperActive) != 1 {
							return fmt.Errorf("keeper not active")
						}
						return nil
					})
				}
				js, err := jetstream.New(natstest.Connect(b, ns.ClientURL()), jetstream.WithPublishAsyncMaxPending(4096))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				last, lag := publishKeyedAsync(b, js, bus, n, rooms, keys)
				acked := time.Now()
				published += acked.Sub(start)
				maxLag = max(maxLag, lag)
				if keeping {
					waitKeptBench(b, bus, last)
					kept += time.Since(start)
					catchup += time.Since(acked)
				}
				b.StopTimer()
				stop()
			}
			ops := float64(b.N)
			b.ReportMetric(n*ops/published.Seconds(), "pub-events/s")
			if keeping {
				b.ReportMetric(n*ops/kept.Seconds(), "kept-events/s")
				b.ReportMetric(float64(catchup.Milliseconds())/ops, "ms-catchup")
				b.ReportMetric(maxLag, "max-lag-events")
			}
		})
	}
}

// publishKeyedAsync publishes n keyed events through js, round robin over
// rooms rooms of keys keys, in steps of 2,048 within the pending limit;
// it returns the last event's seq and the highest keeper lag bus
// reported at the steps.
func publishKeyedAsync(b *testing.B, js jetstream.JetStream, bus *Bus, n, rooms, keys int) (uint64, float64) {
	b.Helper()
	var last jetstream.PubAckFuture
	var lag float64
	for i := range n {
		r, k := i%rooms, (i/rooms)%keys
		m := nats.NewMsg(bus.subj.Room(wire.MustRoom(fmt.Sprintf("pool:p%d", r))))
		m.Data = fmt.Appendf(nil, `{"event":"worker.status_changed","data":{"worker_id":"w%d","status":"busy","n":%d}}`, k, i)
		m.Header.Set(wire.HeaderKey, fmt.Sprintf("worker:w%d", k))
		var err error
		if last, err = js.PublishMsgAsync(m, jetstream.WithStallWait(30*time.Second)); err != nil {
			b.Fatal(err)
		}
		if i%2048 == 2047 {
			awaitAcks(b, js)
			lag = max(lag, testutil.ToFloat64(bus.m.KeeperLag))
		}
	}
	awaitAcks(b, js)
	select {
	case ack := <-last.Ok():
		return ack.Sequence, lag
	case err := <-last.Err():
		b.Fatal(err)
	}
	return 0, lag
}

// awaitAcks waits until js has every acknowledgement it waits for.
func awaitAcks(b *testing.B, js jetstream.JetStream) {
	b.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishing did not complete")
	}
}

// waitKeptBench is waitKept with a benchmark's deadline.
func waitKeptBench(b *testing.B, bus *Bus, seq uint64) {
	b.Helper()
	natstest.WaitFor(b, 2*time.Minute, func() error {
		rec, _, found, err := bus.readPos(b.Context())
		if err != nil || !found || rec.Seq < seq {
			return fmt.Errorf("keeper at %d (found %v, %v), want %d", rec.Seq, found, err, seq)
		}
		return nil
	})
}
