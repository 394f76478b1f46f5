package room

import (
	"context"
	"sync"
	"testing"

	"github.com/gobwas/ws"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/wire"
)

// pausingMember records seqs; its first Send blocks until released, so a
// test can act in the middle of a replay.
type pausingMember struct {
	mu      sync.Mutex
	seqs    []uint64
	first   chan struct{}
	release chan struct{}
	once    sync.Once
}

func (m *pausingMember) add(f *wire.Frame) {
	m.mu.Lock()
	m.seqs = append(m.seqs, f.Seq)
	m.mu.Unlock()
}
func (m *pausingMember) Enqueue(f *wire.Frame) bool               { m.add(f); return true }
func (m *pausingMember) Force(f *wire.Frame) bool                 { m.add(f); return true }
func (m *pausingMember) CanTake(int, int) bool                    { return true }
func (m *pausingMember) WaitRoom(context.Context, int, int) error { return nil }
func (m *pausingMember) Close(ws.StatusCode, string)              {}
func (m *pausingMember) Send(_ context.Context, f *wire.Frame) error {
	m.add(f)
	m.once.Do(func() { close(m.first); <-m.release })
	return nil
}

// A resume from 0 on a stream that had removed nothing, during which the
// per-room limit removes events the replay has not reached: the events are
// gone, and the response must say recovered: false. The room spans three
// batches: the replay has the first when it pauses and may have read the
// second ahead, but not the third.
func TestRetentionDuringReplayIsReported(t *testing.T) {
	const n = 2*bus.ReplayBatch + 300
	f := newFixture(t, bus.StreamConfig{MaxMsgsPerRoom: n})
	r := wire.MustRoom("pool:lim")
	for i := range n {
		f.publish(t, r, i)
	}
	mem := &pausingMember{first: make(chan struct{}), release: make(chan struct{})}
	done := make(chan Joined, 1)
	errs := make(chan error, 1)
	go func() {
		since := uint64(0)
		errs <- f.hub.Join(context.Background(), r, mem, &since, func(j Joined) { done <- j })
	}()
	<-mem.first
	for i := range n { // the room goes on being written: 1..n leave the stream
		f.publish(t, r, 1000+i)
	}
	close(mem.release)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	j := <-done
	mem.mu.Lock()
	defer mem.mu.Unlock()
	missing := 0
	next := uint64(1)
	for _, s := range mem.seqs {
		if s < next {
			t.Fatalf("seq %d after %d: out of order or twice", s, next-1)
		}
		missing += int(s - next)
		next = s + 1
	}
	if missing == 0 || j.Recovered {
		t.Fatalf("joined %+v with %d events missing; want some missing and recovered=false", j, missing)
	}
	if j.Seq != 2*n || mem.seqs[len(mem.seqs)-1] != 2*n {
		t.Fatalf("joined at %d, last event %d; want both %d", j.Seq, mem.seqs[len(mem.seqs)-1], 2*n)
	}
}
