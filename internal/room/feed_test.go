package room

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gobwas/ws"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// recorder is an in-process member that keeps what it is sent.
type recorder struct {
	frames chan *wire.Frame
	closed chan struct{} // gets a value when the hub closes the member
}

func newRecorder() *recorder {
	return &recorder{frames: make(chan *wire.Frame, 1024), closed: make(chan struct{}, 1)}
}

func (r *recorder) Enqueue(f *wire.Frame) bool {
	select {
	case r.frames <- f:
		return true
	default:
		return false
	}
}

func (r *recorder) Force(f *wire.Frame) bool                 { return r.Enqueue(f) }
func (r *recorder) CanTake(int, int) bool                    { return true }
func (r *recorder) WaitRoom(context.Context, int, int) error { return nil }
func (r *recorder) Close(ws.StatusCode, string) {
	select {
	case r.closed <- struct{}{}:
	default:
	}
}

func (r *recorder) Send(ctx context.Context, f *wire.Frame) error {
	select {
	case r.frames <- f:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// next returns the next frame's seq within a deadline.
func (r *recorder) next(t *testing.T) uint64 {
	t.Helper()
	select {
	case f := <-r.frames:
		return f.Seq
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
		return 0
	}
}

// fixture is a hub on a real bus on a real NATS server.
type fixture struct {
	hub *Hub
	bus *bus.Bus
	m   *metrics.Metrics
	js  jetstream.JetStream
	ns  *natsserver.Server
}

func newFixture(t *testing.T, sc bus.StreamConfig) *fixture {
	return newFixtureWith(t, sc, nil)
}

// newFixtureWith lets a test change the hub's options. The NATS connection
// routes its events to the bus the way the server does.
func newFixtureWith(t *testing.T, sc bus.StreamConfig, edit func(*Options)) *fixture {
	ns := natstest.RunServer(t)
	var b *bus.Bus
	ready := make(chan struct{})
	nc := natstest.Connect(t, ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			<-ready
			b.AsyncError(sub, err)
		}),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { <-ready; b.Disconnected() }),
		nats.ReconnectHandler(func(*nats.Conn) { <-ready; b.Reconnected() }))
	m := metrics.NewUnregistered()
	b, err := bus.New(nc, bus.Options{Logger: natstest.Quiet, Metrics: m, Stream: sc})
	close(ready)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.EnsureStream(ctx); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Source: b, Logger: natstest.Quiet, Metrics: m, RetryDelay: 50 * time.Millisecond}
	if edit != nil {
		edit(&o)
	}
	h := New(o)
	t.Cleanup(h.Close)
	return &fixture{hub: h, bus: b, m: m, js: js, ns: ns}
}

func (f *fixture) publish(t *testing.T, r wire.Room, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := f.js.Publish(ctx, f.bus.Subjects().Room(r), []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d}}`, n)))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func (f *fixture) room(r wire.Room) *room {
	sh := f.hub.shard(r.String())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.rooms[r.String()]
}

func (f *fixture) join(t *testing.T, r wire.Room, m Member) {
	t.Helper()
	if err := f.hub.Join(context.Background(), r, m, nil, func(Joined) {}); err != nil {
		t.Fatal(err)
	}
}

// liveMember joins a member to r and checks that a first event reaches it.
func (f *fixture) liveMember(t *testing.T, r wire.Room) *recorder {
	t.Helper()
	m := newRecorder()
	f.join(t, r, m)
	s1 := f.publish(t, r, 1)
	if got := m.next(t); got != s1 {
		t.Fatalf("first event: seq %d, want %d", got, s1)
	}
	return m
}

// A live message the node missed is backfilled from the stream before the
// next one is delivered.
func TestLiveGapIsBackfilledBeforeTheNextEvent(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := wire.MustRoom("pool:gap")
	m := f.liveMember(t, r)

	// Drop the node's live subscription for a moment: the next event is
	// stored but never reaches this node live.
	rm := f.room(r)
	if err := rm.unsubscribe(); err != nil {
		t.Fatal(err)
	}
	s2 := f.publish(t, r, 2)
	unsub, err := f.bus.SubscribeLive(r, func(ev *wire.Event) { f.hub.onLive(rm, ev) }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	rm.unsubscribe = unsub
	s3 := f.publish(t, r, 3)

	if got := m.next(t); got != s2 {
		t.Fatalf("after the gap: seq %d, want the missed %d first", got, s2)
	}
	if got := m.next(t); got != s3 {
		t.Fatalf("then: seq %d, want %d", got, s3)
	}
	if g, b := testutil.ToFloat64(f.m.Gaps), testutil.ToFloat64(f.m.Backfilled); g != 1 || b != 1 {
		t.Fatalf("gaps %v backfilled %v, want 1 and 1", g, b)
	}
}

// A live event already delivered is dropped.
func TestDuplicateLiveEventIsDropped(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := wire.MustRoom("pool:dup")
	m := f.liveMember(t, r)
	f.hub.onLive(f.room(r), &wire.Event{Room: r, Seq: f.room(r).last(), Name: "e"})
	s2 := f.publish(t, r, 2)
	if got := m.next(t); got != s2 {
		t.Fatalf("after a duplicate: seq %d, want %d", got, s2)
	}
	if d := testutil.ToFloat64(f.m.Duplicates); d != 1 {
		t.Fatalf("duplicates %v, want 1", d)
	}
}

// Resync (run after a NATS reconnection) delivers what the live feed missed
// even when nothing newer arrives to reveal the gap.
func TestResyncDeliversMissedEvents(t *testing.T) {
	f := newFixture(t, bus.StreamConfig{})
	r := wire.MustRoom("pool:resync")
	m := newRecorder()
	f.join(t, r, m)
	rm := f.room(r)
	if err := rm.unsubscribe(); err != nil {
		t.Fatal(err)
	}
	s1, s2 := f.publish(t, r, 1), f.publish(t, r, 2)
	f.hub.Resync()
	if a, b := m.next(t), m.next(t); a != s1 || b != s2 {
		t.Fatalf("resync delivered %d %d, want %d %d", a, b, s1, s2)
	}
}
