package room

import (
	"math/rand/v2"
	"testing"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// Membership stays exact as a room grows past the size from which it keeps
// an index and shrinks back: every member is found at its place, none
// twice, and removed members are gone.
func TestMembershipAcrossTheIndexThreshold(t *testing.T) {
	rm := newRoom(wire.MustRoom("pool:m"), metrics.NewUnregistered())
	all := make([]*recorder, 3*indexFrom)
	for i := range all {
		all[i] = newRecorder()
	}
	in := map[*recorder]bool{}
	check := func(step string) {
		t.Helper()
		if len(rm.members) != len(in) {
			t.Fatalf("%s: %d members, want %d", step, len(rm.members), len(in))
		}
		for _, m := range all {
			i := rm.find(m)
			switch {
			case in[m] && (i < 0 || rm.members[i] != m):
				t.Fatalf("%s: member not found at its place (%d)", step, i)
			case !in[m] && i >= 0:
				t.Fatalf("%s: non-member found at %d", step, i)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		for _, i := range rng.Perm(len(all)) {
			rm.add(all[i])
			rm.add(all[i]) // twice changes nothing
			in[all[i]] = true
			check("add")
		}
		if rm.index == nil {
			t.Fatalf("round %d: a room of %d members has no index", round, len(all))
		}
		for _, i := range rng.Perm(len(all)) {
			if !rm.remove(all[i]) || rm.remove(all[i]) {
				t.Fatal("remove did not report membership")
			}
			delete(in, all[i])
			check("remove")
		}
		if rm.index != nil || rm.members != nil {
			t.Fatalf("round %d: an empty room keeps its index or members", round)
		}
	}
}

// A big room's fan-out, split over goroutines, reaches every member once
// and counts those that took the frame.
func TestFanOutOfABigRoomReachesEveryMemberOnce(t *testing.T) {
	for _, n := range []int{1, fanOutShare - 1, fanOutShare * 2, fanOutShare*7 + 3} {
		members := make([]Member, n)
		counters := make([]*countingMember, n)
		for i := range members {
			counters[i] = &countingMember{}
			members[i] = counters[i]
		}
		refusing := &refusingMember{}
		members = append(members, refusing)
		f := wire.NewTextFrame([]byte("e"))
		if got := fanOut(members, f, false); got != n {
			t.Fatalf("%d members: fanOut counted %d", n, got)
		}
		for i, c := range counters {
			if got := c.n.Load(); got != 1 {
				t.Fatalf("%d members: member %d got %d frames", n, i, got)
			}
		}
		if refusing.n.Load() != 1 {
			t.Fatalf("%d members: the refusing member was asked %d times", n, refusing.n.Load())
		}
	}
}

// refusingMember counts the frames offered and takes none.
type refusingMember struct{ countingMember }

func (r *refusingMember) Enqueue(*wire.Frame) bool { r.n.Add(1); return false }
