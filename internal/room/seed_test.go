package room

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// gatedReplay is the real bus with its first Replay held at the start
// until released, so a test can line resumes up behind it. It adds no
// fault: the stream read is the real one.
type gatedReplay struct {
	Source
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (g *gatedReplay) Replay(ctx context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) (bool, error) {
	if g.calls.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	return g.Source.Replay(ctx, r, after, until, fn)
}

// resumeAll joins n members to r from since at once, the first alone
// until its stream read has begun, and returns the members and what each
// join reported once all have joined.
func resumeAll(t *testing.T, f *fixture, g *gatedReplay, r wire.Room, since uint64, n int) ([]*seqMember, []Joined) {
	t.Helper()
	members := make([]*seqMember, n)
	joined := make([]Joined, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	join := func(i int) {
		defer wg.Done()
		s := since
		errs <- f.hub.Join(context.Background(), r, members[i], &s, func(j Joined) { joined[i] = j })
	}
	for i := range members {
		members[i] = &seqMember{}
	}
	wg.Add(n)
	go join(0)
	<-g.entered
	for i := 1; i < n; i++ {
		go join(i)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		rm := f.room(r)
		rm.mu.Lock()
		defer rm.mu.Unlock()
		if int(rm.catchingUp) < n {
			return fmt.Errorf("%d of %d resumes under way", rm.catchingUp, n)
		}
		return nil
	})
	close(g.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return members, joined
}

// Resumes of a room this node has no tail for, from the same position,
// read the stream once: the others wait for that read to fill the tail and
// take the events from it. Each gets every event once, in order, and
// recovered.
func TestColdResumesFromOnePositionReadTheStreamOnce(t *testing.T) {
	if _, reads := coldResumes(t, nil, wire.MustRoom("pool:seed"), 300, 8); reads != 1 {
		t.Fatalf("%d stream reads for 8 resumes from one position, want 1", reads)
	}
}

// coldResumes publishes events to room r on a fresh hub (edit changes its
// options), resumes n members at once from the event before them
// (resumeAll), checks that each gets every event once, in order, and
// recovered, and returns the fixture and how many stream reads they made.
func coldResumes(t *testing.T, edit func(*Options), r wire.Room, events, n int) (*fixture, int64) {
	t.Helper()
	f := newFixture(t, bus.StreamConfig{})
	g := &gatedReplay{Source: f.bus, entered: make(chan struct{}), release: make(chan struct{})}
	f.withSource(t, g, edit)
	since := f.publish(t, r, 0)
	var want []uint64
	for i := range events {
		want = append(want, f.publish(t, r, 1+i))
	}
	members, joined := resumeAll(t, f, g, r, since, n)
	for i, m := range members {
		m.waitFor(t, want)
		if j := joined[i]; !j.Recovered || j.Replayed != len(want) || j.Seq != want[len(want)-1] {
			t.Fatalf("member %d joined %+v; want recovered, %d replayed, at %d", i, j, len(want), want[len(want)-1])
		}
	}
	return f, g.calls.Load()
}

// A read that finds events removed by retention does not fill the tail:
// every resume reads for itself and learns it is not recovered.
func TestResumesAfterRemovedEventsAreNotRecovered(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{MaxMsgsPerRoom: 50})
	g := &gatedReplay{Source: f.bus, entered: make(chan struct{}), release: make(chan struct{})}
	f.withSource(t, g, nil)
	r := wire.MustRoom("pool:gone")
	since := f.publish(t, r, 0)
	var seqs []uint64
	for i := range 100 {
		seqs = append(seqs, f.publish(t, r, 1+i))
	}
	members, joined := resumeAll(t, f, g, r, since, 4)
	for i, m := range members {
		m.waitFor(t, seqs[50:])
		if joined[i].Recovered {
			t.Fatalf("member %d joined %+v: recovered though 50 events were removed", i, joined[i])
		}
	}
	if n := g.calls.Load(); n != 4 {
		t.Fatalf("%d stream reads for 4 resumes, want one each", n)
	}
}

// The resume whose read the others wait for has a client that stops
// reading: the others still join, since the shared read is paced by no
// client; the stalled one catches up when its client reads again.
func TestStalledReaderDoesNotHoldTheOthers(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	g := &gatedReplay{Source: f.bus, entered: make(chan struct{}), release: make(chan struct{})}
	f.withSource(t, g, nil)
	r := wire.MustRoom("pool:stall")
	since := f.publish(t, r, 0)
	var want []uint64
	for i := range 2 * maxHandOver { // more than a hand-over forces: sent paced
		want = append(want, f.publish(t, r, 1+i))
	}
	stalled := &pausingMember{first: make(chan struct{}), release: make(chan struct{})}
	stalledDone := make(chan error, 1)
	go func() {
		s := since
		stalledDone <- f.hub.Join(context.Background(), r, stalled, &s, func(Joined) {})
	}()
	<-g.entered // the stalled member's resume reads for the room
	const others = 5
	errs := make(chan error, others)
	members := make([]*seqMember, others)
	for i := range members {
		members[i] = &seqMember{}
		go func() {
			s := since
			errs <- f.hub.Join(context.Background(), r, members[i], &s, func(Joined) {})
		}()
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		rm := f.room(r)
		rm.mu.Lock()
		defer rm.mu.Unlock()
		if rm.catchingUp < others+1 {
			return fmt.Errorf("%d of %d resumes under way", rm.catchingUp, others+1)
		}
		return nil
	})
	close(g.release)
	<-stalled.first // its client has stopped reading
	for range others {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("resumes held up by the stalled member's")
		}
	}
	for _, m := range members {
		m.waitFor(t, want)
	}
	close(stalled.release)
	if err := <-stalledDone; err != nil {
		t.Fatal(err)
	}
	stalled.mu.Lock()
	defer stalled.mu.Unlock()
	if len(stalled.seqs) != len(want) || stalled.seqs[0] != want[0] || stalled.seqs[len(want)-1] != want[len(want)-1] {
		t.Fatalf("stalled member got %d events, want %d", len(stalled.seqs), len(want))
	}
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d stream reads, want 1", n)
	}
}

// A stretch longer than the tail may hold: the reader sends what leaves
// its window itself, and the resumes that waited read for themselves;
// every one gets every event once, in order, recovered.
func TestResumesPastTheTailBoundsReadForThemselves(t *testing.T) {
	edit := func(o *Options) { o.TailEvents, o.CatchUpTailEvents = 4, 16 }
	if _, reads := coldResumes(t, edit, wire.MustRoom("pool:long"), 100, 4); reads != 4 {
		t.Fatalf("%d stream reads, want one each: the stretch does not fit the tail", reads)
	}
}

// Many resumes from a stream position that is no event of the room (a
// client's position in another room) cannot share a read, which cannot
// prove itself complete from there: they each catch up anyway, every
// event once and in order, and none runs out of rounds waiting for the
// others' reads.
func TestManyResumesFromAPositionOutsideTheRoomAllCatchUp(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	g := &gatedReplay{Source: f.bus, entered: make(chan struct{}), release: make(chan struct{})}
	f.withSource(t, g, nil)
	r := wire.MustRoom("pool:elsewhere")
	since := f.publish(t, wire.MustRoom("pool:other"), 0)
	var want []uint64
	for i := range 100 {
		want = append(want, f.publish(t, r, i))
	}
	const n = 2 * maxCatchUpRounds
	members, joined := resumeAll(t, f, g, r, since, n)
	for i, m := range members {
		m.waitFor(t, want)
		if j := joined[i]; j.Replayed != len(want) || j.Seq != want[len(want)-1] {
			t.Fatalf("member %d joined %+v; want %d replayed, at %d", i, j, len(want), want[len(want)-1])
		}
	}
}

// Over the node's memory for catch-ups, a stream read does not extend the
// tail past its steady bounds: the read that would have served every
// resume from one position no longer fits, so each reads for itself (one
// read when the memory allows, TestColdResumesFromOnePositionReadTheStreamOnce).
// Every resume still gets every event once, in order, and recovered, and
// once all have joined the account is back at zero.
func TestCatchUpsOverTheNodesMemoryReadForThemselves(t *testing.T) {
	edit := func(o *Options) { o.TailEvents, o.CatchUpMemory = 4, 1 }
	f, reads := coldResumes(t, edit, wire.MustRoom("pool:tight"), 300, 8)
	if reads != 8 {
		t.Fatalf("%d stream reads for 8 resumes, want one each: the reads must not extend the tail", reads)
	}
	if got := testutil.ToFloat64(f.m.CatchUpBytes); got != 0 {
		t.Fatalf("roomcast_catchup_bytes %v with no catch-up under way", got)
	}
}

// Over the node's memory for catch-ups, a resume into a busy room still
// hands over to the live feed: the live events that arrive while it reads
// the stream extend the tail to the catch-up bounds, which the hand-over
// needs. Were the tail held to its steady bounds, each round would find
// its start moved on and the resume would run out of rounds.
func TestACatchUpIntoABusyRoomHandsOverOverTheNodesMemory(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	slow := &slowReplay{Source: f.bus, delay: 20 * time.Millisecond}
	f.withSource(t, slow, func(o *Options) { o.TailEvents, o.CatchUpMemory = 4, 1 })
	// Other rooms' catch-ups hold the node's memory for them throughout,
	// as after a node's death.
	f.hub.tail.mem.add(1 << 20)
	defer f.hub.tail.mem.add(-1 << 20)
	r := wire.MustRoom("pool:busy")
	live := &seqMember{}
	f.join(t, r, live)
	published := []uint64{f.publish(t, r, 0)}
	since := published[0]
	live.waitFor(t, published)

	// A publisher keeps the room busy (200 events/s) through the resume.
	var mu sync.Mutex
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 1; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			ack, err := f.js.Publish(ctx, f.bus.Subjects().Room(r), []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d}}`, i)))
			cancel()
			if err != nil {
				done <- err
				return
			}
			mu.Lock()
			published = append(published, ack.Sequence)
			mu.Unlock()
		}
	}()
	stopped := false
	finish := func() {
		if !stopped {
			stopped = true
			close(stop)
			if err := <-done; err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
	}
	defer finish()
	natstest.WaitFor(t, 10*time.Second, func() error {
		live.mu.Lock()
		defer live.mu.Unlock()
		if len(live.seqs) < 20 {
			return fmt.Errorf("%d live events", len(live.seqs))
		}
		return nil
	})
	m := &seqMember{}
	err := f.hub.Join(context.Background(), r, m, &since, func(Joined) {})
	finish()
	if err != nil {
		t.Fatalf("resume into a busy room: %v", err)
	}
	mu.Lock()
	want := append([]uint64(nil), published[1:]...)
	mu.Unlock()
	m.waitFor(t, want)
}

// slowReplay is the real bus whose stream reads each take delay longer,
// as on a loaded or distant NATS: a fault of timing only, which the test
// cannot produce for real on loopback.
type slowReplay struct {
	Source
	delay time.Duration
}

func (s *slowReplay) Replay(ctx context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) (bool, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return s.Source.Replay(ctx, r, after, until, fn)
}
