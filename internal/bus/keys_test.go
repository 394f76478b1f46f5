package bus

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/wire"
)

// keyedMsg is a worker's keyed event as plain nats.go builds it.
func keyedMsg(subject, key, deleted string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = []byte(`{"event":"worker.status_changed","data":{"worker_id":"w1"}}`)
	if key != "" {
		m.Header.Set(wire.HeaderKey, key)
	}
	if deleted != "" {
		m.Header.Set(wire.HeaderKeyDeleted, deleted)
	}
	return m
}

// The key headers a worker sets reach the event on every path an edge
// reads: the live feed, a replay's direct gets and the stream leader's
// message get. A malformed key makes the event a bad one there too: it
// keeps its place, is never delivered and is counted.
func TestKeysTravelInHeaders(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r := wire.MustRoom("pool:keys")
	live := make(chan *wire.Event, 8)
	unsub, err := b.SubscribeLive(r, func(ev *wire.Event) { live <- ev }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := b.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	type want struct {
		key     string
		deleted bool
		bad     bool
	}
	cases := []struct {
		key, deleted string
		want         want
	}{
		{"", "", want{}},
		{"worker:w1", "", want{key: "worker:w1"}},
		{"worker:w1", "true", want{key: "worker:w1", deleted: true}},
		{"worker w1", "", want{bad: true}},
		{"", "true", want{bad: true}},
		{"worker:w1", "yes", want{bad: true}},
	}
	var seqs []uint64
	for _, c := range cases {
		ack, err := b.js.PublishMsg(t.Context(), keyedMsg(b.subj.Room(r), c.key, c.deleted))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
	}
	check := func(path string, i int, ev *wire.Event) {
		t.Helper()
		w := cases[i].want
		switch {
		case ev.Seq != seqs[i]:
			t.Errorf("%s: event %d has seq %d, want %d", path, i, ev.Seq, seqs[i])
		case w.bad && !errors.Is(ev.Err, wire.ErrBadKey):
			t.Errorf("%s: key %q/%q taken: %+v", path, cases[i].key, cases[i].deleted, ev)
		case !w.bad && (ev.Err != nil || ev.Key != w.key || ev.KeyDeleted != w.deleted):
			t.Errorf("%s: key %q/%q read as %q/%v (%v)", path, cases[i].key, cases[i].deleted, ev.Key, ev.KeyDeleted, ev.Err)
		}
	}
	for i := range cases {
		select {
		case ev := <-live:
			check("live", i, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("live event %d did not come", i)
		}
	}
	i := 0
	if _, err := b.Replay(t.Context(), r, 0, seqs[len(seqs)-1], func(ev *wire.Event) error {
		check("replay", i, ev)
		i++
		return nil
	}); err != nil || i != len(cases) {
		t.Fatalf("replay read %d events: %v", i, err)
	}
	for i := range cases {
		m, found, err := b.leaderNext(t.Context(), b.subj.Room(r), seqs[i])
		if err != nil || !found {
			t.Fatalf("leader get %d: %v %v", i, found, err)
		}
		check("leader get", i, b.decode(r, m.Seq, 0, m.Time, m.Data, m.Header))
	}
	// Three bad keys, on each of three reads.
	if got := testutil.ToFloat64(b.m.BadKeys); got != 9 {
		t.Errorf("roomcast_bad_keys_total %v, want 9", got)
	}
}

func TestParseHeaderBlock(t *testing.T) {
	h := parseHeaderBlock([]byte("NATS/1.0\r\nRoomcast-Key: worker:w1\r\nNats-Msg-Id:  x \r\nbroken\r\n\r\n"))
	if h.Get(wire.HeaderKey) != "worker:w1" || h.Get("Nats-Msg-Id") != "x" || len(h) != 2 {
		t.Errorf("parsed %v", h)
	}
	if h := parseHeaderBlock([]byte("HTTP/1.1\r\nRoomcast-Key: a\r\n")); h.Get(wire.HeaderKey) != "" {
		t.Errorf("a block without the NATS line read as %v", h)
	}
	if h := parseHeaderBlock(nil); h.Get(wire.HeaderKey) != "" {
		t.Errorf("no block read as %v", h)
	}
}

// Publish puts the key in the key headers, and refuses a key the edges
// would refuse before anything is stored.
func TestPublishSetsTheKeyHeaders(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r := wire.MustRoom("pool:pub")
	payload := []byte(`{"event":"worker.status_changed","data":{"worker_id":"w1"}}`)
	for _, o := range []wire.PublishOptions{{Key: "a b"}, {KeyDeleted: true}, {Key: strings.Repeat("k", wire.MaxKeyLen+1), KeyDeleted: true}} {
		if _, err := b.Publish(t.Context(), r, payload, o); !errors.Is(err, wire.ErrBadKey) {
			t.Errorf("Publish %+v: %v, want ErrBadKey", o, err)
		}
	}
	stream, err := b.js.Stream(t.Context(), DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cases := []wire.PublishOptions{{}, {Key: "worker:w1"}, {Key: "worker:w1", KeyDeleted: true, MsgID: "m1"}}
	for _, o := range cases {
		seq, err := b.Publish(t.Context(), r, payload, o)
		if err != nil {
			t.Fatal(err)
		}
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		key, deleted := o.KeyHeaders()
		if m.Header.Get(wire.HeaderKey) != key || m.Header.Get(wire.HeaderKeyDeleted) != deleted || string(m.Data) != string(payload) {
			t.Errorf("Publish %+v stored headers %v, payload %s", o, m.Header, m.Data)
		}
	}
	i := 0
	if _, err := b.Replay(t.Context(), r, 0, 1<<40, func(ev *wire.Event) error {
		if i < len(cases) && (ev.Err != nil || ev.Key != cases[i].Key || ev.KeyDeleted != cases[i].KeyDeleted) {
			t.Errorf("event %d read back as %q/%v (%v), want %+v", i, ev.Key, ev.KeyDeleted, ev.Err, cases[i])
		}
		i++
		return nil
	}); err != nil || i != len(cases) {
		t.Fatalf("read back %d events, want %d: %v", i, len(cases), err)
	}
}
