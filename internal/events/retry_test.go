package events_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// quick retries, for tests.
var quick = events.RetryOptions{Attempt: 500 * time.Millisecond, MinWait: 10 * time.Millisecond, MaxWait: 100 * time.Millisecond}

// A publish made while NATS is down is retried until NATS is back, then
// stored once, and the retries are counted.
func TestRetryingRidesOutANATSRestart(t *testing.T) {
	ns := natstest.RunServer(t)
	b := bustest.On(t, natstest.Connect(t, ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond)))
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr, dir := ns.Addr().String(), ns.JetStreamConfig().StoreDir
	ns.Shutdown()
	ns.WaitForShutdown()

	rs := events.NewRetrying(b, quick)
	p := events.NewPublisher(rs)
	done := make(chan error, 1)
	var seq uint64
	go func() {
		var err error
		seq, err = p.WorkerStatusChanged(t.Context(), events.WorkerStatus{WorkerID: "w1", Status: "busy", PoolID: "p1"})
		done <- err
	}()
	natstest.WaitFor(t, 20*time.Second, func() error {
		if rs.Stats().Retries < 2 {
			return errors.New("no retries yet")
		}
		return nil
	})
	natstest.RunServerAt(t, addr, dir)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("publish across the restart: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("publish still retrying 60 s after NATS came back")
	}
	if st := rs.Stats(); st.Recovered != 1 || st.GaveUp != 0 {
		t.Fatalf("stats %+v, want one event recovered, none given up", st)
	}
	if n := countStored(t, b, "pool:p1"); n != 1 || seq == 0 {
		t.Fatalf("stored %d events (seq %d), want 1", n, seq)
	}
}

// An event still not stored when its time is up is given up with
// ErrGaveUp, and counted.
func TestRetryingGivesUpInTime(t *testing.T) {
	ns := natstest.RunServer(t)
	b := bustest.On(t, natstest.Connect(t, ns.ClientURL(), nats.MaxReconnects(-1)))
	ns.Shutdown()
	ns.WaitForShutdown()
	opts := quick
	opts.Attempt, opts.GiveUp = 50*time.Millisecond, 400*time.Millisecond
	rs := events.NewRetrying(b, opts)
	_, err := events.NewPublisher(rs).WorkerStatusChanged(t.Context(), events.WorkerStatus{WorkerID: "w1", Status: "busy", PoolID: "p1"})
	if !errors.Is(err, events.ErrGaveUp) {
		t.Fatalf("err %v, want ErrGaveUp", err)
	}
	if st := rs.Stats(); st.GaveUp != 1 || st.Retries == 0 {
		t.Fatalf("stats %+v, want one given up after retries", st)
	}
}

// An error that retrying cannot pass (here a payload the bus refuses) is
// returned at once, not retried.
func TestRetryingReturnsLastingErrorsAtOnce(t *testing.T) {
	b := bustest.New(t)
	rs := events.NewRetrying(b, quick)
	if _, err := rs.Publish(t.Context(), wire.MustRoom("pool:p1"), []byte(`not json`), wire.PublishOptions{}); err == nil || events.Transient(err) {
		t.Fatalf("err %v, want a lasting error", err)
	}
	if st := rs.Stats(); st.Retries != 0 {
		t.Fatalf("a lasting error was retried: %+v", st)
	}
}

// lostAck stores through the bus but reports the first try as timed out,
// as when a publish's acknowledgement is lost: a fake for a fault that
// cannot be produced on demand with a real server.
type lostAck struct {
	b     *bus.Bus
	tries atomic.Int32
}

func (l *lostAck) Publish(ctx context.Context, r wire.Room, payload []byte, o wire.PublishOptions) (uint64, error) {
	seq, err := l.b.Publish(ctx, r, payload, o)
	if l.tries.Add(1) == 1 && err == nil {
		return 0, context.DeadlineExceeded
	}
	return seq, err
}

// A retry after a lost acknowledgement carries the first try's message id,
// so the stream does not store the event twice.
func TestRetryingKeepsTheMessageID(t *testing.T) {
	b := bustest.New(t)
	rs := events.NewRetrying(&lostAck{b: b}, quick)
	seq, err := events.NewPublisher(rs).TaskCompleted(t.Context(), events.TaskOutcome{TaskID: "t1", WorkerID: "w1", PoolID: "p1", Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if n := countStored(t, b, "pool:p1"); n != 1 || seq != 1 {
		t.Fatalf("stored %d events, last seq %d; want 1 at seq 1", n, seq)
	}
	if st := rs.Stats(); st.Retries != 1 || st.Recovered != 1 {
		t.Fatalf("stats %+v, want one retry, one recovered", st)
	}
}

// countStored is the number of events stored in room r.
func countStored(t *testing.T, b *bus.Bus, r string) int {
	t.Helper()
	n := 0
	_, err := b.Replay(t.Context(), wire.MustRoom(r), 0, 1<<40, func(*wire.Event) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", r, err)
	}
	return n
}
