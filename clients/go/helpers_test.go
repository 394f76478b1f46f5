package roomcast_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	roomcast "github.com/roomcast/roomcast/clients/go"
	"github.com/roomcast/roomcast/internal/natstest"
)

// wait bounds every wait of these tests: generous, for two busy cores.
const wait = 40 * time.Second

// follower runs a client and collects what Next hands over, on a
// goroutine that the test's end stops.
type follower struct {
	c *roomcast.Client

	mu      sync.Mutex
	msgs    []roomcast.Message
	err     error         // Next's final error
	paused  chan struct{} // set: Next is not called until it is closed
	stopped chan struct{}
}

// follow connects with opts and subscribes rooms, each with sub.
func follow(t *testing.T, opts roomcast.Options, sub roomcast.SubscribeOptions, rooms ...string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := roomcast.Connect(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, r := range rooms {
		if err := c.Subscribe(r, sub); err != nil {
			t.Fatal(err)
		}
	}
	f := &follower{c: c, stopped: make(chan struct{})}
	go f.collect(ctx)
	t.Cleanup(func() {
		_ = c.Close()
		cancel()
		<-f.stopped
	})
	return f
}

// collect calls Next until it fails.
func (f *follower) collect(ctx context.Context) {
	defer close(f.stopped)
	for {
		f.mu.Lock()
		p := f.paused
		f.mu.Unlock()
		if p != nil {
			<-p
		}
		m, err := f.c.Next(ctx)
		f.mu.Lock()
		if err != nil {
			f.err = err
			f.mu.Unlock()
			return
		}
		f.msgs = append(f.msgs, m)
		f.mu.Unlock()
	}
}

// pause stops calling Next (after the call under way); the returned
// function resumes.
func (f *follower) pause() (resume func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.paused = ch
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.paused = nil
		f.mu.Unlock()
		close(ch)
	}
}

// snapshot is what was handed over so far, and the final error.
func (f *follower) snapshot() ([]roomcast.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]roomcast.Message(nil), f.msgs...), f.err
}

// events are the events handed over so far.
func (f *follower) events() []*roomcast.Event {
	return handedOver[*roomcast.Event](f, func(*roomcast.Event) bool { return true })
}

// notices are the notices of kind handed over so far.
func (f *follower) notices(kind roomcast.NoticeKind) []*roomcast.Notice {
	return handedOver[*roomcast.Notice](f, func(n *roomcast.Notice) bool { return n.Kind == kind })
}

// subscribed are the subscribe responses handed over so far.
func (f *follower) subscribed() []*roomcast.Subscribed {
	return handedOver[*roomcast.Subscribed](f, func(*roomcast.Subscribed) bool { return true })
}

// handedOver is what f was handed so far of type M that keep accepts.
func handedOver[M roomcast.Message](f *follower, keep func(M) bool) []M {
	msgs, _ := f.snapshot()
	var out []M
	for _, m := range msgs {
		if v, ok := m.(M); ok && keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// waitFor polls cond until it is nil, for at most wait.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, wait, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitEvents waits until n events were handed over.
func (f *follower) waitEvents(t *testing.T, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events", n), func() error {
		if got := len(f.events()); got < n {
			return fmt.Errorf("%d events", got)
		}
		return nil
	})
}

// waitNotice waits for the n-th notice of kind and returns it.
func (f *follower) waitNotice(t *testing.T, kind roomcast.NoticeKind, n int) *roomcast.Notice {
	t.Helper()
	var got []*roomcast.Notice
	waitFor(t, fmt.Sprintf("notice %s #%d", kind, n), func() error {
		if got = f.notices(kind); len(got) < n {
			return fmt.Errorf("%d %s notices", len(got), kind)
		}
		return nil
	})
	return got[n-1]
}

// waitSubscribed waits for the n-th subscribe response.
func (f *follower) waitSubscribed(t *testing.T, n int) *roomcast.Subscribed {
	t.Helper()
	var got []*roomcast.Subscribed
	waitFor(t, fmt.Sprintf("subscribe response #%d", n), func() error {
		if got = f.subscribed(); len(got) < n {
			return fmt.Errorf("%d responses", len(got))
		}
		return nil
	})
	return got[n-1]
}

// waitStop waits until Next fails, and returns its error.
func (f *follower) waitStop(t *testing.T) error {
	t.Helper()
	select {
	case <-f.stopped:
	case <-time.After(wait):
		t.Fatalf("the client did not stop within %s", wait)
	}
	_, err := f.snapshot()
	return err
}

// stopError is err as a *StopError, or fails the test.
func stopError(t *testing.T, err error) *roomcast.StopError {
	t.Helper()
	var se *roomcast.StopError
	if !errors.As(err, &se) {
		t.Fatalf("the client ended with %v, want a *StopError", err)
	}
	return se
}

// numbers is each event's data.n.
func numbers(t *testing.T, events []*roomcast.Event) []int {
	t.Helper()
	out := make([]int, len(events))
	for i, e := range events {
		var d struct{ N *int }
		if err := json.Unmarshal(e.Data, &d); err != nil || d.N == nil {
			t.Fatalf("event %d has data %s", e.Seq, e.Data)
		}
		out[i] = *d.N
	}
	return out
}

// checkOnceInOrder fails unless the events are n = 0, 1, ..., count-1.
func checkOnceInOrder(t *testing.T, events []*roomcast.Event, count int) {
	t.Helper()
	got := numbers(t, events)
	for i, n := range got {
		if n != i {
			t.Fatalf("event %d is n=%d: a gap or a duplicate (%v)", i, n, got)
		}
	}
	if len(got) != count {
		t.Fatalf("%d events, want %d", len(got), count)
	}
}

// publisher stores numbered events in rooms through JetStream.
type publisher struct {
	t  *testing.T
	js jetstream.JetStream
	n  int
}

func newPublisher(t *testing.T, ns *natsserver.Server) *publisher {
	t.Helper()
	return newPublisherAt(t, ns.ClientURL())
}

func newPublisherAt(t *testing.T, url string) *publisher {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return &publisher{t: t, js: js}
}

// publish stores the next numbered event in room, with extra fields in its
// data (`"pad": "..."`), and returns its seq.
func (p *publisher) publish(room string, extra string) uint64 {
	p.t.Helper()
	kind, id, _ := strings.Cut(room, ":")
	data := fmt.Sprintf(`{"n":%d%s}`, p.n, extra)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: "roomcast.rooms." + kind + "." + id,
		Data: []byte(`{"event":"e","data":` + data + `}`)})
	if err != nil {
		p.t.Fatalf("publish %d: %v", p.n, err)
	}
	p.n++
	return ack.Sequence
}

// smallBuffer dials with a receive buffer of size bytes, set before the
// connection so the window never grows: a client that stops reading
// fills it quickly.
func smallBuffer(size int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return d.DialContext
}
