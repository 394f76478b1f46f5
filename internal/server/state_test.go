package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// keyed stores an event of room with key (ending it when deleted), the
// way a worker sets it: in the NATS headers.
func (p *publisher) keyed(room, name, key string, deleted bool, n int) uint64 {
	p.t.Helper()
	r := wire.MustRoom(room)
	m := nats.NewMsg("roomcast.rooms." + r.Token())
	m.Data = fmt.Appendf(nil, `{"event":%q,"data":{"n":%d,"key":%q}}`, name, n, key)
	m.Header.Set(wire.HeaderKey, key)
	if deleted {
		m.Header.Set(wire.HeaderKeyDeleted, "true")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		p.t.Fatalf("publish to %s: %v", room, err)
	}
	return ack.Sequence
}

// waitKept waits until the state keeper has every event up to seq.
func waitKept(t testing.TB, natsURL string, seq uint64) {
	t.Helper()
	waitKeptWithin(t, natsURL, seq, 20*time.Second)
}

// waitKeptWithin is waitKept with its deadline, for benchmarks that
// store many events.
func waitKeptWithin(t testing.TB, natsURL string, seq uint64, timeout time.Duration) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natsURL))
	if err != nil {
		t.Fatal(err)
	}
	servertest.WaitKeptWithin(t, js, seq, timeout)
}

// subscribeState subscribes with state (and since, when not nil) and
// returns the response and the events sent before it.
func subscribeState(t testing.TB, c *client.Conn, id, room string, since *uint64, epoch string) (wire.StateResult, []wire.Message) {
	t.Helper()
	data := map[string]any{"channel": room, "state": true}
	if since != nil {
		data["since"] = *since
		if epoch != "" {
			data["epoch"] = epoch
		}
	}
	if err := c.Request(wire.EventSubscribe, id, data); err != nil {
		t.Fatal(err)
	}
	var before []wire.Message
	for {
		m := read(t, c)
		switch {
		case m.Type == wire.TypeResponse && m.ID == id:
			var r wire.StateResult
			if err := json.Unmarshal(m.Data, &r); err != nil || r.Status != "subscribed" || r.Channel != room {
				t.Fatalf("subscribe response %s (%v)", m.Data, err)
			}
			return r, before
		case m.Type == wire.TypeEvent:
			before = append(before, m)
		default:
			t.Fatalf("want the subscribe response, got %+v (data %s)", m, m.Data)
		}
	}
}

// picture is a client's view of a room's keys: each key's latest event.
type picture map[string]uint64 // key → seq

// apply applies an event or a state entry to the picture.
func (p picture) apply(m wire.Message) {
	switch {
	case m.Key == "":
	case m.KeyDeleted:
		delete(p, m.Key)
	default:
		p[m.Key] = m.Seq
	}
}

func (p picture) String() string {
	var out []string
	for k, s := range p {
		out = append(out, fmt.Sprintf("%s@%d", k, s))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// A subscribe with state gets every key's latest event, also those whose
// events the room's history no longer holds, as of the response's seq,
// and then exactly the events after it.
func TestStateSubscribeShowsKeysOlderThanTheHistory(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, func(c *config.Serve) { c.RetentionMaxPerRoom = 3 })
	pub := newPublisher(t, ns.ClientURL())
	const room = "pool:state1"
	pub.keyed(room, "worker.status_changed", "worker:w1", false, 1)
	pub.keyed(room, "worker.status_changed", "worker:w2", false, 2)
	w1 := pub.keyed(room, "worker.status_changed", "worker:w1", false, 3)
	waitKept(t, ns.ClientURL(), w1)
	gone := pub.keyed(room, "worker.removed", "worker:w2", true, 4)
	waitKept(t, ns.ClientURL(), gone)
	for i := range 4 { // history only, and enough to push every keyed event out of the room's history
		pub.event(room, "pool.scaling", 10+i)
	}

	c := dial(t, srv)
	res, before := subscribeState(t, c, "st", room, nil, "")
	if len(before) != 0 || res.Replayed != 0 || !res.Recovered || wire.CheckEpoch(res.Epoch) != nil {
		t.Fatalf("response %+v after %d events", res.SubscribeResult, len(before))
	}
	if len(res.State) != 1 || res.State[0].Key != "worker:w1" || res.State[0].Seq != w1 || res.State[0].Type != wire.TypeEvent ||
		res.State[0].Room != room || res.State[0].Event != "worker.status_changed" || res.State[0].TS == "" || counterOf(t, res.State[0]) != 3 {
		t.Fatalf("state %+v, want worker:w1 at %d", res.State, w1)
	}
	if res.Seq < gone {
		t.Fatalf("state as of %d, before the delete at %d it reflects", res.Seq, gone)
	}
	got := picture{}
	for _, m := range res.State {
		got.apply(m)
	}
	// Whatever came after the state's position follows it, then live.
	w3 := pub.keyed(room, "worker.status_changed", "worker:w3", false, 20)
	for seq := uint64(0); seq < w3; {
		m := read(t, c)
		if m.Type != wire.TypeEvent || m.Seq <= res.Seq || m.Seq <= seq {
			t.Fatalf("after the state at %d and event %d, got %+v", res.Seq, seq, m)
		}
		seq = m.Seq
		got.apply(m)
	}
	want := picture{"worker:w1": w1, "worker:w3": w3}
	if got.String() != want.String() {
		t.Fatalf("picture %v, want %v", got, want)
	}
}

// A subscribe with state and since is a resume when nothing after since
// was lost; when its since is gone, it gets the state instead of a replay.
func TestStateWithSinceResumesOnlyWhenRecovered(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, func(c *config.Serve) { c.RetentionMaxPerRoom = 4 })
	pub := newPublisher(t, ns.ClientURL())
	const room = "pool:state2"
	first := pub.keyed(room, "worker.status_changed", "worker:w1", false, 1)
	waitKept(t, ns.ClientURL(), first)
	var seqs []uint64
	for i := range 3 {
		seqs = append(seqs, pub.keyed(room, "worker.status_changed", "worker:w2", false, 2+i))
	}
	waitKept(t, ns.ClientURL(), seqs[2])

	c := dial(t, srv)
	res, before := subscribeState(t, c, "r1", room, &seqs[0], "")
	if !res.Recovered || res.State != nil || res.Replayed != 2 || len(before) != 2 || before[0].Seq != seqs[1] || before[1].Seq != seqs[2] {
		t.Fatalf("recoverable resume answered %+v (state %v) after %d events", res.SubscribeResult, res.State, len(before))
	}

	for i := range 3 { // push w1's only event out of the room's history
		seqs = append(seqs, pub.keyed(room, "worker.status_changed", "worker:w2", false, 10+i))
	}
	waitKept(t, ns.ClientURL(), seqs[len(seqs)-1])
	c2 := dial(t, srv)
	res, before = subscribeState(t, c2, "r2", room, &first, res.Epoch)
	if res.Recovered || len(before) != 0 || res.Replayed != 0 || res.State == nil {
		t.Fatalf("unrecoverable resume answered %+v (state %v) after %d events", res.SubscribeResult, res.State, len(before))
	}
	got := picture{}
	for _, m := range res.State {
		got.apply(m)
	}
	want := picture{"worker:w1": first, "worker:w2": seqs[len(seqs)-1]}
	if got.String() != want.String() || res.Seq != seqs[len(seqs)-1] {
		t.Fatalf("state %v as of %d, want %v as of %d", got, res.Seq, want, seqs[len(seqs)-1])
	}
}

// state and conflate that are not booleans are refused, and the
// connection goes on.
func TestStateAndConflateMustBeBooleans(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, nil)
	c := dial(t, srv)
	for i, data := range []map[string]any{
		{"channel": "pool:p1", "state": "true"},
		{"channel": "pool:p1", "state": 1},
		{"channel": "pool:p1", "conflate": []int{}},
	} {
		id := fmt.Sprintf("bad-%d", i)
		if err := c.Request(wire.EventSubscribe, id, data); err != nil {
			t.Fatal(err)
		}
		expectError(t, c, id, wire.CodeBadRequest)
	}
	if res, _ := subscribe(t, c, "pool:p1", nil); res.Status != "subscribed" {
		t.Fatalf("connection unusable after bad requests: %+v", res)
	}
}
