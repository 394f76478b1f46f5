package room

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// heldHeads holds the first Heads call that asks for one room until
// released, after telling the test it is there. It is a stand-in because a
// real stream cannot be made to answer on cue; the stream and every answer
// are real.
type heldHeads struct {
	Source
	room    wire.Room
	held    atomic.Bool
	entered chan struct{} // capacity 1: the first call says it is there
	release chan struct{}
}

func (s *heldHeads) Heads(ctx context.Context, rooms []wire.Room) (map[wire.Room]uint64, uint64, error) {
	if slices.Contains(rooms, s.room) && s.held.CompareAndSwap(false, true) {
		s.entered <- struct{}{}
		<-s.release
	}
	return s.Source.Heads(ctx, rooms) // later calls are answered at once
}

// A stream recreated while a room is being set up (the room has read the
// old stream's identity, not yet its position) must not leave the room in
// the old stream: the reset restarts it once the set-up ends, so it names
// the new stream's epoch, and a member that joined under the old one is
// closed (4010).
func TestARoomSetUpDuringARecreationEndsInTheNewStream(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := wire.MustRoom("pool:setupreset")
	src := &heldHeads{Source: f.bus, room: r, entered: make(chan struct{}, 1), release: make(chan struct{})}
	f.withSource(t, src, func(o *Options) { o.AntiEntropyInterval = time.Hour })
	f.waitForStreamID(t)
	oldID := *f.hub.sync.id.Load()

	first := newRecorder()
	joined := make(chan Joined, 1)
	joinErr := make(chan error, 1)
	go func() {
		joinErr <- f.hub.Join(t.Context(), r, first, nil, func(j Joined) { joined <- j })
	}()
	select {
	case <-src.entered: // the set-up read the old identity and waits for its heads
	case <-time.After(10 * time.Second):
		t.Fatal("the room's set-up never asked for its head")
	}
	natstest.RecreateStream(t, f.js, bus.DefaultStream, nil)
	f.hub.CheckStream()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if id := f.hub.sync.id.Load(); id.Equal(oldID) {
			return errors.New("the node has not noticed the recreation yet")
		}
		return nil
	})
	close(src.release)
	if err := <-joinErr; err != nil {
		t.Fatal(err)
	}
	newEpoch := f.hub.sync.id.Load().Epoch()
	if j := <-joined; j.Epoch != newEpoch {
		// Joined under the old stream: the reset must close it.
		select {
		case <-first.closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("joined in epoch %q (the old stream's) and never closed; the stream's is %q", j.Epoch, newEpoch)
		}
	}

	second := newRecorder()
	natstest.WaitFor(t, 10*time.Second, func() error {
		var j Joined
		if err := f.hub.Join(t.Context(), r, second, nil, func(x Joined) { j = x }); err != nil {
			return err
		}
		f.hub.Leave(r, second)
		if j.Epoch != newEpoch {
			return errors.New("the room still names the old stream's epoch " + j.Epoch + ", want " + newEpoch)
		}
		return nil
	})
}
