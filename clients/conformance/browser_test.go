package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/browsertest"
)

// The package's one headless Chromium, started by the first JavaScript
// scenario and stopped by TestMain; each runner gets a tab of its own.
var (
	browserOnce   sync.Once
	browserCtx    context.Context
	browserErr    error
	browserCancel = func() {}

	staticOnce sync.Once
	staticURL  string
	staticStop = func() {}
)

// stopBrowser ends the browser and the static server, if they started.
func stopBrowser() {
	browserCancel()
	staticStop()
}

// browser starts the package's Chromium once.
func browser(t testing.TB) context.Context {
	t.Helper()
	path := browsertest.Path(t)
	browserOnce.Do(func() {
		browserCtx, browserCancel, browserErr = browsertest.Start(browsertest.Options(path), nodeWait)
		if browserErr != nil {
			browserCancel = func() {}
		}
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return browserCtx
}

// staticServer serves the module root's clients/ directory at /js/... and
// /python/...: the runner page loads the module relative to itself.
func staticServer() string {
	staticOnce.Do(func() {
		srv := httptest.NewServer(http.StripPrefix("/", http.FileServer(http.Dir(filepath.Join(repoRoot, "clients")))))
		staticURL, staticStop = srv.URL, srv.Close
	})
	return staticURL
}

// tab is one page of the browser.
type tab struct {
	t      testing.TB
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex
	log []string // console output and uncaught exceptions
}

// openTab opens url in a new tab.
func openTab(t testing.TB, url string) *tab {
	t.Helper()
	tb := &tab{t: t}
	tb.ctx, tb.cancel = chromedp.NewContext(browser(t), chromedp.WithListener(tb.listen))
	// The first action on a context makes its tab, which lives as long as
	// that action's context: the tab's own, not the bounded one below.
	if err := chromedp.Do(tb.ctx); err != nil {
		tb.cancel()
		t.Fatalf("open a tab: %v", err)
	}
	nav, cancelNav := context.WithTimeout(tb.ctx, nodeWait)
	defer cancelNav()
	if err := chromedp.Do(nav, chromedp.Navigate(url)); err != nil {
		tb.cancel()
		t.Fatalf("open %s: %v", url, err)
	}
	return tb
}

func (tb *tab) listen(ev any) {
	var line string
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range e.Args {
			parts = append(parts, strings.Trim(string(a.Value), `"`))
		}
		line = string(e.Type) + ": " + strings.Join(parts, " ")
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		line = fmt.Sprintf("exception: %s %s:%d", d.Text, d.URL, d.LineNumber+1)
		if d.Exception != nil {
			line += " " + d.Exception.Description
		}
	default:
		return
	}
	tb.mu.Lock()
	tb.log = append(tb.log, line)
	tb.mu.Unlock()
}

// console is what the page printed and threw.
func (tb *tab) console() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return strings.Join(tb.log, "\n")
}

// poll drains window.records every 50 ms into add until stop closes.
func (tb *tab) poll(stop <-chan struct{}, add func(record)) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		// A paused page (data.pause_ms) blocks its thread: the call waits.
		ctx, cancel := context.WithTimeout(tb.ctx, nodeWait)
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]json.RawMessage](`window.records ? window.records.splice(0) : []`))
		cancel()
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			add(record{Kind: "garbled", Text: "read the page's records: " + err.Error()})
			continue
		}
		for _, m := range raw {
			var r record
			if err := json.Unmarshal(m, &r); err != nil {
				add(record{Kind: "garbled", Text: string(m)})
				continue
			}
			add(r)
		}
	}
}

// close closes the tab, and with it the page's connections.
func (tb *tab) close() { tb.cancel() }
