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
	watch(t, tab, "token asked for", connIs("token"))

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
	watch(t, tab, "rooms the token allows", func(st pageState) error {
		allowed, refused := st.Panels["pool:p1"], st.Panels["pool:p2"]
		switch {
		case st.Conn != "live":
			return fmt.Errorf("connection shown as %q", st.Conn)
		case allowed == nil || allowed.State != "live":
			return errors.New("pool:p1 not live")
		case refused == nil || refused.State != "error" || !strings.HasPrefix(refused.Error, "FORBIDDEN"):
			return fmt.Errorf("pool:p2 not refused as forbidden: %+v", refused)
		}
		return nil
	})

	for _, pool := range []string{"p1", "p2"} {
		if _, err := pub.WorkerStatusChanged(t.Context(), events.WorkerStatus{WorkerID: pool + "-w1", Status: events.StatusBusy, PoolID: pool}); err != nil {
			t.Fatal(err)
		}
	}
	st := watch(t, tab, "the allowed room's event", func(st pageState) error {
		if tiles := st.Panels["pool:p1"].Tiles; tiles["p1-w1"] != events.StatusBusy {
			return fmt.Errorf("tiles %v", tiles)
		}
		return nil
	})
	if refused := st.Panels["pool:p2"]; refused.Events != 0 || len(refused.Tiles) != 0 {
		t.Errorf("the forbidden room shows %d events, tiles %v", refused.Events, refused.Tiles)
	}
}
