package dashboard_test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/auth"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/servertest"
)

// readCluster is the script that reads the cluster view as the page shows
// it: each node with its connections, "hidden" while the view is.
const readCluster = `document.getElementById("cluster").hidden ? "hidden:" + (document.getElementById("cluster").dataset.state ?? "") :
	[...document.querySelectorAll("#cluster .cluster-nodes tr[data-node]")].map((tr) => tr.dataset.node + "=" + tr.children[2].textContent).join(" ")`

// On a node without auth the page shows the cluster view: the node, with
// the page's own connection.
func TestDashboardShowsTheCluster(t *testing.T) {
	tab := browse(t)
	node := servertest.Start(t, nil, func(c *config.Serve) { c.ServerName = "dash-node" })
	run(t, tab, chromedp.Navigate("http://"+node.WSAddr()+"/"))
	waitFor(t, tab, "the cluster view", readCluster, "dash-node=1")
}

// With auth, a token without admin gets no cluster view (the node says
// FORBIDDEN); the same user's token refreshed with admin gets it.
func TestDashboardClusterViewNeedsAdmin(t *testing.T) {
	secret := []byte("a dashboard test secret of thirty-two bytes or more")
	tab := browse(t)
	node := servertest.Start(t, nil, func(c *config.Serve) {
		c.ServerName = "guarded-node"
		c.Auth.Secret = secret
	})
	signer, err := auth.NewHMACSigner(secret, auth.SignerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := signer.Sign("operator", []string{"pool:read"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := signer.Sign("operator", []string{"admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	run(t, tab, chromedp.Navigate("http://"+node.WSAddr()+"/"))
	run(t, tab,
		chromedp.SendKeys(chromedp.CSS("#token"), reader),
		chromedp.Click(chromedp.CSS("#token-form button")),
	)
	waitFor(t, tab, "the cluster view for pool:read", readCluster, "hidden:forbidden")
	eval[string](t, tab, `document.getElementById("token").value = ""`)
	run(t, tab,
		chromedp.SendKeys(chromedp.CSS("#token"), admin),
		chromedp.Click(chromedp.CSS("#token-form button")),
	)
	waitFor(t, tab, "the cluster view for admin", readCluster, "guarded-node=1")
}
