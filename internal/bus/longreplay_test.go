package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// Long replays read through a consumer. These tests lower the length
// that makes a replay long and the consumer's batch, so that a room of a
// few hundred events is read in several pulls, one read ahead.
const (
	testLongReplay = 100
	testPullBatch  = 64
)

// longBus is newBus with the long replay threshold and the pull batch
// lowered, and no direct gets before the consumer.
func longBus(t *testing.T, sc StreamConfig) *Bus {
	t.Helper()
	b := newBus(t, sc)
	b.longReplay, b.pullBatch, b.directFirst = testLongReplay, testPullBatch, 0
	return b
}

// consumerCalls is how many requests of kind the long replays made.
func consumerCalls(b *Bus, kind string) float64 {
	return testutil.ToFloat64(b.m.StreamCalls.WithLabelValues(kind))
}

// noConsumerLeft waits until the event stream has no consumer: a
// clustered stream's leader may count a deleted one for a moment longer.
func noConsumerLeft(t *testing.T, b *Bus) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		st, err := b.js.Stream(context.Background(), b.stream.Name)
		if err != nil {
			return err
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return err
		}
		if n := info.State.Consumers; n != 0 {
			return fmt.Errorf("%d consumers left on the stream (%v deleted)", n, consumerCalls(b, metrics.StreamConsumerDelete))
		}
		return nil
	})
}

// replaySeqs replays (after, until] of r and returns the sequences
// delivered, checking each is r's and comes after the one before.
func replaySeqs(t *testing.T, b *Bus, r wire.Room, after, until uint64, each func(n int)) ([]uint64, bool, error) {
	t.Helper()
	var got []uint64
	intact, err := b.Replay(t.Context(), r, after, until, func(ev *wire.Event) error {
		if ev.Room != r || ev.Err != nil || ev.Time.IsZero() {
			t.Fatalf("replayed %+v", ev)
		}
		if n := len(got); n > 0 && ev.Seq <= got[n-1] {
			t.Fatalf("seq %d after %d", ev.Seq, got[n-1])
		}
		got = append(got, ev.Seq)
		if each != nil {
			each(len(got))
		}
		return nil
	})
	return got, intact, err
}

// A long replay delivers every event of the room in the range, in order,
// once, intact, through a consumer that it deletes when done; another
// room's events in between are not delivered.
func TestLongReplayIsCompleteAndInOrder(t *testing.T) {
	b := longBus(t, StreamConfig{})
	r, other := wire.MustRoom("pool:long"), wire.MustRoom("pool:other")
	var seqs []uint64
	for i := range 5*testPullBatch + 7 {
		seqs = append(seqs, b.mustPublish(t, r, i))
		if i%3 == 0 {
			b.mustPublish(t, other, i)
		}
	}
	for _, after := range []uint64{0, seqs[4]} {
		until := seqs[len(seqs)-3]
		got, intact, err := replaySeqs(t, b, r, after, until, nil)
		want := seqs[:len(seqs)-2]
		if after > 0 {
			want = seqs[5 : len(seqs)-2]
		}
		if err != nil || !intact || len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != until {
			t.Fatalf("after %d: replayed %d events (intact %v, %v), want %d from %d to %d", after, len(got), intact, err, len(want), want[0], until)
		}
	}
	if c, p := consumerCalls(b, metrics.StreamConsumerCreate), consumerCalls(b, metrics.StreamConsumerPull); c != 2 || p < 10 {
		t.Fatalf("%v consumers made and %v pulls for two long replays: not read through consumers", c, p)
	}
	if d := consumerCalls(b, metrics.StreamDirectGet); d != 0 {
		t.Fatalf("%v direct gets: the consumer did not read the whole range", d)
	}
	noConsumerLeft(t, b)
}

// A short replay stays on direct gets: no consumer.
func TestShortReplayUsesNoConsumer(t *testing.T) {
	b := longBus(t, StreamConfig{})
	r := wire.MustRoom("pool:short")
	var last uint64
	for i := range testLongReplay - 1 {
		last = b.mustPublish(t, r, i)
	}
	got, intact, err := replaySeqs(t, b, r, 0, last, nil)
	if err != nil || !intact || len(got) != testLongReplay-1 {
		t.Fatalf("replayed %d events (intact %v, %v)", len(got), intact, err)
	}
	if c := consumerCalls(b, metrics.StreamConsumerCreate); c != 0 {
		t.Fatalf("%v consumers made for a short replay", c)
	}
}

// Retention that removes a long replay's head, before it starts or while
// it reads, is reported: not intact. The events delivered are still in
// order, once each, up to the end.
func TestLongReplayReportsRemovals(t *testing.T) {
	const keep = 6 * testPullBatch
	b := longBus(t, StreamConfig{MaxMsgsPerRoom: keep})
	r := wire.MustRoom("pool:longretention")
	var seqs []uint64
	for i := range keep {
		seqs = append(seqs, b.mustPublish(t, r, i))
	}
	// Nothing removed: intact.
	got, intact, err := replaySeqs(t, b, r, seqs[2], seqs[len(seqs)-1], nil)
	if err != nil || !intact || len(got) != keep-3 {
		t.Fatalf("nothing removed: replayed %d of %d (intact %v, %v)", len(got), keep-3, intact, err)
	}
	// While it reads: after its first event, the room's oldest 3 batches
	// go (more events stored), past what was read ahead.
	start, until := seqs[2], seqs[len(seqs)-1]
	got, intact, err = replaySeqs(t, b, r, start, until, func(n int) {
		if n == 1 {
			for i := range 3 * testPullBatch {
				seqs = append(seqs, b.mustPublish(t, r, i))
			}
		}
	})
	if err != nil || intact || len(got) == 0 || got[len(got)-1] != until {
		t.Fatalf("removed while read: replayed %d ending at %v (intact %v, %v), want not intact, ending at %d", len(got), got[len(got)-1:], intact, err, until)
	}
	if len(got) >= keep-3 {
		t.Fatalf("removed while read: all %d events delivered: the removal came too late to test anything", len(got))
	}
	// Before it starts: its head is gone.
	got, intact, err = replaySeqs(t, b, r, seqs[0], seqs[len(seqs)-1], nil)
	if err != nil || intact || len(got) != keep {
		t.Fatalf("head removed before: replayed %d of %d (intact %v, %v), want not intact", len(got), keep, intact, err)
	}
	noConsumerLeft(t, b)
}

// A long replay whose client leaves stops, and deletes its consumer: none
// is left on the stream.
func TestLongReplayCancelledLeavesNoConsumer(t *testing.T) {
	b := longBus(t, StreamConfig{})
	r := wire.MustRoom("pool:longcancel")
	var last uint64
	for i := range 4 * testPullBatch {
		last = b.mustPublish(t, r, i)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := 0
	_, err := b.Replay(ctx, r, 0, last, func(*wire.Event) error {
		if n++; n == testPullBatch+5 {
			cancel() // the client left, mid-batch, with the next one asked for
		}
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled replay: %v after %d events", err, n)
	}
	if c := consumerCalls(b, metrics.StreamConsumerCreate); c != 1 {
		t.Fatalf("%v consumers made: not a long replay", c)
	}
	noConsumerLeft(t, b)
	if held := b.reads.held(); held != 0 {
		t.Fatalf("%d read slots still held", held)
	}
}

// A long replay ends with an error, within its context, when NATS goes
// away in the middle of it: never a silent gap.
func TestLongReplayEndsWhenNATSGoesAway(t *testing.T) {
	checkReplayThroughOutage(t, "pool:longoutage", 4*testPullBatch, func(b *Bus) {
		b.longReplay, b.pullBatch, b.directFirst = testLongReplay, testPullBatch, 0
	})
}

// A long replay on a node whose direct gets a lagging replica answers
// gives every event: the consumer reads the stream itself, not the
// replica, and a direct get after it would find the rest through the
// leader.
func TestLongReplayWithALaggingReplicaIsComplete(t *testing.T) {
	b := longBus(t, StreamConfig{})
	r := wire.MustRoom("pool:longlag")
	var seqs []uint64
	for i := range 4*testPullBatch + 10 {
		seqs = append(seqs, b.mustPublish(t, r, i))
	}
	lagReplica(t, b, seqs[testPullBatch])
	got, intact, err := replaySeqs(t, b, r, seqs[9], seqs[len(seqs)-1], nil)
	if err != nil || !intact {
		t.Fatalf("replayed %d events (intact %v, %v)", len(got), intact, err)
	}
	sameSeqs(t, got, seqs[10:])
	if c := consumerCalls(b, metrics.StreamConsumerCreate); c != 1 {
		t.Fatalf("%v consumers made: not a long replay", c)
	}
}

// In a cluster, a long replay by a node connected to a follower of the
// stream is complete and leaves no consumer: the consumer (one replica,
// in memory) is made through the meta leader and reads the stream
// leader's history, and the leader checks are the stream leader's.
func TestLongReplayInAClusterIsComplete(t *testing.T) {
	c := natstest.RunCluster(t, 3)
	setup := longBusOn(t, c.Servers[0].ClientURL())
	r := wire.MustRoom("pool:longcluster")
	var seqs []uint64
	for i := range 3*testPullBatch + 5 {
		seqs = append(seqs, setup.mustPublish(t, r, i))
	}
	st, err := setup.js.Stream(t.Context(), setup.stream.Name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream info: %v (cluster %v)", err, info)
	}
	for _, s := range c.Servers {
		if s.Name() == info.Cluster.Leader {
			continue
		}
		b := longBusOn(t, s.ClientURL())
		got, intact, err := replaySeqs(t, b, r, 0, seqs[len(seqs)-1], nil)
		if err != nil || !intact || len(got) != len(seqs) {
			t.Fatalf("on %s (a follower): replayed %d of %d (intact %v, %v)", s.Name(), len(got), len(seqs), intact, err)
		}
		if c := consumerCalls(b, metrics.StreamConsumerCreate); c != 1 {
			t.Fatalf("%v consumers made: not a long replay", c)
		}
		noConsumerLeft(t, b)
	}
}

// longBusOn is longBus on a cluster node, for a stream of three replicas.
func longBusOn(t *testing.T, url string) *Bus {
	t.Helper()
	b, err := New(natstest.Connect(t, url), Options{Stream: StreamConfig{Replicas: 3}, Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.longReplay, b.pullBatch, b.directFirst = testLongReplay, testPullBatch, 0
	return b
}

// A long replay of events large enough that a pull's byte bound ends it
// before its count does reads on through the consumer to the end.
func TestLongReplayOfLargeEventsIsComplete(t *testing.T) {
	b := longBus(t, StreamConfig{})
	r := wire.MustRoom("pool:longlarge")
	payload := []byte(`{"event":"e","data":{"s":"` + strings.Repeat("x", pullBytes/testPullBatch*2) + `"}}`)
	var seqs []uint64
	for range 3*testPullBatch + 1 {
		seq, err := b.Publish(t.Context(), r, payload, wire.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	got, intact, err := replaySeqs(t, b, r, 0, seqs[len(seqs)-1], nil)
	if err != nil || !intact {
		t.Fatalf("replayed %d events (intact %v, %v)", len(got), intact, err)
	}
	sameSeqs(t, got, seqs)
	if p, d := consumerCalls(b, metrics.StreamConsumerPull), consumerCalls(b, metrics.StreamDirectGet); p < 6 || d != 0 {
		t.Fatalf("%v pulls and %v direct gets: the byte bound did not end the pulls, or ended the consumer's read", p, d)
	}
}

// A long replay starts on direct gets and makes its consumer only past
// their first events: a client that leaves early (a storm of subscribes
// from 0) costs no consumer; one that reads on gets the rest, in order,
// through the consumer.
func TestLongReplayStartsOnDirectGets(t *testing.T) {
	b := newBus(t, StreamConfig{})
	b.longReplay, b.pullBatch = testLongReplay, testPullBatch
	r := wire.MustRoom("pool:longstart")
	var seqs []uint64
	for i := range directFirst + 3*testPullBatch {
		seqs = append(seqs, b.mustPublish(t, r, i))
	}
	ctx, cancel := context.WithCancel(t.Context())
	n := 0
	_, err := b.Replay(ctx, r, 0, seqs[len(seqs)-1], func(*wire.Event) error {
		if n++; n == 100 {
			cancel()
		}
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) || consumerCalls(b, metrics.StreamConsumerCreate) != 0 {
		t.Fatalf("left after 100 events: %v, %v consumers made, want none", err, consumerCalls(b, metrics.StreamConsumerCreate))
	}
	got, intact, err := replaySeqs(t, b, r, 0, seqs[len(seqs)-1], nil)
	if err != nil || !intact {
		t.Fatalf("replayed %d events (intact %v, %v)", len(got), intact, err)
	}
	sameSeqs(t, got, seqs)
	if c, p := consumerCalls(b, metrics.StreamConsumerCreate), consumerCalls(b, metrics.StreamConsumerPull); c != 1 || p < 3 {
		t.Fatalf("read to the end: %v consumers made, %v pulls", c, p)
	}
	noConsumerLeft(t, b)
}
