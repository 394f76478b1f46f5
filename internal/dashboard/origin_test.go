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
// setting), the page ignores it and connects as it did before the check:
// live on a node that accepts it, "reconnecting" without a refusal shown on
// one that does not. A well-formed refusal that proves false is taken back
// once the page is live.
func TestDashboardConnectsWhateverTheOriginCheckSays(t *testing.T) {
	tab := browse(t)
	var answer atomic.Pointer[string] // the body served instead of the node's; "" a 500, "hang" none
	accepting := front(t, servertest.Start(t, nil, nil), &answer)
	refusing := front(t, servertest.Start(t, nil, func(c *config.Serve) {
		c.AllowedOrigins = config.List{"https://elsewhere.example"}
	}), &answer)
	refusal := func(page, flag string) string {
		return `{"origin":"` + page + `","allowed":false,"flag":"` + flag + `","env":"ROOMCAST_ALLOWED_ORIGINS"}`
	}
	for _, kind := range []string{"", "hang", "not json", "markup"} {
		for _, page := range []string{accepting, refusing} {
			a := kind
			if kind == "markup" {
				a = refusal(page, "<img src=x onerror=document.title='owned'>")
			}
			answer.Store(&a)
			run(t, tab, chromedp.Navigate(page+"/?rooms="+poolRoom))
			want := "live"
			if page == refusing {
				want = "reconnecting"
			}
			st := watch(t, tab, fmt.Sprintf("%s with the answer %.40q", want, a), connIs(want))
			if st.Notice != "" {
				t.Errorf("answer %.40q: notice %q", a, st.Notice)
			}
			if title := eval[string](t, tab, `document.title`); title != "roomcast" {
				t.Errorf("answer %.40q: the page ran what it was fed (title %q)", a, title)
			}
		}
	}
	a := refusal(accepting, "--allowed-origins")
	answer.Store(&a)
	run(t, tab, chromedp.Navigate(accepting+"/?rooms="+poolRoom))
	if st := watch(t, tab, "live despite a false refusal", connIs("live")); strings.Contains(st.Notice, "refuses") {
		t.Errorf("the false refusal is still shown once live: %q", st.Notice)
	}
}

// front serves node's page and WebSocket through a reverse proxy on
// loopback that answers the origin check itself, with answer, and returns
// the proxy's URL: a loopback page, whose origin the node's default
// policy accepts.
func front(t *testing.T, node interface{ WSAddr() string }, answer *atomic.Pointer[string]) string {
	t.Helper()
	target, err := url.Parse("http://" + node.WSAddr())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	t.Cleanup(srv.Close)
	return srv.URL
}
