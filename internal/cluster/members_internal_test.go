package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
)

// Every restart of a peer is a new id. The rebalancer reads Members ten
// times a second and nothing else may ever call Peers (no one runs top):
// Members must forget the peers gone for Expiry intervals too, or the map
// grows by one entry per restart for the life of the node, and each tick
// walks them all.
func TestMembersForgetsStoppedPeers(t *testing.T) {
	const interval = 50 * time.Millisecond
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	opts := func(name string) Options {
		return Options{Conn: nc, Prefix: "roomcast", Name: name, Interval: interval,
			Local: func() Status { return Status{Ready: true} }}
	}
	a, err := Start(opts("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	const restarts = 10
	for i := range restarts {
		b, err := Start(opts("b"))
		if err != nil {
			t.Fatal(err)
		}
		natstest.WaitFor(t, 5*time.Second, func() error {
			for _, m := range a.Members() {
				if m.ID == b.ID() {
					return nil
				}
			}
			return fmt.Errorf("run %d of b not heard", i)
		})
		b.Close()
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := len(a.Members()); got != 1 {
			return fmt.Errorf("%d members, want a alone", got)
		}
		return nil
	})
	a.mu.Lock()
	kept := len(a.peers)
	a.mu.Unlock()
	if kept != 0 {
		t.Fatalf("a keeps %d peers gone for longer than %d intervals", kept, Expiry)
	}
}
