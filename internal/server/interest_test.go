package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The node subscribes to a room's live subject on the first local member and
// unsubscribes when the last one leaves, whether by unsubscribe or by
// dropping the connection.
func TestLiveSubscriptionFollowsMembership(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, nil)
	const live = "roomcast.live.pool.interest"
	interest := func(want bool) {
		t.Helper()
		natstest.WaitFor(t, 10*time.Second, func() error {
			if got := ns.GlobalAccount().SubscriptionInterest(live); got != want {
				return fmt.Errorf("interest in %s is %v, want %v", live, got, want)
			}
			return nil
		})
	}
	interest(false)

	c1, c2 := dial(t, srv), dial(t, srv)
	subscribe(t, c1, "pool:interest", nil)
	interest(true)
	subscribe(t, c2, "pool:interest", nil)
	if n := srv.Hub().Members(wire.MustRoom("pool:interest")); n != 2 {
		t.Fatalf("members: %d, want 2", n)
	}

	if err := c1.Request(wire.EventUnsubscribe, "u1", map[string]string{"channel": "pool:interest"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c1); m.Type != wire.TypeResponse || m.ID != "u1" {
		t.Fatalf("unsubscribe: got %+v %s", m, m.Data)
	}
	interest(true) // c2 is still a member

	// c2 goes away without unsubscribing.
	_ = c2.NetConn().Close()
	interest(false)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if n := srv.Hub().Rooms(); n != 0 {
			return fmt.Errorf("%d rooms left on the node", n)
		}
		return nil
	})

	// A new first member subscribes again.
	subscribe(t, c1, "pool:interest", nil)
	interest(true)
}
