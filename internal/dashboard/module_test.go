package dashboard_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/servertest"
)

// A page of another origin imports the client library from a node, as
// clients/js/README.md says it may: the node serves it at /roomcast.js
// with CORS (without that header the import fails).
func TestANodeServesTheClientModuleToOtherOrigins(t *testing.T) {
	node := servertest.Start(t, nil, nil)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>another origin</title>")
	}))
	t.Cleanup(other.Close)
	tab := browse(t)
	run(t, tab, chromedp.Navigate(other.URL))
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`import("http://`+node.WSAddr()+`/roomcast.js").then((m) => typeof m.Client, (e) => String(e))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if got != "function" {
		t.Fatalf("import from the node: %s", got)
	}
}
