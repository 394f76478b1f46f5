package dashboard_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// On a node that requires tokens the page says it needs one, refuses a
// malformed room before sending it, and once a token is typed in follows
// the rooms the token allows and shows the others as forbidden.
func TestDashboardAsksForATokenAndHonoursItsPermissions(t *testing.T) {
	secret := []byte("a dashboard test secret of thirty-two bytes or more")
	tab := browse(t)
	node := servertest.Start(t, nil, func(c *config.Serve) { c.Auth.Secret = secret })
	signer, err := auth.NewHMACSigner(secret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	token, err := signer.Sign("dash-user", []string{"pool:read:p1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pub := events.NewPublisher(publishingBus(t, node.NATSURL()))

	run(t, tab, chromedp.Navigate("http://"+node.WSAddr()+"/?rooms=pool:p1,pool:p2"))
	watch(t, tab, "pool:p1", "pool:p2", "token asked for", func(st pageState) error {
		if st.Conn != "token" {
			return fmt.Errorf("connection shown as %q", st.Conn)
		}
		return nil
	})

	run(t, tab,
		chromedp.SendKeys(chromedp.CSS("#room"), "pool:not a room"),
		chromedp.Click(chromedp.CSS("#room-form button")),
	)
	natstest.WaitFor(t, browserWait, func() error {
		msg := eval[string](t, tab, `document.getElementById("room-error").hidden ? "" : document.getElementById("room-error").textContent`)
		if !strings.Contains(msg, "is not a room") {
			return fmt.Errorf("a malformed room got %q, want an explanation", msg)
		}
		return nil
	})

	run(t, tab,
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#token-form button")),
	)
	watch(t, tab, "pool:p1", "pool:p2", "rooms the token allows", func(st pageState) error {
		switch {
		case st.Conn != "live":
			return fmt.Errorf("connection shown as %q", st.Conn)
		case st.Pool == nil || st.Pool.State != "live":
			return errors.New("pool:p1 not live")
		case st.Flow == nil || st.Flow.State != "error":
			return errors.New("pool:p2 not refused")
		}
		return nil
	})
	forbidden := eval[string](t, tab, `document.querySelector('article[data-room="pool:p2"] .panel-error').textContent`)
	if !strings.HasPrefix(forbidden, "FORBIDDEN") {
		t.Errorf("pool:p2 shows %q, want FORBIDDEN", forbidden)
	}

	for _, pool := range []string{"p1", "p2"} {
		if _, err := pub.WorkerStatusChanged(t.Context(), events.WorkerStatus{WorkerID: pool + "-w1", Status: events.StatusBusy, PoolID: pool}); err != nil {
			t.Fatal(err)
		}
	}
	st := watch(t, tab, "pool:p1", "pool:p2", "the allowed room's event", func(st pageState) error {
		if st.Pool.Tiles["p1-w1"] != events.StatusBusy {
			return fmt.Errorf("tiles %v", st.Pool.Tiles)
		}
		return nil
	})
	if st.Flow.Events != 0 || len(st.Flow.Tiles) != 0 {
		t.Errorf("the forbidden room shows %d events, tiles %v", st.Flow.Events, st.Flow.Tiles)
	}
}
