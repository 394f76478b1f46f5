package server_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// While NATS is down, /readyz and new subscribes say UNAVAILABLE and
// connected clients stay; after it comes back, events published meanwhile
// (and after) reach them.
func TestNATSOutage(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, nil)
	c := dial(t, srv)
	const room = "pool:outage"
	subscribe(t, c, room, nil)
	pub := newPublisher(t, ns.ClientURL())
	s1 := pub.event(room, "e", 0)
	if m := readEvents(t, c, 1)[0]; m.Seq != s1 {
		t.Fatalf("seq %d, want %d", m.Seq, s1)
	}

	addr, dir := ns.Addr().String(), ns.JetStreamConfig().StoreDir
	ns.Shutdown()
	ns.WaitForShutdown()
	waitReady(t, srv.AdminAddr(), http.StatusServiceUnavailable)

	other := dial(t, srv)
	if err := other.Subscribe("s-down", "pool:other", nil); err != nil {
		t.Fatal(err)
	}
	expectError(t, other, "s-down", wire.CodeUnavailable)
	if err := c.Send(wire.Message{Type: wire.TypePing, ID: "alive"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypePong {
		t.Fatalf("connected client during the outage: %+v", m)
	}

	ns = natstest.RunServerAt(t, addr, dir)
	pub = newPublisher(t, ns.ClientURL())
	var want []uint64
	for i := 1; i <= 20; i++ {
		want = append(want, pub.event(room, "e", i))
	}
	waitReady(t, srv.AdminAddr(), http.StatusOK)
	for i, m := range readEvents(t, c, len(want)) {
		if m.Seq != want[i] {
			t.Fatalf("after the outage, event %d: seq %d, want %d", i, m.Seq, want[i])
		}
	}
}

func waitReady(t *testing.T, admin string, status int) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			return fmt.Errorf("/readyz %d, want %d", resp.StatusCode, status)
		}
		return nil
	})
}
