package room

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A client offline while an operator recreated the stream (sequences start
// at 1 again) comes back with a position of the old stream that the new
// one has passed: with its epoch it gets every event of the new stream and
// recovered: false; without one, the position is taken as the new
// stream's (the documented limit of a since without epoch).
func TestAPositionFromARecreatedStreamIsNotRecovered(t *testing.T) {
	f := newFixtureWith(t, bus.StreamConfig{}, func(o *Options) { o.AntiEntropyInterval = time.Hour })
	f.waitForStreamID(t)
	r := wire.MustRoom("pool:epoch")
	old := newRecorder()
	var first Joined
	if err := f.hub.Join(t.Context(), r, old, nil, func(j Joined) { first = j }); err != nil {
		t.Fatal(err)
	}
	f.publish(t, r, 1)
	since := f.publish(t, r, 2) // where the client left off
	for range 2 {
		old.next(t)
	}

	natstest.RecreateStream(t, f.js, bus.DefaultStream, nil)
	var fresh []uint64
	for i := range 5 {
		fresh = append(fresh, f.publish(t, r, 10+i))
	}
	if fresh[0] > since {
		t.Fatalf("the new stream starts at %d, past the old position %d: not the case under test", fresh[0], since)
	}
	f.hub.CheckStream()
	select {
	case <-old.closed: // 4010
	case <-time.After(10 * time.Second):
		t.Fatal("the member of the old stream was not closed")
	}
	f.hub.Leave(r, old)

	back := &seqMember{}
	var j Joined
	if err := f.hub.JoinFrom(t.Context(), r, back, &Position{Since: since, Epoch: first.Epoch}, func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	back.waitFor(t, fresh)
	if j.Recovered || j.Epoch == first.Epoch || j.Epoch == "" || j.Seq != fresh[len(fresh)-1] {
		t.Fatalf("joined %+v from %d of epoch %q: want not recovered, at %d of a new epoch", j, since, first.Epoch, fresh[len(fresh)-1])
	}

	same := &seqMember{}
	if err := f.hub.JoinFrom(t.Context(), r, same, &Position{Since: fresh[2], Epoch: j.Epoch}, func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	same.waitFor(t, fresh[3:])
	if !j.Recovered {
		t.Fatalf("a position of the current epoch: joined %+v, want recovered", j)
	}

	blind := &seqMember{}
	if err := f.hub.Join(t.Context(), r, blind, &since, func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	blind.waitFor(t, after(fresh, since))
	if !j.Recovered {
		t.Fatalf("without an epoch: joined %+v, want today's recovered: true", j)
	}
}

// after is the sequences of seqs past since, in order: the events a
// position at since is owed.
func after(seqs []uint64, since uint64) []uint64 {
	var out []uint64
	for _, s := range seqs {
		if s > since {
			out = append(out, s)
		}
	}
	return out
}

// A well-formed epoch of no stream the node knows (a bogus one, or one this
// node has yet to notice) resumes from the start, not recovered.
func TestAnUnknownEpochResumesFromTheStart(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := wire.MustRoom("pool:unknownepoch")
	f.liveMember(t, r)
	s2 := f.publish(t, r, 2)
	m := &seqMember{}
	var j Joined
	if err := f.hub.JoinFrom(t.Context(), r, m, &Position{Since: s2, Epoch: "zzz-1"}, func(x Joined) { j = x }); err != nil {
		t.Fatal(err)
	}
	m.waitFor(t, []uint64{s2 - 1, s2})
	if j.Recovered || j.Epoch == "" || j.Epoch == "zzz-1" {
		t.Fatalf("joined %+v, want not recovered and the stream's epoch", j)
	}
}
