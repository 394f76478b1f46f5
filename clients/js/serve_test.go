package roomcastjs_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/servertest"
)

// A page of another origin imports the module from a node, as the README
// says it may: the node serves it at /roomcast.js with CORS.
func TestANodeServesTheModuleToOtherOrigins(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, nil, nil)
	page := tab(t)
	ctx, cancel := context.WithTimeout(page, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(site(t, nil)+"/test/")); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`import("http://`+node.WSAddr()+`/roomcast.js").then((m) => typeof m.Client, (e) => String(e))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if got != "function" {
		t.Fatalf("import from the node: %s", got)
	}
}
