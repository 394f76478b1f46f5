package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/requester"
	"github.com/roomcast/roomcast/internal/wire"
)

// stateBus is a bus with both streams made, on nc.
func stateBus(t testing.TB, nc *nats.Conn, sc StreamConfig, kc StateConfig) *Bus {
	t.Helper()
	return stateBusWith(t, nc, Options{Stream: sc, State: kc})
}

// stateBusWith is stateBus with more options.
func stateBusWith(t testing.TB, nc *nats.Conn, o Options) *Bus {
	t.Helper()
	o.Logger, o.Metrics = natstest.Quiet, metrics.NewUnregistered()
	b, err := New(nc, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStateStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

// runKeeper runs b's keeper until the test ends or stop is called.
func runKeeper(t testing.TB, b *Bus, node string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.RunKeeper(ctx, node) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// publishKeyed stores one event of room r with key (none if ""), and
// returns its sequence.
func publishKeyed(t *testing.T, b *Bus, r wire.Room, name, key string, deleted bool, data string) uint64 {
	t.Helper()
	m := nats.NewMsg(b.subj.Room(r))
	m.Data = []byte(`{"event":"` + name + `","data":` + data + `}`)
	if key != "" {
		m.Header.Set(wire.HeaderKey, key)
	}
	if deleted {
		m.Header.Set(wire.HeaderKeyDeleted, "true")
	}
	ack, err := b.js.PublishMsg(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// waitKept waits until the keeper's position reaches seq.
func waitKept(t *testing.T, b *Bus, seq uint64) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		rec, _, found, err := b.readPos(t.Context())
		if err != nil || !found || rec.Seq < seq {
			return fmt.Errorf("keeper at %d (found %v, %v), want %d", rec.Seq, found, err, seq)
		}
		return nil
	})
}

// keysOf lists a state's keys with their events' sequences, in order.
func keysOf(st wire.RoomState) []string {
	var out []string
	for _, ev := range st.Events {
		out = append(out, fmt.Sprintf("%s@%d", ev.Key, ev.Seq))
	}
	return out
}

// The state holds each key's latest event, in seq order, without deleted
// keys or unkeyed events, as of a position at or past the room's last
// keyed event; and it outlives the room's history.
func TestStateKeepsTheLatestEventOfEachKey(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{MaxMsgsPerRoom: 3}, StateConfig{})
	runKeeper(t, b, "n1")
	r := wire.MustRoom("pool:p1")
	w1 := publishKeyed(t, b, r, "worker.status_changed", "worker:w1", false, `{"worker_id":"w1","status":"idle"}`)
	w2 := publishKeyed(t, b, r, "worker.status_changed", "worker:w2", false, `{"worker_id":"w2","status":"idle"}`)
	w1b := publishKeyed(t, b, r, "worker.status_changed", "worker:w1", false, `{"worker_id":"w1","status":"busy"}`)
	waitKept(t, b, w1b) // else the delete of w2 may come in the same batch, which then writes nothing for it
	publishKeyed(t, b, r, "worker.removed", "worker:w2", true, `{"worker_id":"w2"}`)
	dotted := publishKeyed(t, b, r, "task.assigned", "task:a.b", false, `{"task_id":"a.b"}`)
	publishKeyed(t, b, wire.MustRoom("pool:other"), "worker.status_changed", "worker:w9", false, `{}`)
	waitKept(t, b, dotted) // before the history expires: a keeper that falls that far behind misses events
	var last uint64
	for range 5 { // history only; pushes w1..w2 out of the room's history
		last = publishKeyed(t, b, r, "pool.scaling", "", false, `{}`)
	}
	waitKept(t, b, last)

	st, err := b.State(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("worker:w1@%d", w1b), fmt.Sprintf("task:a.b@%d", dotted)}
	if got := keysOf(st); !slices.Equal(got, want) {
		t.Fatalf("state %v, want %v", got, want)
	}
	if st.Seq < dotted {
		t.Errorf("state as of %d, before the room's last keyed event %d", st.Seq, dotted)
	}
	if ev := st.Events[0]; ev.Name != "worker.status_changed" || string(ev.Data) != `{"worker_id":"w1","status":"busy"}` || ev.Time.IsZero() || ev.Room != r {
		t.Errorf("entry %+v", ev)
	}
	if _, err := b.Stored(t.Context(), r, w1); err != nil {
		t.Fatal(err)
	}
	if stored, _ := b.Stored(t.Context(), r, w2); stored {
		t.Errorf("w2's first event still in the room's history: the test proves nothing")
	}
	if got := testutil.ToFloat64(b.m.StateWrites.WithLabelValues("delete")); got != 1 {
		t.Errorf("deletes written %v, want 1", got)
	}
}

// Two keepers on one state: one is active at a time; when it stops, the
// other takes over from its position and keeps the state going: at once
// when the first gave the lease up, after the lease when it died.
func TestKeeperLeaseMovesWhenTheActiveOneStops(t *testing.T) {
	for _, tc := range []struct {
		name string
		dies bool
	}{{"stops", false}, {"dies", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.RunServer(t)
			ncA := natstest.Connect(t, ns.ClientURL())
			a := stateBus(t, ncA, StreamConfig{}, StateConfig{})
			b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{}, StateConfig{})
			stopA := runKeeper(t, a, "a")
			r := wire.MustRoom("pool:lease")
			seq := publishKeyed(t, b, r, "worker.status_changed", "worker:w1", false, `{"n":1}`)
			waitKept(t, b, seq)
			runKeeper(t, b, "b")
			seq = publishKeyed(t, b, r, "worker.status_changed", "worker:w2", false, `{"n":2}`)
			waitKept(t, b, seq)
			if testutil.ToFloat64(a.m.KeeperActive) != 1 || testutil.ToFloat64(b.m.KeeperActive) != 0 {
				t.Fatalf("active: a %v, b %v; want a only", testutil.ToFloat64(a.m.KeeperActive), testutil.ToFloat64(b.m.KeeperActive))
			}
			if tc.dies {
				ncA.Close() // it cannot give the lease up
			}
			stopA()
			seq = publishKeyed(t, b, r, "worker.status_changed", "worker:w3", false, `{"n":3}`)
			waitKept(t, b, seq)
			rec, _, _, err := b.readPos(t.Context())
			if err != nil || rec.Node != "b" {
				t.Fatalf("position written by %q (%v), want b", rec.Node, err)
			}
			st, err := b.State(t.Context(), r)
			if err != nil || len(st.Events) != 3 {
				t.Fatalf("state %v (%v), want 3 keys", keysOf(st), err)
			}
		})
	}
}

// Past its bound a room evicts its least recently written keys, counted.
func TestKeysPastTheBoundEvictTheOldest(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{}, StateConfig{MaxKeysPerRoom: 3})
	runKeeper(t, b, "n1")
	r := wire.MustRoom("pool:bound")
	var seqs []uint64
	for i := range 3 {
		seqs = append(seqs, publishKeyed(t, b, r, "worker.status_changed", fmt.Sprintf("worker:w%d", i), false, `{}`))
	}
	waitKept(t, b, seqs[2])
	// w0 is written again, so w1 is now the least recently written.
	seqs = append(seqs, publishKeyed(t, b, r, "worker.status_changed", "worker:w0", false, `{}`))
	for i := 3; i < 5; i++ {
		seqs = append(seqs, publishKeyed(t, b, r, "worker.status_changed", fmt.Sprintf("worker:w%d", i), false, `{}`))
	}
	waitKept(t, b, seqs[len(seqs)-1])
	st, err := b.State(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("worker:w0@%d", seqs[3]), fmt.Sprintf("worker:w3@%d", seqs[4]), fmt.Sprintf("worker:w4@%d", seqs[5])}
	if got := keysOf(st); !slices.Equal(got, want) {
		t.Fatalf("state %v, want %v", got, want)
	}
	if got := testutil.ToFloat64(b.m.StateEvicted); got != 2 {
		t.Errorf("evicted %v, want 2", got)
	}
}

// A recreated event stream is a new history: the state starts over.
func TestStateStartsOverWithARecreatedStream(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{}, StateConfig{})
	runKeeper(t, b, "n1")
	r := wire.MustRoom("pool:again")
	seq := publishKeyed(t, b, r, "worker.status_changed", "worker:old", false, `{}`)
	waitKept(t, b, seq)
	natstest.RecreateStream(t, b.js, b.stream.Name, nil)
	fresh := publishKeyed(t, b, r, "worker.status_changed", "worker:new", false, `{}`)
	natstest.WaitFor(t, 20*time.Second, func() error {
		st, err := b.State(t.Context(), r)
		if err != nil {
			return err
		}
		if got, want := keysOf(st), []string{fmt.Sprintf("worker:new@%d", fresh)}; !slices.Equal(got, want) {
			return fmt.Errorf("state %v, want %v", got, want)
		}
		return nil
	})
}

// Without a keeper's position there is no state to read, rather than an
// empty one that would be wrong.
func TestNoStateBeforeAKeeperStarts(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{}, StateConfig{})
	if _, err := b.State(t.Context(), wire.MustRoom("pool:p1")); err == nil {
		t.Fatal("state read without a keeper")
	}
}

// A room the keeper has seen only unkeyed events of has an empty state as
// of a recent event of its own (its position record is refreshed while
// it has events), so a state subscribe need not replay its history; a
// room it has never seen is empty as of 0.
func TestStateOfRoomsWithoutKeys(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{}, StateConfig{})
	runKeeper(t, b, "n1")
	r := wire.MustRoom("pool:history")
	first := publishKeyed(t, b, r, "pool.scaling", "", false, `{}`)
	waitKept(t, b, first)
	st, err := b.State(t.Context(), r)
	if err != nil || len(st.Events) != 0 || st.Seq != first || st.Epoch == "" {
		t.Fatalf("state %+v (%v), want empty as of %d with an epoch", st, err, first)
	}
	if string(st.JSON) != "[]" {
		t.Errorf("state JSON %s, want []", st.JSON)
	}
	st, err = b.State(t.Context(), wire.MustRoom("pool:never"))
	if err != nil || len(st.Events) != 0 || st.Seq != 0 || st.Epoch != "" {
		t.Fatalf("state of an unseen room %+v (%v), want empty as of 0", st, err)
	}
}

// Events that retention removes before the keeper reads them are counted
// and logged wherever they fall in the keeper's next batch: before its
// first event, or between two of its events.
func TestKeeperCountsEventsRemovedBeforeItReadThem(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{MaxMsgsPerRoom: 2}, StateConfig{})
	stop := runKeeper(t, b, "n1")
	quiet, busy := wire.MustRoom("pool:quiet"), wire.MustRoom("pool:busy")
	seq := publishKeyed(t, b, quiet, "worker.status_changed", "worker:w1", false, `{}`)
	waitKept(t, b, seq)
	stop()
	// While no keeper runs, busy's retention removes three of its events:
	// two before quiet's, one after it.
	for range 2 {
		publishKeyed(t, b, busy, "worker.status_changed", "worker:w2", false, `{}`)
	}
	publishKeyed(t, b, quiet, "worker.status_changed", "worker:w1", false, `{}`)
	for range 3 {
		seq = publishKeyed(t, b, busy, "worker.status_changed", "worker:w2", false, `{}`)
	}
	runKeeper(t, b, "n2")
	waitKept(t, b, seq)
	if got := testutil.ToFloat64(b.m.StateMissed); got != 3 {
		t.Errorf("missed %v events, want 3", got)
	}
}

// A client whose state reads spent its budget waits for it alone: state
// reads of other rooms, by other clients, go on meanwhile.
func TestAPacedStateReadHoldsUpNoOneElse(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBusWith(t, natstest.Connect(t, ns.ClientURL()), Options{ReaderRate: 1})
	runKeeper(t, b, "n1")
	big, other := wire.MustRoom("pool:big"), wire.MustRoom("pool:other")
	var last uint64
	for i := range 40 { // a burst of 4 s's worth at 1 event a second, ten times over
		last = publishKeyed(t, b, big, "worker.status_changed", fmt.Sprintf("worker:w%d", i), false, `{}`)
	}
	last = max(last, publishKeyed(t, b, other, "worker.status_changed", "worker:x", false, `{}`))
	waitKept(t, b, last)

	greedy := requester.With(t.Context(), "greedy")
	if _, err := b.State(greedy, big); err != nil { // spends its budget for half a minute
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(greedy)
	defer cancel()
	paced := make(chan error, 1)
	go func() {
		_, err := b.State(ctx, big)
		paced <- err
	}()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if testutil.ToFloat64(b.m.ReadsPaced) == 0 {
			return errors.New("the greedy client's read is not paced yet")
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := b.State(requester.With(t.Context(), "polite"), other)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("another client's state read waited for the paced one")
	}
	select {
	case err := <-paced:
		t.Fatalf("the paced read ended early: %v", err)
	default:
	}
}

// With a maximum age, a key not written for that long goes, while the
// keeper's and the room's positions stay: the room reads empty, not
// unavailable.
func TestKeysAgeOutAndPositionsStay(t *testing.T) {
	ns := natstest.RunServer(t)
	b := stateBus(t, natstest.Connect(t, ns.ClientURL()), StreamConfig{}, StateConfig{MaxAge: time.Second})
	runKeeper(t, b, "n1")
	r := wire.MustRoom("pool:aging")
	seq := publishKeyed(t, b, r, "worker.status_changed", "worker:w1", false, `{}`)
	waitKept(t, b, seq)
	natstest.WaitFor(t, 20*time.Second, func() error {
		st, err := b.State(t.Context(), r)
		switch {
		case err != nil:
			return err
		case len(st.Events) != 0:
			return fmt.Errorf("state %v: the key has not aged out", keysOf(st))
		case st.Seq < seq:
			return fmt.Errorf("state as of %d, want %d", st.Seq, seq)
		}
		return nil
	})
}
