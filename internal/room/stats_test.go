package room

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// Stats reports each registered room's members, head and tail, and the
// event rate between the last two samples; EventsDelivered counts every
// event once, whatever the room's size.
func TestStatsReportsRoomsAndRates(t *testing.T) {
	h := New(Options{Source: &flakySource{}, Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	defer h.Close()
	r := wire.MustRoom("pool:stats")
	rm, _ := h.acquire(r)
	rm.ready.Fire()
	rm.mu.Lock()
	rm.add(newRecorder())
	rm.add(newRecorder())
	rm.mu.Unlock()
	quiet, _ := h.acquire(wire.MustRoom("pool:a-quiet"))
	quiet.ready.Fire()

	start := time.Unix(1000, 0)
	h.Sample(start)
	for i := range 10 {
		h.deliver(rm, &wire.Event{Room: r, Seq: uint64(i + 1), Name: "worker.status_changed", Time: time.Now(), Data: []byte(`{}`)})
	}
	h.Sample(start.Add(2 * time.Second))
	if n := h.EventsDelivered(); n != 10 {
		t.Fatalf("events delivered %d, want 10 (one per event, not per member)", n)
	}
	st := h.Stats()
	if len(st) != 2 || st[0].Room != "pool:a-quiet" || st[1].Room != "pool:stats" {
		t.Fatalf("stats %+v, want the two rooms sorted by name", st)
	}
	got := st[1]
	if got.Members != 2 || got.Head != 10 || got.TailBytes <= 0 || got.EventsPerSecond != 5 {
		t.Fatalf("pool:stats %+v, want 2 members, head 10, a tail, 5 events/s", got)
	}
	if st[0].EventsPerSecond != 0 || st[0].Members != 0 {
		t.Fatalf("pool:a-quiet %+v, want no members, no events", st[0])
	}
	// Nothing more in the next interval: the rate falls to 0.
	h.Sample(start.Add(4 * time.Second))
	if st := h.Stats(); st[1].EventsPerSecond != 0 {
		t.Fatalf("rate %v after a quiet interval, want 0", st[1].EventsPerSecond)
	}
}
