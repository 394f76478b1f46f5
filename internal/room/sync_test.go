package room

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// seqMember records the sequences it is sent, without a bound.
type seqMember struct {
	mu   sync.Mutex
	seqs []uint64
}

func (m *seqMember) add(f *wire.Frame) bool {
	m.mu.Lock()
	m.seqs = append(m.seqs, f.Seq)
	m.mu.Unlock()
	return true
}
func (m *seqMember) Enqueue(f *wire.Frame) bool                  { return m.add(f) }
func (m *seqMember) Force(f *wire.Frame) bool                    { return m.add(f) }
func (m *seqMember) Send(_ context.Context, f *wire.Frame) error { m.add(f); return nil }
func (m *seqMember) CanTake(int, int) bool                       { return true }
func (m *seqMember) WaitRoom(context.Context, int, int) error    { return nil }
func (m *seqMember) Close(ws.StatusCode, string)                 {}

// waitFor waits until the member has want, in order, and fails on anything
// else.
func (m *seqMember) waitFor(t *testing.T, want []uint64) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		for i, s := range m.seqs {
			if i >= len(want) || s != want[i] {
				t.Fatalf("event %d is seq %d, want %v...: a gap, a duplicate or out of order", i, s, want[min(i, len(want)-1)])
			}
		}
		if len(m.seqs) < len(want) {
			return fmt.Errorf("%d of %d events", len(m.seqs), len(want))
		}
		return nil
	})
}

// streamCalls is how many requests the bus made to JetStream.
func streamCalls(m *metrics.Metrics) float64 {
	n := 0.0
	for _, kind := range metrics.StreamKinds() {
		n += testutil.ToFloat64(m.StreamCalls.WithLabelValues(kind))
	}
	return n
}

// The last events of a room never reach the node live (here its live
// subscription is simply gone) and no later event reveals the gap: the
// anti-entropy check delivers them anyway.
func TestLostTailIsDeliveredWithoutALaterEvent(t *testing.T) {
	f := newFixtureWith(t, bus.StreamConfig{}, func(o *Options) { o.AntiEntropyInterval = 200 * time.Millisecond })
	r := wire.MustRoom("pool:tail")
	m := f.liveMember(t, r)
	if err := f.room(r).unsubscribe(); err != nil {
		t.Fatal(err)
	}
	s2, s3 := f.publish(t, r, 2), f.publish(t, r, 3)
	if a, b := m.next(t), m.next(t); a != s2 || b != s3 {
		t.Fatalf("anti-entropy delivered %d %d, want %d %d", a, b, s2, s3)
	}
}

// A room whose feed is held up long enough for NATS to drop its live
// messages (a slow consumer) syncs from the stream at once: every event
// arrives once and in order, the last ones included, with no periodic
// check to help.
func TestDroppedLiveMessagesAreFetched(t *testing.T) {
	f := newFixtureWith(t, bus.StreamConfig{}, func(o *Options) { o.AntiEntropyInterval = time.Hour })
	r := wire.MustRoom("pool:slow")
	m := &seqMember{}
	f.join(t, r, m)
	rm := f.room(r)

	rm.feedMu.Lock() // hold the feed, as a long backfill would
	var release sync.Once
	unhold := func() { release.Do(rm.feedMu.Unlock) }
	defer unhold() // a failing test must not leave the hub's Close waiting
	const n = 6000 // more than a room's inbox keeps
	want := make([]uint64, 0, n)
	// Acknowledgements are awaited a batch at a time: nats.go stalls past
	// 4,000 outstanding asynchronous publishes.
	const batch = 1000
	for start := 0; start < n; start += batch {
		acks := make([]jetstream.PubAckFuture, 0, batch)
		for i := start; i < start+batch; i++ {
			a, err := f.js.PublishAsync(f.bus.Subjects().Room(r), []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d}}`, i)))
			if err != nil {
				t.Fatal(err)
			}
			acks = append(acks, a)
		}
		for _, a := range acks {
			select {
			case ack := <-a.Ok():
				want = append(want, ack.Sequence)
			case err := <-a.Err():
				t.Fatal(err)
			case <-time.After(20 * time.Second):
				t.Fatal("no publish ack")
			}
		}
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		if testutil.ToFloat64(f.m.LiveDrops) == 0 {
			return fmt.Errorf("the live subscription has not dropped anything yet")
		}
		return nil
	})
	unhold()
	m.waitFor(t, want)
}

// While NATS is down, however many rooms there are, the node sends one
// request per attempt, not one per room, and the attempts back off; once
// NATS is back the rooms work again.
func TestOutageRetriesAreBatchedAndBackOff(t *testing.T) {
	f := newFixtureWith(t, bus.StreamConfig{}, func(o *Options) { o.AntiEntropyInterval = 100 * time.Millisecond })
	const rooms = 200
	members := make([]*seqMember, rooms)
	for i := range rooms {
		members[i] = &seqMember{}
		f.join(t, wire.MustRoom(fmt.Sprintf("pool:o%d", i)), members[i])
	}
	addr, dir := f.ns.Addr().String(), f.ns.JetStreamConfig().StoreDir
	f.ns.Shutdown()
	f.ns.WaitForShutdown()

	before := streamCalls(f.m)
	f.hub.Resync() // as a reconnection would
	const outage = 3 * time.Second
	time.Sleep(outage) // the outage lasts: what is measured is what it costs
	calls := streamCalls(f.m) - before
	// A check every 100 ms would make 30 requests, and checking each room
	// 6,000. Backing off from 50 ms doubles the waits: about 6.
	if calls > 10 {
		t.Fatalf("%v requests during a %s outage with %d rooms, want at most 10", calls, outage, rooms)
	}

	ns := natstest.RunServerAt(t, addr, dir)
	pub := natstest.Connect(t, ns.ClientURL())
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 20*time.Second, func() error { // the node's own connection is back
		if !f.bus.Connected() {
			return fmt.Errorf("not reconnected")
		}
		return nil
	})
	for i := range rooms {
		ack, err := js.Publish(t.Context(), f.bus.Subjects().Room(wire.MustRoom(fmt.Sprintf("pool:o%d", i))), []byte(`{"event":"e"}`))
		if err != nil {
			t.Fatal(err)
		}
		members[i].waitFor(t, []uint64{ack.Sequence})
	}
	t.Logf("%v requests during the outage", calls)
}

func TestBackoffGrowsWithJitterToItsCeiling(t *testing.T) {
	base, ceiling := 100*time.Millisecond, 2*time.Second
	if d := backoff(0, base, ceiling); d != 0 {
		t.Fatalf("attempt 0 waits %s, want 0", d)
	}
	for attempt, mid := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 6: ceiling, 40: ceiling} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := backoff(attempt, base, ceiling)
			if d < mid/2 || d >= mid*3/2 {
				t.Fatalf("attempt %d waits %s, want within [%s, %s)", attempt, d, mid/2, mid*3/2)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("attempt %d: only %d distinct waits in 50: no jitter", attempt, len(seen))
		}
	}
}

// A resume from within the room's tail is served from memory: no request
// to the stream. One from further back reads the stream up to where the
// tail begins, one request per batch; both get every event once.
func TestResumeFromTheTailCostsNoRequest(t *testing.T) {
	f := newFixtureWith(t, bus.StreamConfig{}, func(o *Options) { o.TailEvents = 8 })
	r := wire.MustRoom("pool:tail")
	live := f.liveMember(t, r)
	var seqs []uint64
	for i := range 20 {
		seqs = append(seqs, f.publish(t, r, i))
	}
	for range seqs {
		live.next(t)
	}

	before := streamCalls(f.m)
	near := &seqMember{}
	var j Joined
	if err := f.hub.Join(t.Context(), r, near, &seqs[14], func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	near.waitFor(t, seqs[15:])
	if calls := streamCalls(f.m) - before; calls != 0 || !j.Recovered || j.Replayed != 5 {
		t.Fatalf("resume within the tail: %v requests, joined %+v; want 0 requests, recovered, 5 replayed", calls, j)
	}

	before = streamCalls(f.m)
	far := &seqMember{}
	if err := f.hub.Join(t.Context(), r, far, &seqs[1], func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	far.waitFor(t, seqs[2:])
	if calls := streamCalls(f.m) - before; calls != 1 || !j.Recovered || j.Replayed != 18 {
		t.Fatalf("resume beyond the tail: %v requests, joined %+v; want 1 request, recovered, 18 replayed", calls, j)
	}
}
