package room

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// laggingReplica answers Heads calls that ask for one room, as many times
// as told, the way a replica that stopped at an earlier position does: that
// room's head and the stream's last sequence are the ones pinned. Replays
// fail as many times as told. It is a stand-in because a real replica
// cannot be held behind, nor a read made to fail, on cue; the stream, the
// leader and every other answer are real.
type laggingReplica struct {
	Source
	mu        sync.Mutex
	room      wire.Room
	head      uint64 // the room's head as the lagging replica knows it (0: none)
	last      uint64 // the stream's last sequence as it knows it
	lagging   int    // Heads calls for room still answered lagging
	fails     int    // Replay calls still to fail
	freshLast uint64 // the highest stream position an up-to-date answer gave
}

// lag makes the next n Heads calls that ask for r answer as of head and
// last.
func (s *laggingReplica) lag(r wire.Room, head, last uint64, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.room, s.head, s.last, s.lagging = r, head, last, n
}

func (s *laggingReplica) failReplays(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = n
}

func (s *laggingReplica) Heads(ctx context.Context, rooms []wire.Room) (map[wire.Room]uint64, uint64, error) {
	heads, last, err := s.Source.Heads(ctx, rooms)
	if err != nil {
		return heads, last, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lagging == 0 || !slices.Contains(rooms, s.room) {
		s.freshLast = max(s.freshLast, last)
		return heads, last, nil
	}
	s.lagging--
	delete(heads, s.room)
	if s.head > 0 {
		heads[s.room] = s.head
	}
	return heads, min(last, s.last), nil
}

func (s *laggingReplica) Replay(ctx context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) (bool, error) {
	s.mu.Lock()
	fail := s.fails > 0
	if fail {
		s.fails--
	}
	s.mu.Unlock()
	if fail {
		return false, errors.New("the stream read timed out")
	}
	return s.Source.Replay(ctx, r, after, until, fn)
}

// seenUpTo waits until an up-to-date replica answered a head check with the
// stream at seq or later.
func (s *laggingReplica) seenUpTo(t *testing.T, seq uint64) {
	t.Helper()
	natstest.WaitFor(t, 10*time.Second, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.freshLast < seq {
			return fmt.Errorf("head checks have seen up to %d, want %d", s.freshLast, seq)
		}
		return nil
	})
}

// A room set up from a replica that lags gets the events it missed from the
// sync, though nothing new is stored: the full check that found every room
// at its head before the set-up does not vouch for the new room.
func TestRoomSetUpFromALaggingReplicaCatchesUp(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	src := &laggingReplica{Source: f.bus}
	f.withSource(t, src, func(o *Options) { o.AntiEntropyInterval = 50 * time.Millisecond })
	f.liveMember(t, wire.MustRoom("pool:keeper")) // full checks have a room to check
	r := wire.MustRoom("pool:lagsetup")
	s1 := f.publish(t, r, 1)
	s2 := f.publish(t, r, 2)
	src.lag(r, s1, s1, 1)
	src.seenUpTo(t, s2) // a full check found every room at its head, up to s2

	m := &seqMember{}
	since := uint64(0)
	if err := f.hub.Join(t.Context(), r, m, &since, func(Joined) {}); err != nil {
		t.Fatal(err)
	}
	m.waitFor(t, []uint64{s1, s2})
}

// A live event whose gap cannot be backfilled is remembered while the room
// is stale: the sync brings the room up to it even when the replica that
// answers the sync has not stored it yet.
func TestLiveEventAfterAFailedBackfillComesWithTheSync(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	src := &laggingReplica{Source: f.bus}
	f.withSource(t, src, func(o *Options) { o.AntiEntropyInterval = time.Hour })
	r := wire.MustRoom("pool:failedgap")
	m := f.liveMember(t, r)
	rm := f.room(r)
	s1 := rm.last()
	if err := rm.unsubscribe(); err != nil { // the node misses s2 live
		t.Fatal(err)
	}
	s2 := f.publish(t, r, 2)
	unsub, err := f.bus.SubscribeLive(r, func(ev *wire.Event) { f.hub.enqueueLive(rm, ev) }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	rm.unsubscribe = unsub
	src.failReplays(1)    // the backfill of s2 fails
	src.lag(r, s1, s1, 1) // and the sync after it reads a replica still at s1
	s3 := f.publish(t, r, 3)
	if a, b := m.next(t), m.next(t); a != s2 || b != s3 {
		t.Fatalf("after the failed backfill: %d %d, want %d %d", a, b, s2, s3)
	}
}
