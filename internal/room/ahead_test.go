package room

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// flakySource is an in-memory stream of one room whose Heads fails on
// demand. It is a fake because the fault it injects (JetStream failing one
// request while the live feed works) cannot be produced on cue with a real
// server.
type flakySource struct {
	mu       sync.Mutex
	stored   []uint64
	failLast int // Heads fails this many more times
}

func (s *flakySource) SubscribeLive(wire.Room, func(*wire.Event), func()) (func() error, error) {
	return func() error { return nil }, nil
}

func (s *flakySource) Heads(_ context.Context, rooms []wire.Room) (map[wire.Room]uint64, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failLast > 0 {
		s.failLast--
		return nil, 0, errors.New("jetstream unavailable")
	}
	heads := make(map[wire.Room]uint64)
	if len(s.stored) == 0 {
		return heads, 0, nil
	}
	last := s.stored[len(s.stored)-1]
	for _, r := range rooms {
		heads[r] = last
	}
	return heads, last, nil
}

func (s *flakySource) LeaderHead(ctx context.Context, r wire.Room) (uint64, error) {
	heads, _, err := s.Heads(ctx, []wire.Room{r})
	return heads[r], err
}

func (s *flakySource) StreamState(context.Context) (wire.StreamState, error) {
	return wire.StreamState{FirstSeq: 1}, nil
}

func (s *flakySource) HoldsAll(context.Context) (bool, error) { return true, nil }

func (s *flakySource) EnsureStream(context.Context) error { return nil }

func (s *flakySource) AwaitBudget(ctx context.Context) (context.Context, error) { return ctx, nil }

func (s *flakySource) State(context.Context, wire.Room) (wire.RoomState, error) {
	return wire.RoomState{}, errors.New("flakySource keeps no state")
}

func (s *flakySource) Stored(context.Context, wire.Room, uint64) (bool, error) { return true, nil }

func (s *flakySource) Replay(_ context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) (bool, error) {
	s.mu.Lock()
	stored := append([]uint64(nil), s.stored...)
	s.mu.Unlock()
	for _, q := range stored {
		if q > after && q <= until {
			if err := fn(&wire.Event{Room: r, Seq: q, Name: "e"}); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// A client resumes on a node that is behind it (it saw seq 3 elsewhere;
// this node delivered up to 1). While the stream cannot say where the room
// is, the resume is refused rather than risking 2 and 3 twice; once it can,
// the client gets nothing it has seen.
func TestResumeAheadOfTheNodeNeverRepeats(t *testing.T) {
	src := &flakySource{stored: []uint64{1}}
	h := New(Options{Source: src, Logger: natstest.Quiet, Metrics: metrics.NewUnregistered(), RetryDelay: 20 * time.Millisecond})
	defer h.Close()
	r := wire.MustRoom("pool:ahead")
	if err := h.Join(context.Background(), r, newRecorder(), nil, func(Joined) {}); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.stored = append(src.stored, 2, 3) // their live copies have not arrived
	src.failLast = 1
	src.mu.Unlock()

	b := newRecorder()
	since := uint64(3)
	if err := h.Join(context.Background(), r, b, &since, func(Joined) {}); err == nil {
		t.Fatal("resume ahead of the node succeeded while the stream was failing")
	}
	var j Joined
	natstest.WaitFor(t, 10*time.Second, func() error { // until the room's retry has run
		return h.Join(context.Background(), r, b, &since, func(x Joined) { j = x })
	})
	if j.Seq != 3 || j.Replayed != 0 {
		t.Fatalf("joined %+v, want seq 3 and nothing replayed", j)
	}
	if n := len(b.frames); n != 0 {
		t.Fatalf("the resumed client received %d events it had seen", n)
	}
}
