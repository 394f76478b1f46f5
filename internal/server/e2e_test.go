package server_test

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// Three clients in two rooms: every event reaches exactly the members of its
// room, in order, with growing seq and a timestamp.
func TestEventsReachExactlyTheirRoomInOrder(t *testing.T) {
	srv := startNode(t, nil, nil)
	pub := newPublisher(t, srv.NATSURL())
	a1, a2, b := dial(t, srv), dial(t, srv), dial(t, srv)
	subscribe(t, a1, "pool:a", nil)
	subscribe(t, a2, "pool:a", nil)
	subscribe(t, b, "workflow:b", nil)

	const n = 20
	seqA := make([]uint64, 0, n)
	seqB := make([]uint64, 0, n)
	for i := range n {
		seqA = append(seqA, pub.event("pool:a", "worker.status_changed", i))
		seqB = append(seqB, pub.event("workflow:b", "workflow.stage_completed", i))
	}
	check := func(name string, got []wire.Message, room string, seqs []uint64) {
		t.Helper()
		for i, m := range got {
			if m.Room != room || m.Seq != seqs[i] || counterOf(t, m) != i {
				t.Fatalf("%s: event %d: got room %s seq %d n %d, want %s seq %d n %d", name, i, m.Room, m.Seq, counterOf(t, m), room, seqs[i], i)
			}
			if _, err := time.Parse(time.RFC3339Nano, m.TS); err != nil {
				t.Fatalf("%s: event %d: ts %q: %v", name, i, m.TS, err)
			}
		}
	}
	check("a1", readEvents(t, a1, n), "pool:a", seqA)
	check("a2", readEvents(t, a2, n), "pool:a", seqA)
	check("b", readEvents(t, b, n), "workflow:b", seqB)
}
