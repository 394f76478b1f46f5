package dashboard_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// readActive is the script that reads the node's room list as the page
// shows it: the rooms, in order.
const readActive = `[...document.querySelectorAll("#active li[data-room]")].map((li) => li.dataset.room).join(" ")`

// The page lists the node's rooms with recent events that its token may
// read, newest first, and a click on one opens it.
func TestDashboardListsTheRoomsItsTokenMayRead(t *testing.T) {
	secret := []byte("a dashboard test secret of thirty-two bytes or more")
	tab := browse(t)
	node := servertest.Start(t, nil, func(c *config.Serve) { c.Auth.Secret = secret })
	signer, err := auth.NewHMACSigner(secret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token, err := signer.Sign("dash-user", []string{"pool:read:p1", "workflow:read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(publishingBus(t, node.NATSURL()))
	for _, pool := range []string{"p1", "p2"} {
		if _, err := pub.WorkerStatusChanged(t.Context(), events.WorkerStatus{WorkerID: pool + "-w1", Status: events.StatusBusy, PoolID: pool}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pub.WorkflowStarted(t.Context(), events.WorkflowStart{WorkflowID: "w1"}); err != nil {
		t.Fatal(err)
	}

	run(t, tab, chromedp.Navigate("http://"+node.WSAddr()+"/"))
	run(t, tab,
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#token-form button")),
	)
	waitFor(t, tab, "the room list", readActive, "workflow:w1 pool:p1")

	run(t, tab, chromedp.Click(chromedp.CSS(`#active a[data-room="pool:p1"]`)))
	watch(t, tab, "the room opened from the list", func(st pageState) error {
		p := st.Panels["pool:p1"]
		if p == nil || p.State != "live" || p.Tiles["p1-w1"] != events.StatusBusy {
			return fmt.Errorf("pool:p1 panel %+v", p)
		}
		if len(st.Panels) != 1 {
			return fmt.Errorf("panels %v, want pool:p1 alone", st.Panels)
		}
		return nil
	})
}

// waitFor evaluates script until it gives want.
func waitFor(t *testing.T, tab context.Context, what, script, want string) {
	t.Helper()
	natstest.WaitFor(t, browserWait, func() error {
		if got := eval[string](t, tab, script); got != want {
			return fmt.Errorf("%s: %q, want %q", what, got, want)
		}
		return nil
	})
}
