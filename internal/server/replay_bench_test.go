package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
)

// fillRoom stores n events in room with async publishes.
func fillRoom(b *testing.B, srv *server.Server, room string, n int) {
	b.Helper()
	fillRoomAt(b, srv.NATSURL(), room, n)
}

// fillRoomAt stores n events in room through the NATS at url and returns
// the sequence of the last.
func fillRoomAt(b *testing.B, url, room string, n int) uint64 {
	b.Helper()
	nc := natstest.Connect(b, url)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	subject := "roomcast.rooms." + room[:4] + "." + room[5:]
	var last jetstream.PubAckFuture
	for i := range n {
		if last, err = js.PublishAsync(subject, fmt.Appendf(nil, `{"event":"task.assigned","data":{"n":%d,"task_id":"t%d","pool_id":"p1"}}`, i, i)); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishing did not complete")
	}
	select {
	case ack := <-last.Ok():
		return ack.Sequence
	case err := <-last.Err():
		b.Fatal(err)
	}
	return 0
}

// BenchmarkReplay100k replays a 100,000-event room to one client from the
// start: events/s is the replay throughput.
func BenchmarkReplay100k(b *testing.B) {
	const n = 100_000
	srv := startNode(b, nil, func(c *config.Serve) { c.RetentionMaxPerRoom = n })
	fillRoom(b, srv, "pool:big", n)
	b.ResetTimer()
	for range b.N {
		c := dial(b, srv)
		since := uint64(0)
		res, before := subscribe(b, c, "pool:big", &since)
		if res.Replayed != n || len(before) != n {
			b.Fatalf("replayed %d (%d read), want %d", res.Replayed, len(before), n)
		}
		_ = c.Close()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSubscribe measures a subscribe's round trip: live only, and
// resuming 10 events back, on a room with members already (so neither pays
// for setting up the room's feed). The difference is the resume's extra
// latency.
func BenchmarkSubscribe(b *testing.B) {
	srv := startNode(b, nil, nil)
	fillRoom(b, srv, "pool:sub", 1000)
	keep := dial(b, srv)
	res, _ := subscribe(b, keep, "pool:sub", nil)
	for _, mode := range []string{"live", "resume10"} {
		b.Run(mode, func(b *testing.B) {
			c := dial(b, srv)
			for range b.N {
				var since *uint64
				if mode == "resume10" {
					s := res.Seq - 10
					since = &s
				}
				subscribe(b, c, "pool:sub", since)
			}
		})
	}
}
