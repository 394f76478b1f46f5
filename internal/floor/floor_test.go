package floor_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/floor"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

const room = "bench:r0"

// start runs a floor on a real NATS server and returns it with a core NATS
// connection to publish on.
func start(t *testing.T, writeTimeout time.Duration) (*floor.Server, *nats.Conn) {
	t.Helper()
	ns := natstest.RunServer(t)
	s, err := floor.Start(floor.Options{NATSURL: ns.ClientURL(), WriteTimeout: writeTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, natstest.Connect(t, ns.ClientURL())
}

// subscribe dials s and subscribes to room, failing the test unless the
// response says so.
func subscribe(t *testing.T, s *floor.Server) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, s.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Subscribe("s", room, nil); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil || m.Type != wire.TypeResponse || m.ID != "s" || !strings.Contains(string(m.Data), `"channel":"`+room+`"`) {
		t.Fatalf("subscribe response %+v (%v)", m, err)
	}
	return c
}

// publish sends n events of room with core NATS, each carrying its number
// and pad bytes of padding.
func publish(t *testing.T, nc *nats.Conn, from, n, pad int) {
	t.Helper()
	subject := bus.Subjects{Prefix: bus.DefaultPrefix}.Room(wire.MustRoom(room))
	padding := strings.Repeat("x", pad)
	for i := from; i < from+n; i++ {
		if err := nc.Publish(subject, fmt.Appendf(nil, `{"event":"t.e","data":{"i":%d,"pad":"%s"}}`, i, padding)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// expect reads events from..from+n-1 of room, in order with seqs from
// from+1 on (the room's seq counts every event it delivered).
func expect(c *client.Conn, from, n int) error {
	for i := from; i < from+n; i++ {
		p, err := c.ReadText(time.Now().Add(20 * time.Second))
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		// Compared as written, not decoded: a slow reader would be dropped.
		want := fmt.Sprintf(`{"type":"event","event":"t.e","room":"%s","seq":%d,"data":{"i":%d,"pad":"`, room, i+1, i)
		if !strings.HasPrefix(string(p), want) {
			return fmt.Errorf("event %d: got %.100s, want %s...", i, p, want)
		}
	}
	return nil
}

func TestSubscribersReceiveEveryEventInOrder(t *testing.T) {
	s, nc := start(t, 0)
	conns := []*client.Conn{subscribe(t, s), subscribe(t, s), subscribe(t, s)}
	publish(t, nc, 0, 50, 0)
	for i, c := range conns {
		if err := expect(c, 0, 50); err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}
}

func TestRefusesWhatItDoesNotServe(t *testing.T) {
	s, _ := start(t, 0)
	c := subscribe(t, s)
	since := uint64(3)
	if err := c.Subscribe("r", room, &since); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil || m.Type != wire.TypeError || m.ID != "r" || !strings.Contains(string(m.Data), wire.CodeBadRequest) {
		t.Fatalf("subscribe with since: %+v (%v), want %s", m, err, wire.CodeBadRequest)
	}
	if err := c.Send(wire.Message{Type: wire.TypePing, ID: "p"}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Read(time.Now().Add(10 * time.Second)); err != nil || m.Type != wire.TypePong || m.ID != "p" {
		t.Fatalf("ping: %+v (%v), want a pong", m, err)
	}
}

// A client gone without a close, and one that stopped reading, are dropped;
// the others receive every event meanwhile.
func TestDeadMembersAreDroppedWithoutStallingTheOthers(t *testing.T) {
	s, nc := start(t, time.Second)
	live := []*client.Conn{subscribe(t, s), subscribe(t, s)}
	gone, stalled := subscribe(t, s), subscribe(t, s)
	natstest.WaitFor(t, 10*time.Second, func() error { return members(s, 4) })
	_ = gone.NetConn().Close()
	// Events of 64 KB: the stalled client's socket buffers fill within a
	// few megabytes, its write then times out, and it is dropped.
	const n, pad = 300, 64 << 10
	var wg sync.WaitGroup
	errs := make([]error, len(live))
	for i, c := range live {
		wg.Go(func() { errs[i] = expect(c, 0, n) })
	}
	publish(t, nc, 0, n, pad)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("live client %d: %v", i, err)
		}
	}
	natstest.WaitFor(t, 10*time.Second, func() error { return members(s, 2) })
	_ = stalled
}

func members(s *floor.Server, want int) error {
	if got := s.Members(); got != want {
		return fmt.Errorf("%d members, want %d", got, want)
	}
	return nil
}
