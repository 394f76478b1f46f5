package server_test

import (
	"math/rand/v2"
	"testing"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
)

// A client that saw events on node A, dropped, and resumes on node B with
// since receives exactly the events it missed, in order, then live ones.
func TestResumeOnAnotherNodeGetsExactlyTheMissedEvents(t *testing.T) {
	ns := natstest.RunServer(t)
	a, b := startNode(t, ns, nil), startNode(t, ns, nil)
	pub := newPublisher(t, ns.ClientURL())
	const room = "pool:resume"

	ca := dial(t, a)
	subscribe(t, ca, room, nil)
	for i := range 5 {
		pub.event(room, "task.assigned", i)
	}
	seen := readEvents(t, ca, 5)
	since := seen[4].Seq
	_ = ca.NetConn().Close()

	missed := make([]uint64, 0, 10)
	for i := 5; i < 15; i++ {
		missed = append(missed, pub.event(room, "task.assigned", i))
	}
	cb := dial(t, b)
	res, replay := subscribe(t, cb, room, &since)
	if !res.Recovered || res.Replayed != len(missed) || res.Seq != missed[len(missed)-1] {
		t.Fatalf("response %+v, want recovered, %d replayed, seq %d", res, len(missed), missed[len(missed)-1])
	}
	if len(replay) != len(missed) {
		t.Fatalf("replayed %d events, want %d", len(replay), len(missed))
	}
	for i, m := range replay {
		if m.Seq != missed[i] || counterOf(t, m) != 5+i || m.Room != room {
			t.Fatalf("replayed event %d: seq %d n %d, want seq %d n %d", i, m.Seq, counterOf(t, m), missed[i], 5+i)
		}
	}
	next := pub.event(room, "task.assigned", 15)
	if m := readEvents(t, cb, 1)[0]; m.Seq != next || counterOf(t, m) != 15 {
		t.Fatalf("live after resume: seq %d n %d, want %d 15", m.Seq, counterOf(t, m), next)
	}
}

// Publishing goes on while the client reconnects: the counters it receives
// across both nodes have no gap and no duplicate.
func TestResumeWhilePublishingHasNoGapNoDuplicate(t *testing.T) {
	ns := natstest.RunServer(t)
	a, b := startNode(t, ns, nil), startNode(t, ns, nil)
	pubURL := ns.ClientURL()
	const room, total = "workflow:busy", 600

	// Keep the room live on B too, so the hand-over meets live traffic.
	watcher := dial(t, b)
	subscribe(t, watcher, room, nil)

	ca := dial(t, a)
	subscribe(t, ca, room, nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := newPublisher(t, pubURL)
		for i := range total {
			p.event(room, "workflow.stage_completed", i)
		}
	}()

	var got []int
	var last uint64
	for _, m := range readEvents(t, ca, 100) {
		got, last = append(got, counterOf(t, m)), m.Seq
	}
	_ = ca.NetConn().Close()

	cb := dial(t, b)
	_, replay := subscribe(t, cb, room, &last)
	for _, m := range replay {
		got = append(got, counterOf(t, m))
	}
	for len(got) < total {
		got = append(got, counterOf(t, readEvents(t, cb, 1)[0]))
	}
	<-done
	for i, n := range got {
		if n != i {
			t.Fatalf("event %d has counter %d: a gap or a duplicate across the resume (replayed %d)", i, n, len(replay))
		}
	}
}

// A since older than the oldest retained event gives recovered: false and
// the oldest retained events.
func TestResumePastRetentionIsNotRecovered(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.RetentionMaxPerRoom = 5 })
	pub := newPublisher(t, srv.NATSURL())
	const room = "pool:short"
	var seqs []uint64
	for i := range 12 {
		seqs = append(seqs, pub.event(room, "pool.scaling", i))
	}
	c := dial(t, srv)
	res, replay := subscribe(t, c, room, &seqs[2])
	if res.Recovered {
		t.Fatalf("recovered: true after retention dropped events 3..6: %+v", res)
	}
	if len(replay) != 5 || res.Replayed != 5 {
		t.Fatalf("replayed %d (response says %d), want the 5 retained", len(replay), res.Replayed)
	}
	for i, m := range replay {
		if m.Seq != seqs[7+i] {
			t.Fatalf("replayed %d: seq %d, want %d", i, m.Seq, seqs[7+i])
		}
	}

	// A since that is still retained recovers fully.
	c2 := dial(t, srv)
	res, replay = subscribe(t, c2, room, &seqs[8])
	if !res.Recovered || len(replay) != 3 {
		t.Fatalf("resume from a retained seq: %+v, %d replayed; want recovered and 3", res, len(replay))
	}
}

// Random interleavings of publishes, disconnects and resumes across two
// nodes: every client's sequence per room equals the stream's from its
// resume point.
func TestRandomResumesMatchTheStream(t *testing.T) {
	ns := natstest.RunServer(t)
	a, b := startNode(t, ns, nil), startNode(t, ns, nil)
	pub := newPublisher(t, ns.ClientURL())
	rooms := []string{"pool:r0", "pool:r1", "workflow:r2"}
	stream := map[string][]uint64{} // room → every seq published
	rng := rand.New(rand.NewPCG(1, uint64(len(rooms))))

	for trial := range 6 {
		room := rooms[rng.IntN(len(rooms))]
		srv := a
		if rng.IntN(2) == 1 {
			srv = b
		}
		c := dial(t, srv)
		var since *uint64
		start := 0
		if s := stream[room]; len(s) > 0 {
			start = rng.IntN(len(s) + 1)
			if start > 0 {
				v := s[start-1]
				since = &v
			}
		}
		_, got := subscribe(t, c, room, since)
		if since == nil {
			start = len(stream[room]) // live only
		}
		want := append([]uint64(nil), stream[room][start:]...)
		for range rng.IntN(30) + 1 {
			r := rooms[rng.IntN(len(rooms))]
			seq := pub.event(r, "e", len(stream[r]))
			stream[r] = append(stream[r], seq)
			if r == room {
				want = append(want, seq)
			}
		}
		got = append(got, readEvents(t, c, len(want)-len(got))...)
		for i := range want {
			if got[i].Seq != want[i] || got[i].Room != room {
				t.Fatalf("trial %d, %s from %v: event %d is %s seq %d, want seq %d", trial, room, since, i, got[i].Room, got[i].Seq, want[i])
			}
		}
		_ = c.NetConn().Close()
	}
}
