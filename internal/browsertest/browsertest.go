// Package browsertest starts headless Chromium for the tests that drive a
// page (the dashboard's, the JavaScript client library's): Debian's
// chromium, which .ci/run installs.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is the browser's executable. Without one the test cannot run:
// under CI=true that fails it, elsewhere it is skipped, saying how to
// install one.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: .ci/run installs Debian's chromium package")
	}
	t.Skip("no chromium on PATH (apt-get install chromium); CI=true makes this a failure")
	return ""
}

// Options are what every test browser starts with, the executable at
// path, then extra: headless, no sandbox (tests run as root, where it
// cannot start), no GPU, and background tabs' timers not throttled (a
// test may drive several tabs at once).
func Options(path string, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	)
	return append(opts, extra...)
}

// Start starts a browser with opts and returns its first tab once the
// browser runs, within wait; stop ends the browser.
func Start(opts []chromedp.ExecAllocatorOption, wait time.Duration) (tab context.Context, stop func(), err error) {
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(alloc)
	stop = func() {
		cancelTab()
		cancelAlloc()
	}
	// The first action starts the browser, which lives as long as that
	// action's context: it gets the tab's own, and the wait is bounded
	// here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab) }()
	select {
	case err = <-started:
	case <-time.After(wait):
		err = fmt.Errorf("chromium did not start within %s", wait)
	}
	if err != nil {
		stop()
		return nil, nil, errors.Join(errors.New("start chromium"), err)
	}
	return tab, stop, nil
}
