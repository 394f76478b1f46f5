package dashboard_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/servertest"
)

// dashName is a host name the browser resolves to 127.0.0.1 (and only the
// browser: its --host-resolver-rules), so a page reaches the node by a name
// as behind a DNS record, while everything stays on loopback.
const dashName = "dash.example.test"

// A page that reaches the node by a host name the node does not allow is
// told so before it connects, with the setting that fixes it, and shows
// "refused" instead of "reconnecting"; once the name is allowed
// (--allowed-origins) the same page goes live with no such warning.
func TestDashboardSaysItsOriginIsRefused(t *testing.T) {
	tab := browse(t, chromedp.Flag("host-resolver-rules", "MAP "+dashName+" 127.0.0.1"))
	refusing := servertest.Start(t, nil, nil)
	_, port, err := net.SplitHostPort(refusing.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + dashName + ":" + port
	run(t, tab, chromedp.Navigate(origin+"/?rooms="+poolRoom))
	st := watch(t, tab, "refusal shown", func(st pageState) error {
		if st.Conn != "refused" {
			return fmt.Errorf("connection shown as %q, want refused", st.Conn)
		}
		return nil
	})
	for _, want := range []string{"refuses", "--allowed-origins " + origin, "ROOMCAST_ALLOWED_ORIGINS=" + origin, "config.allowedOrigins"} {
		if !strings.Contains(st.Notice, want) {
			t.Errorf("notice %q does not say %q", st.Notice, want)
		}
	}
	if p := st.Panels[poolRoom]; p == nil || p.State != "subscribing" {
		t.Errorf("the room's panel: %+v, want waiting to subscribe", p)
	}
	screenshot(t, tab, "dashboard-origin-refused.png")

	allowing := servertest.Start(t, nil, func(c *config.Serve) {
		c.AllowedOrigins = config.List{"http://" + dashName + ":*"}
	})
	_, port, err = net.SplitHostPort(allowing.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	run(t, tab, chromedp.Navigate("http://"+dashName+":"+port+"/?rooms="+poolRoom))
	st = watch(t, tab, "live when allowed", connIs("live"))
	if strings.Contains(st.Notice, "refuses") {
		t.Errorf("an allowed page warns: %q", st.Notice)
	}
}

// The origin check is advice only: whatever a middlebox answers in its
// place (an error, no answer, something that is not JSON, markup in a
// setting, a refusal that is not true), the page still connects, as it
// did before the check, and shows nothing it was fed as markup.
func TestDashboardConnectsWhateverTheOriginCheckSays(t *testing.T) {
	tab := browse(t)
	node := servertest.Start(t, nil, nil)
	target, err := url.Parse("http://" + node.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	var answer atomic.Pointer[string] // the body served instead of the node's; "" a 500, "hang" none
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/origin-check" {
			proxy.ServeHTTP(w, r) // the page, and its WebSocket (the proxy passes upgrades)
			return
		}
		switch a := *answer.Load(); a {
		case "":
			http.Error(w, "oops", http.StatusInternalServerError)
		case "hang":
			<-r.Context().Done() // the page gives up waiting and connects
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(a))
		}
	}))
	t.Cleanup(front.Close)
	page := front.URL // http://127.0.0.1:port: a loopback page, which the node accepts
	for _, a := range []string{
		"",
		"hang",
		"not json",
		`{"origin":"` + page + `","allowed":false,"flag":"<img src=x onerror=document.title='owned'>","env":"ROOMCAST_ALLOWED_ORIGINS"}`,
		`{"origin":"` + page + `","allowed":false,"flag":"--allowed-origins","env":"ROOMCAST_ALLOWED_ORIGINS"}`,
	} {
		answer.Store(&a)
		run(t, tab, chromedp.Navigate(page+"/?rooms="+poolRoom))
		st := watch(t, tab, fmt.Sprintf("live with the answer %.40q", a), connIs("live"))
		if strings.Contains(st.Notice, "refuses") || strings.Contains(st.Notice, "<img") {
			t.Errorf("answer %.40q: notice %q once live", a, st.Notice)
		}
		if title := eval[string](t, tab, `document.title`); title != "roomcast" {
			t.Errorf("answer %.40q: the page ran what it was fed (title %q)", a, title)
		}
	}
}
