package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

func newBus(t testing.TB, sc StreamConfig) *Bus {
	t.Helper()
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b, err := New(nc, Options{Stream: sc, Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *Bus) mustPublish(t *testing.T, r wire.Room, n int) uint64 {
	t.Helper()
	seq, err := b.Publish(t.Context(), r, []byte(`{"event":"e","data":{"n":`+string(rune('0'+n%10))+`}}`), wire.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestSubjects(t *testing.T) {
	s := Subjects{Prefix: "acme.rc"}
	r := wire.MustRoom("pool:p1")
	if s.Room(r) != "acme.rc.rooms.pool.p1" || s.Live(r) != "acme.rc.live.pool.p1" || s.AllRooms() != "acme.rc.rooms.>" {
		t.Fatalf("subjects %s %s %s", s.Room(r), s.Live(r), s.AllRooms())
	}
	for _, subj := range []string{s.Room(r), s.Live(r)} {
		got, err := s.RoomOf(subj)
		if err != nil || got != r {
			t.Fatalf("RoomOf(%s) = %v, %v", subj, got, err)
		}
	}
	for _, bad := range []string{"other.rooms.pool.p1", "acme.rc.rooms.pool", "acme.rc.rooms.pool.p1.x"} {
		if _, err := s.RoomOf(bad); err == nil {
			t.Errorf("RoomOf(%s) accepted", bad)
		}
	}
	for _, p := range []string{"", "a..b", "a.*", "a.>", "a b"} {
		if CheckPrefix(p) == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

// EnsureStream is idempotent and applies changed settings.
func TestEnsureStreamIsIdempotent(t *testing.T) {
	b := newBus(t, StreamConfig{MaxMsgsPerRoom: 10})
	b.stream.MaxMsgsPerRoom = 20
	for range 2 {
		if err := b.EnsureStream(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	st, err := b.js.Stream(t.Context(), DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxMsgsPerSubject != 20 || cfg.RePublish == nil || cfg.RePublish.Destination != "roomcast.live.>" {
		t.Fatalf("stream config %+v", cfg)
	}
}

func TestPublishRefusesBadPayloadAndDeduplicates(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r := wire.MustRoom("pool:p")
	if _, err := b.Publish(t.Context(), r, []byte(`nope`), wire.PublishOptions{}); !errors.Is(err, wire.ErrBadPayload) {
		t.Fatalf("bad payload: %v", err)
	}
	p := []byte(`{"event":"e"}`)
	s1, err := b.Publish(t.Context(), r, p, wire.PublishOptions{MsgID: "id-1"})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Publish(t.Context(), r, p, wire.PublishOptions{MsgID: "id-1"})
	if err != nil || s2 != s1 {
		t.Fatalf("retry with the same id stored %d (first %d), %v", s2, s1, err)
	}
	heads, _, err := b.Heads(t.Context(), []wire.Room{r, wire.MustRoom("pool:empty")})
	if err != nil || heads[r] != s1 || len(heads) != 1 {
		t.Fatalf("Heads %v %v, want %s at %d and nothing for the empty room", heads, err, r, s1)
	}
}

// Replay reads (after, until] of one room only, across several batches.
func TestReplayRange(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r, other := wire.MustRoom("pool:r"), wire.MustRoom("pool:o")
	var seqs []uint64
	for i := range ReplayBatch + 40 {
		seqs = append(seqs, b.mustPublish(t, r, i))
		b.mustPublish(t, other, i)
	}
	var got []uint64
	intact, err := b.Replay(t.Context(), r, seqs[3], seqs[len(seqs)-5], func(ev *wire.Event) error {
		if ev.Room != r || ev.Err != nil || ev.Time.IsZero() {
			t.Fatalf("replayed %+v", ev)
		}
		got = append(got, ev.Seq)
		return nil
	})
	if err != nil || !intact {
		t.Fatalf("replay: intact %v, %v", intact, err)
	}
	want := seqs[4 : len(seqs)-4]
	if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
		t.Fatalf("replayed %d events %d..%d, want %d events %d..%d", len(got), got[0], got[len(got)-1], len(want), want[0], want[len(want)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Replay(ctx, r, 0, seqs[len(seqs)-1], func(*wire.Event) error { return nil }); err == nil {
		t.Fatal("replay with a cancelled context succeeded")
	}
}

// Replay says whether the range is intact: its start still stored, so
// retention removed nothing after it.
func TestReplayReportsRemovals(t *testing.T) {
	b := newBus(t, StreamConfig{MaxMsgsPerRoom: 3})
	r, other := wire.MustRoom("pool:rp"), wire.MustRoom("pool:x")
	var seqs []uint64
	for i := range 6 {
		seqs = append(seqs, b.mustPublish(t, r, i))
	}
	b.mustPublish(t, other, 0)
	for _, tc := range []struct {
		name   string
		after  uint64
		want   []uint64
		intact bool
	}{
		{"from a retained event", seqs[3], seqs[4:], true},
		{"from a removed event", seqs[1], seqs[3:], false},
		{"from the start after removals", 0, seqs[3:], false},
	} {
		var got []uint64
		intact, err := b.Replay(t.Context(), r, tc.after, seqs[5], func(ev *wire.Event) error {
			got = append(got, ev.Seq)
			return nil
		})
		if err != nil || intact != tc.intact || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: Replay(%d] = %v, intact %v, %v; want %v, %v", tc.name, tc.after, got, intact, err, tc.want, tc.intact)
		}
	}
	fresh := newBus(t, StreamConfig{})
	s := fresh.mustPublish(t, r, 0)
	if intact, err := fresh.Replay(t.Context(), r, 0, s, func(*wire.Event) error { return nil }); err != nil || !intact {
		t.Errorf("nothing removed: Replay from 0 intact %v, %v", intact, err)
	}
}

// A live event carries its seq and the room's previous seq; a bad payload
// still yields its place in the sequence.
func TestLiveEventsCarrySequences(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r := wire.MustRoom("pool:live")
	got := make(chan *wire.Event, 4)
	unsub, err := b.SubscribeLive(r, func(ev *wire.Event) { got <- ev }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	s1 := b.mustPublish(t, r, 1)
	if _, err := b.js.Publish(t.Context(), b.subj.Room(r), []byte(`garbage`)); err != nil {
		t.Fatal(err)
	}
	next := func() *wire.Event {
		select {
		case ev := <-got:
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no live event")
			return nil
		}
	}
	e1, e2 := next(), next()
	if e1.Seq != s1 || e1.Prev != 0 || e1.Err != nil || e1.Name != "e" {
		t.Fatalf("first live event %+v", e1)
	}
	if e2.Seq != s1+1 || e2.Prev != s1 || !errors.Is(e2.Err, wire.ErrBadPayload) {
		t.Fatalf("bad live event %+v", e2)
	}
}

// A replay to a reader slower than the request timeout still completes:
// the timeout bounds the stream's answer, not the reader.
func TestSlowReaderOutlastsTheRequestTimeout(t *testing.T) {
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b, err := New(nc, Options{Logger: natstest.Quiet, Metrics: metrics.NewUnregistered(), RequestTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := wire.MustRoom("pool:slowreader")
	var last uint64
	for i := range 60 {
		last = b.mustPublish(t, r, i)
	}
	n := 0
	_, err = b.Replay(t.Context(), r, 0, last, func(*wire.Event) error {
		n++
		time.Sleep(5 * time.Millisecond) // a slow reader: 300 ms for the batch, past the 100 ms timeout
		return nil
	})
	if err != nil || n != 60 {
		t.Fatalf("replayed %d of 60 to a slow reader: %v", n, err)
	}
}

// Heads of more rooms than one request takes, whose last events together
// exceed one answer's byte limit: every room's head comes back, in a few
// requests.
func TestHeadsOfManyRooms(t *testing.T) {
	b := newBus(t, StreamConfig{})
	const n = maxMultiLast + 100
	pad := strings.Repeat("x", 1024) // 1,100 KiB of last events: several answers
	rooms := make([]wire.Room, n)
	futures := make([]jetstream.PubAckFuture, n)
	for i := range n {
		rooms[i] = wire.MustRoom(fmt.Sprintf("pool:h%d", i))
		f, err := b.js.PublishAsync(b.subj.Room(rooms[i]), []byte(fmt.Sprintf(`{"event":"e","data":{"pad":%q}}`, pad)))
		if err != nil {
			t.Fatal(err)
		}
		futures[i] = f
	}
	want := make(map[wire.Room]uint64, n)
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			want[rooms[i]] = ack.Sequence
		case err := <-f.Err():
			t.Fatal(err)
		case <-time.After(20 * time.Second):
			t.Fatal("no publish ack")
		}
	}
	calls := multiLastCalls(b)
	heads, last, err := b.Heads(t.Context(), append(rooms, wire.MustRoom("pool:none")))
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != n || last != want[rooms[n-1]] {
		t.Fatalf("%d heads up to %d, want %d up to %d", len(heads), last, n, want[rooms[n-1]])
	}
	for r, seq := range want {
		if heads[r] != seq {
			t.Fatalf("head of %s is %d, want %d", r, heads[r], seq)
		}
	}
	if c := multiLastCalls(b) - calls; c < 3 || c > 10 {
		t.Fatalf("%v requests for %d heads, want a few (two chunks, several answers)", c, n)
	}
}

func multiLastCalls(b *Bus) float64 {
	return testutil.ToFloat64(b.m.StreamCalls.WithLabelValues("multi_last"))
}
