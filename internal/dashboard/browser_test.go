package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/roomcast/roomcast/internal/browsertest"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/testartifact"
	"github.com/roomcast/roomcast/internal/wire"
)

// browserWait bounds every wait on the page: generous, for two busy cores
// running a browser, a node and the race detector.
const browserWait = 45 * time.Second

// browse starts a headless browser for the test, with extra options
// (flags), and returns its tab.
func browse(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := browsertest.Options(browsertest.Path(t),
		append([]chromedp.ExecAllocatorOption{chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir())}, extra...)...)
	tab, stop, err := browsertest.Start(opts, browserWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	journal, err := browsertest.Record(tab)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after stop, so it runs before it: a failed test leaves
	// the page as it was and what it logged.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("the page's journal:\n%s", journal)
		screenshot(t, tab, "failed-"+strings.ReplaceAll(t.Name(), "/", "-")+".png")
	})
	return tab
}

// run runs browser actions, bounded.
func run(t *testing.T, tab context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a script in the page, bounded, and returns its value.
func eval[T any](t *testing.T, tab context.Context, script string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](script))
	if err != nil {
		t.Fatalf("evaluate %.60q: %v", script, err)
	}
	return v
}

// pageState is what the page shows, read from its DOM.
type pageState struct {
	Conn   string                 `json:"conn"`
	Notice string                 `json:"notice"`
	Panels map[string]*panelState `json:"panels"` // by room; absent: no panel
}

type panelState struct {
	State   string            `json:"state"`
	Events  int               `json:"events"`
	Seq     string            `json:"seq"`
	Dupes   int               `json:"dupes"`
	Error   string            `json:"error"`
	Tiles   map[string]string `json:"tiles"`
	Tasks   []string          `json:"tasks"`
	Queue   string            `json:"queue"`
	Workers string            `json:"workers"`
	Runs    []runState        `json:"runs"`
}

type runState struct {
	ID      string   `json:"id"`
	Outcome string   `json:"outcome"`
	Stages  []string `json:"stages"`
}

// readPage is the script that reads pageState.
const readPage = `(() => {
  const panel = (p) => {
    const text = (sel) => { const e = p.querySelector(sel); return e ? e.textContent : ""; };
    return {
      state: p.dataset.state || "", events: +(p.dataset.events || 0), seq: p.dataset.lastSeq || "",
      dupes: +(p.dataset.dupes || 0), error: text(".panel-error"),
      tiles: Object.fromEntries([...p.querySelectorAll(".tile")].map((t) => [t.dataset.worker, t.dataset.status])),
      tasks: [...p.querySelectorAll(".tasks li")].map((li) => li.dataset.task),
      queue: text(".queue-size"), workers: text(".worker-count"),
      runs: [...p.querySelectorAll(".run")].map((r) => ({ id: r.dataset.workflow, outcome: r.dataset.outcome,
        stages: [...r.querySelectorAll(".stage")].map((s) => s.dataset.stage) })),
    };
  };
  return { conn: document.getElementById("conn").dataset.state, notice: document.getElementById("notice").textContent,
    panels: Object.fromEntries([...document.querySelectorAll("article[data-room]")].map((p) => [p.dataset.room, panel(p)])) };
})()`

// watch reads the page until cond accepts what it shows.
func watch(t *testing.T, tab context.Context, what string, cond func(pageState) error) pageState {
	t.Helper()
	var st pageState
	natstest.WaitFor(t, browserWait, func() error {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		var err error
		if st, err = chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage)); err != nil {
			return err
		}
		if err := cond(st); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	return st
}

// connIs accepts a page whose connection shows state.
func connIs(state string) func(pageState) error {
	return func(st pageState) error {
		if st.Conn != state {
			return fmt.Errorf("connection shown as %q, want %q", st.Conn, state)
		}
		return nil
	}
}

// publishingBus is a worker's view of the node's NATS: it stores events
// and reads the stream back, the truth the page is held to.
func publishingBus(t *testing.T, natsURL string) *bus.Bus {
	t.Helper()
	return bustest.On(t, natstest.Connect(t, natsURL))
}

// truth is what the stream holds for a room, as the page should draw it.
type truth struct {
	events  int
	lastSeq uint64
	workers map[string]string // worker -> last status; removed workers absent
	queue   int
	runs    []runState // newest first
}

func readTruth(t *testing.T, b *bus.Bus, room string) truth {
	t.Helper()
	tr := truth{workers: map[string]string{}, queue: -1}
	_, err := b.Replay(t.Context(), wire.MustRoom(room), 0, 1<<62, func(ev *wire.Event) error {
		tr.events++
		tr.lastSeq = ev.Seq
		var d struct {
			WorkerID   string `json:"worker_id"`
			Status     any    `json:"status"`
			EventType  string `json:"event_type"`
			WorkflowID string `json:"workflow_id"`
			StageName  string `json:"stage_name"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		switch ev.Name {
		case "worker.status_changed":
			tr.workers[d.WorkerID] = d.Status.(string)
		case "pool.scaling":
			if d.EventType == "worker_removed" {
				delete(tr.workers, d.WorkerID)
			} else if _, ok := tr.workers[d.WorkerID]; d.EventType == "worker_added" && !ok {
				tr.workers[d.WorkerID] = "added"
			}
		case "pool.status_changed":
			tr.queue = int(d.Status.(map[string]any)["queue_size"].(float64))
		case "workflow.started":
			tr.runs = append([]runState{{ID: d.WorkflowID, Outcome: "running", Stages: []string{}}}, tr.runs...)
		case "workflow.stage_completed":
			tr.runs[0].Stages = append(tr.runs[0].Stages, d.StageName)
		case "workflow.completed":
			tr.runs[0].Outcome = "completed"
		case "workflow.failed":
			tr.runs[0].Outcome = "failed"
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", room, err)
	}
	return tr
}

// screenshot saves the page as a PNG among the test artifacts, kept after
// the test, and returns its path.
func screenshot(t *testing.T, tab context.Context, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, browserWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := testartifact.Write(t, name, png)
	t.Logf("screenshot: %s", path)
	return path
}
