package roomcastjs_test

// The module's tests drive it in headless Chromium through its conformance
// runner (test/runner.html, the page clients/conformance drives too): a
// test serves this directory over HTTP on loopback, opens the runner with
// a configuration, and reads the records the runner pushes. One browser
// serves the whole package, a tab per test, so the tests run in parallel.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/natstest"
)

// wait bounds every wait on a page: generous, for two busy cores running
// a browser, nodes and the race detector.
const wait = 45 * time.Second

var browser struct {
	once   sync.Once
	ctx    context.Context // the browser's first tab: new tabs are made from it
	err    error
	cancel func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// chromium finds the browser, Debian's chromium. Without it the tests
// cannot run; under CI=true that fails the run.
func chromium(t *testing.T) string {
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

// tab opens a new tab of the package's browser, closed when the test ends.
func tab(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	browser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // tests run as root, where the sandbox cannot start
			chromedp.DisableGPU,
			// Background tabs must keep their timers: every test's tab
			// runs at once.
			chromedp.Flag("disable-background-timer-throttling", true),
			chromedp.Flag("disable-renderer-backgrounding", true),
			chromedp.Flag("disable-backgrounding-occluded-windows", true),
		)
		dir, err := os.MkdirTemp("", "roomcastjs-chromium")
		if err != nil {
			browser.err = err
			return
		}
		opts = append(opts, chromedp.UserDataDir(dir))
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancelCtx := chromedp.NewContext(alloc)
		browser.ctx = ctx
		browser.cancel = func() {
			cancelCtx()
			cancelAlloc()
			_ = os.RemoveAll(dir)
		}
		started := make(chan error, 1)
		go func() { started <- chromedp.Do(ctx) }()
		select {
		case browser.err = <-started:
		case <-time.After(wait):
			browser.err = fmt.Errorf("chromium did not start within %s", wait)
		}
	})
	if browser.err != nil {
		t.Fatalf("start chromium: %v", browser.err)
	}
	ctx, cancel := chromedp.NewContext(browser.ctx)
	t.Cleanup(cancel)
	// The first action on a tab makes it, and the tab lives as long as
	// that action's context: it gets the tab's own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}

// runnerConfig is a runner's configuration (clients/conformance/README.md).
type runnerConfig struct {
	URLs         []string     `json:"urls"`
	Rooms        []roomConfig `json:"rooms"`
	Token        string       `json:"token,omitempty"`
	RefreshURL   string       `json:"refresh_url,omitempty"`
	BackoffMinMS int          `json:"backoff_min_ms,omitempty"`
	BackoffMaxMS int          `json:"backoff_max_ms,omitempty"`
}

type roomConfig struct {
	Room     string `json:"room"`
	History  bool   `json:"history,omitempty"`
	State    bool   `json:"state,omitempty"`
	Conflate bool   `json:"conflate,omitempty"`
}

// record is one thing the runner reports; which fields are set depends
// on Kind.
type record struct {
	Kind      string `json:"kind"`
	Room      string `json:"room"`
	Seq       uint64 `json:"seq"`
	Event     string `json:"event"`
	N         int    `json:"n"`
	Conflated int    `json:"conflated"`
	Epoch     string `json:"epoch"`
	Replayed  int    `json:"replayed"`
	Recovered bool   `json:"recovered"`
	Resumed   bool   `json:"resumed"`
	State     int    `json:"state"`
	Notice    string `json:"notice"`
	Code      int    `json:"code"`
	Error     string `json:"error"`
	Text      string `json:"text"`
}

func (r record) String() string {
	switch r.Kind {
	case "event":
		return fmt.Sprintf("event %s #%d seq %d", r.Room, r.N, r.Seq)
	case "subscribed":
		return fmt.Sprintf("subscribed %s seq %d resumed %v recovered %v replayed %d", r.Room, r.Seq, r.Resumed, r.Recovered, r.Replayed)
	case "notice":
		return fmt.Sprintf("notice %s %d %s %s %q", r.Notice, r.Code, r.Error, r.Room, r.Text)
	}
	return fmt.Sprintf("%s %d %q", r.Kind, r.Code, r.Text)
}

// runner is the runner page in a tab, and what it reported so far.
type runner struct {
	t       *testing.T
	tab     context.Context
	records []record
}

// site serves this directory (the module and the runner) on loopback,
// with extra handlers (a refresh endpoint), and returns its URL. A
// loopback page's origin is one a node allows by default.
func site(t *testing.T, extra map[string]http.HandlerFunc) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(".")))
	for path, h := range extra {
		mux.HandleFunc(path, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// startRunner opens the runner with cfg, served by base (site), and waits
// for its ready record.
func startRunner(t *testing.T, base string, cfg runnerConfig) *runner {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, tab: tab(t)}
	ctx, cancel := context.WithTimeout(r.tab, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/test/runner.html?config="+url.QueryEscape(string(b)))); err != nil {
		t.Fatal(err)
	}
	r.waitFor("ready", func([]record) error {
		if len(r.records) == 0 || r.records[0].Kind != "ready" {
			return fmt.Errorf("records %v, want ready first", r.records)
		}
		return nil
	})
	return r
}

// read takes the records the page has pushed since the last read.
func (r *runner) read() error {
	ctx, cancel := context.WithTimeout(r.tab, 5*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]record](`(window.records || []).splice(0)`))
	if err != nil {
		return err
	}
	r.records = append(r.records, got...)
	return nil
}

// waitFor reads records until cond accepts all of them so far.
func (r *runner) waitFor(what string, cond func([]record) error) {
	r.t.Helper()
	natstest.WaitFor(r.t, wait, func() error {
		if err := r.read(); err != nil {
			return fmt.Errorf("read the records: %w", err)
		}
		if err := cond(r.records); err != nil {
			return fmt.Errorf("%s: %w\nrecords:\n%s", what, err, lines(r.records[max(0, len(r.records)-30):]))
		}
		return nil
	})
}

// hold reads records until the time until, failing the test as soon as
// cond refuses them: for what must not happen (a reconnection) while the
// node could make it happen.
func (r *runner) hold(what string, until time.Time, cond func([]record) error) {
	r.t.Helper()
	for {
		if err := r.read(); err != nil {
			r.t.Fatal(err)
		}
		if err := cond(r.records); err != nil {
			r.t.Fatalf("%s: %v\nrecords:\n%s", what, err, lines(r.records))
		}
		if !time.Now().Before(until) {
			return
		}
		select {
		case <-r.t.Context().Done():
			r.t.Fatal("the test ended while holding")
		case <-time.After(200 * time.Millisecond): // the page is read again: a poll, not a wait for a state
		}
	}
}

func lines(rs []record) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	return b.String()
}

// kinds filters records: of kind, and for notices of the notice named.
func kinds(rs []record, kind, notice string) []record {
	var out []record
	for _, r := range rs {
		if r.Kind == kind && (notice == "" || r.Notice == notice) {
			out = append(out, r)
		}
	}
	return out
}

// eventsAre accepts records whose events of room are exactly numbers
// 1..n, each once, in order.
func eventsAre(room string, n int) func([]record) error {
	return func(rs []record) error {
		var got []int
		for _, r := range kinds(rs, "event", "") {
			if r.Room == room {
				got = append(got, r.N)
			}
		}
		if len(got) > n {
			return fmt.Errorf("events %v: more than %d", got, n)
		}
		for i, v := range got {
			if v != i+1 {
				return fmt.Errorf("events %v: not 1..%d each once, in order", got, n)
			}
		}
		if len(got) < n {
			return fmt.Errorf("%d events of %d so far", len(got), n)
		}
		return nil
	}
}

// logRecords logs what the runner reported, for go test -v.
func logRecords(t *testing.T, r *runner) {
	t.Helper()
	t.Logf("records:\n%s", lines(r.records))
}
