package room

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// countingMember is the cheapest possible member, so the benchmark measures
// the room's own fan-out path; conn's BenchmarkEnqueue measures a real
// connection's share of each delivery.
type countingMember struct{ n atomic.Int64 }

func (c *countingMember) Enqueue(*wire.Frame) bool                 { c.n.Add(1); return true }
func (c *countingMember) Force(*wire.Frame) bool                   { c.n.Add(1); return true }
func (c *countingMember) CanTake(int, int) bool                    { return true }
func (c *countingMember) WaitRoom(context.Context, int, int) error { return nil }
func (c *countingMember) Close(ws.StatusCode, string)              {}
func (c *countingMember) Send(context.Context, *wire.Frame) error {
	c.n.Add(1)
	return nil
}

// BenchmarkFanOut delivers one event to every member of a room: ns/op is
// per event; ns/delivery and allocs are what the fan-out costs per member.
func BenchmarkFanOut(b *testing.B) {
	for _, members := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			h := New(Options{Source: &flakySource{}, Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
			defer h.Close()
			r := wire.MustRoom("pool:bench")
			rm := newRoom(r, h.m)
			rm.ready.Fire()
			for range members {
				rm.add(&countingMember{})
			}
			ev := &wire.Event{Room: r, Name: "worker.status_changed", Time: time.Now(),
				Data: []byte(`{"worker_id":"w1","status":"busy","pool_id":"p1"}`)}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				ev.Seq = uint64(i + 1)
				h.deliver(rm, ev)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*members), "ns/delivery")
		})
	}
}
