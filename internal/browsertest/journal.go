package browsertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// journalLines bounds what a journal keeps: a page that logs in a loop
// must not grow a test's memory without end.
const journalLines = 200

// Journal records what a tab's page says went wrong or logged: console
// calls, uncaught exceptions, failed loads. A test prints it when it
// fails, so a failure in CI says more than its last condition.
type Journal struct {
	start time.Time
	mu    sync.Mutex
	lines []string
	lost  int
}

// Record starts a journal of tab's page.
func Record(tab context.Context) (*Journal, error) {
	j := &Journal{start: time.Now()}
	err := chromedp.Listen(tab, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			args := make([]string, 0, len(ev.Args))
			for _, a := range ev.Args {
				args = append(args, describe(a))
			}
			j.add("console.%s: %s", ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			what := d.Text
			if d.Exception != nil {
				what += " " + describe(d.Exception)
			}
			j.add("uncaught at %s:%d: %s", d.URL, d.LineNumber+1, what)
		case *network.EventLoadingFailed:
			j.add("load failed (%s): %s", ev.Type, ev.ErrorText)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("journal of the page: %w", err)
	}
	return j, nil
}

func describe(o *runtime.RemoteObject) string {
	if o.Value != nil {
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}

func (j *Journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.lines) == journalLines {
		j.lost++
		return
	}
	at := time.Since(j.start).Round(time.Millisecond)
	j.lines = append(j.lines, fmt.Sprintf("+%s %s", at, fmt.Sprintf(format, args...)))
}

// String is the journal, a line per entry, or a word that it is empty.
func (j *Journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.lines) == 0 {
		return "(the page logged nothing)"
	}
	s := strings.Join(j.lines, "\n")
	if j.lost > 0 {
		s += fmt.Sprintf("\n(%d more not kept)", j.lost)
	}
	return s
}
