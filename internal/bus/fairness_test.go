package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/requester"
	"github.com/roomcast/roomcast/internal/wire"
)

// The scheduler is plain bookkeeping with no part to fake: these tests
// drive it directly, and the Bus tests below through real reads.

// waitFor waits until cond holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
}

func (s *scheduler) waitingNow() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// acquireIn starts an acquire in the background and waits until it is
// queued or granted; the returned channel gets its release (nil on error).
func acquireIn(t *testing.T, ctx context.Context, s *scheduler, id any, room string) <-chan func() {
	t.Helper()
	before := s.waitingNow() + s.held()
	got := make(chan func(), 1)
	go func() {
		release, err := s.acquire(ctx, id, room)
		if err != nil {
			release = nil
		}
		got <- release
	}()
	waitFor(t, fmt.Sprintf("%v's request to queue", id), func() bool { return s.waitingNow()+s.held() > before })
	return got
}

func mustAcquire(t *testing.T, s *scheduler, id any, room string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	release, err := s.acquire(ctx, id, room)
	if err != nil {
		t.Fatalf("%v's read of %s: %v", id, room, err)
	}
	return release
}

// Free slots go round robin over the waiting readers, one request each a
// turn, whatever order their requests came in.
func TestReadsGoRoundRobin(t *testing.T) {
	s := newScheduler(1, pacing{}, nil)
	hold := mustAcquire(t, s, "x", "rx")
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	for _, id := range []string{"a", "a", "a", "b", "b", "b", "c", "c", "c"} {
		ch := acquireIn(t, t.Context(), s, id, "r"+id)
		wg.Add(1)
		go func() {
			defer wg.Done()
			release := <-ch
			mu.Lock()
			order = append(order, id)
			mu.Unlock()
			release()
		}()
	}
	hold()
	wg.Wait()
	if got := fmt.Sprint(order); got != "[a b c a b c a b c]" {
		t.Fatalf("slots went to %s, want round robin", got)
	}
}

// A reader holds at most its share of slots, however many it asks for;
// another reader gets one at once.
func TestReadsCapPerReader(t *testing.T) {
	s := newScheduler(16, pacing{}, nil)
	var chans []<-chan func()
	for i := range 5 {
		chans = append(chans, acquireIn(t, t.Context(), s, "greedy", fmt.Sprint("r", i)))
	}
	if s.held() != s.readerShare || s.waitingNow() != 5-s.readerShare {
		t.Fatalf("greedy holds %d slots with %d waiting, want %d held", s.held(), s.waitingNow(), s.readerShare)
	}
	mustAcquire(t, s, "other", "q")()
	// Giving one back lets the next of its own in.
	(<-chans[0])()
	waitFor(t, "greedy's next request", func() bool { return s.waitingNow() == 5-s.readerShare-1 })
	if s.held() != s.readerShare {
		t.Fatalf("greedy holds %d slots, want %d", s.held(), s.readerShare)
	}
}

// A room's readers together hold at most the room's share; a reader of
// another room is served while they wait.
func TestReadsSharePerRoom(t *testing.T) {
	s := newScheduler(4, pacing{}, nil)
	for i := range 4 {
		acquireIn(t, t.Context(), s, fmt.Sprint("c", i), "crowded")
	}
	if s.held() != s.roomShare || s.waitingNow() != 4-s.roomShare {
		t.Fatalf("the crowded room holds %d slots with %d waiting, want %d of 4", s.held(), s.waitingNow(), s.roomShare)
	}
	mustAcquire(t, s, "quiet", "other")()
}

// The node's own reads (no reader) go before every client's waiting read.
func TestReadsOfTheNodeGoFirst(t *testing.T) {
	s := newScheduler(2, pacing{}, nil)
	hogs := []<-chan func(){acquireIn(t, t.Context(), s, "hog", "r1"), acquireIn(t, t.Context(), s, "hog", "r2")}
	for i := range 3 {
		acquireIn(t, t.Context(), s, fmt.Sprint("client", i), fmt.Sprint("q", i))
	}
	node := acquireIn(t, t.Context(), s, nil, "")
	(<-hogs[0])()
	select {
	case release := <-node:
		release()
	case <-time.After(10 * time.Second):
		t.Fatal("the node's read is still waiting behind the clients'")
	}
}

// A wait ends with its context, and leaves nothing behind: no slot held,
// no request queued, no reader remembered.
func TestReadWaitEndsWithContext(t *testing.T) {
	s := newScheduler(1, pacing{}, nil)
	hold := mustAcquire(t, s, "x", "r")
	ctx, cancel := context.WithCancel(t.Context())
	ch := acquireIn(t, ctx, s, "y", "r")
	cancel()
	if release := <-ch; release != nil {
		t.Fatal("a canceled wait got a slot")
	}
	hold()
	if s.held() != 0 || s.waitingNow() != 0 || len(s.readers) != 0 {
		t.Fatalf("after the wait: %d held, %d waiting, %d readers", s.held(), s.waitingNow(), len(s.readers))
	}
}

// A reader that read past its budget waits before its next read, for as
// long as its context allows; another reader does not.
func TestReaderPastItsBudgetIsPaced(t *testing.T) {
	s := newScheduler(4, newPacing(1), nil) // a burst of 4 events, 1 a second
	s.spend("greedy", 100)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	paced := 0
	count := func() { paced++ }
	if err := s.paceWait(ctx, "greedy", count); paced != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("greedy: paced %d times, %v; want a wait cut short by its context", paced, err)
	}
	if err := s.paceWait(t.Context(), "modest", count); paced != 1 || err != nil {
		t.Fatalf("modest: paced %d times, %v; want no wait", paced, err)
	}
	if err := s.paceWait(t.Context(), nil, count); paced != 1 || err != nil {
		t.Fatalf("the node: paced %d times, %v; want no wait", paced, err)
	}
}

// Through the Bus: a connection's replays from the start are paced once
// it has read its budget, the node's own are not, and the metric says so.
func TestReplaysOfOneReaderArePaced(t *testing.T) {
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b, err := New(nc, Options{ReaderRate: 1, Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := wire.MustRoom("pool:paced")
	var last uint64
	for i := range 20 {
		last = b.mustPublish(t, r, i)
	}
	count := func(*wire.Event) error { return nil }
	conn := requester.With(t.Context(), "conn")
	if _, err := b.Replay(conn, r, 0, last, count); err != nil {
		t.Fatalf("first replay: %v", err) // within the budget when it began
	}
	ctx, cancel := context.WithTimeout(conn, 100*time.Millisecond)
	defer cancel()
	if _, err := b.Replay(ctx, r, 0, last, count); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second replay: %v, want it held back until its context ended", err)
	}
	if n := testutil.ToFloat64(b.m.ReadsPaced); n < 1 {
		t.Fatalf("roomcast_stream_reads_paced_total %v, want at least 1", n)
	}
	if _, err := b.Replay(t.Context(), r, 0, last, count); err != nil {
		t.Fatalf("the node's replay: %v", err)
	}
}

// Through the Bus: a resume of a quiet room gets its reads while readers
// of another room hold and queue for every slot they may.
func TestReplayNotStarvedByAnotherRoomsReaders(t *testing.T) {
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	b, err := New(nc, Options{MaxConcurrentReads: 4, ReaderRate: -1, Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	busy, quiet := wire.MustRoom("pool:busy"), wire.MustRoom("pool:quiet")
	for i := range 3 {
		b.mustPublish(t, busy, i)
	}
	last := b.mustPublish(t, quiet, 0)
	// Crowd the busy room's share: its readers hold and queue for slots.
	for i := range 6 {
		acquireIn(t, t.Context(), b.reads, fmt.Sprint("crowd", i), b.subj.Room(busy))
	}
	got := 0
	ctx, cancel := context.WithTimeout(requester.With(t.Context(), "quiet"), 10*time.Second)
	defer cancel()
	if _, err := b.Replay(ctx, quiet, 0, last, func(*wire.Event) error { got++; return nil }); err != nil || got != 1 {
		t.Fatalf("quiet room's replay: %d events, %v", got, err)
	}
}
