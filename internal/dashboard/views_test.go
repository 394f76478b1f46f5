package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nuid"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// poolPage is what a pool panel shows beyond pageState: staleness, task
// outcomes, its other events and its trends, read from the DOM.
type poolPage struct {
	Conn     string      `json:"conn"`
	State    string      `json:"state"`
	Events   int         `json:"events"`
	Stale    bool        `json:"stale"`
	AgeShown bool        `json:"ageShown"`
	AgeText  string      `json:"ageText"`
	Age      int         `json:"age"`
	Filter   string      `json:"filter"`
	Tasks    []taskLine  `json:"tasks"`
	Done     string      `json:"done"`
	Failed   string      `json:"failed"`
	Others   []otherLine `json:"others"`
	OthersOn bool        `json:"othersOn"`
	Queue    trendState  `json:"queue"`
	Busy     trendState  `json:"busy"`
}

type taskLine struct {
	Task    string `json:"task"`
	Outcome string `json:"outcome"`
	What    string `json:"what"`
	Detail  string `json:"detail"`
}

type otherLine struct {
	Event string `json:"event"`
	What  string `json:"what"`
}

type trendState struct {
	Points int    `json:"points"`
	Last   string `json:"last"`
	Path   string `json:"path"`
}

// readPool is the script that reads poolPage for poolRoom; a part the
// page lacks reads as empty.
const readPool = `(() => {
  const p = document.querySelector('article[data-room="` + poolRoom + `"]');
  if (!p) return { conn: document.getElementById("conn").dataset.state };
  const text = (root, sel) => { const e = root.querySelector(sel); return e ? e.textContent : ""; };
  const age = p.querySelector(".stale-age");
  const trend = (sel) => { const f = p.querySelector(sel);
    return { points: +(f?.dataset.points || 0), last: f?.dataset.last || "", path: f?.querySelector("path.line")?.getAttribute("d") || "" }; };
  const others = p.querySelector(".others-section");
  return {
    conn: document.getElementById("conn").dataset.state, state: p.dataset.state, events: +(p.dataset.events || 0),
    stale: p.dataset.stale === "true", ageShown: !!age && !age.hidden, ageText: age ? age.textContent : "",
    age: age ? +(age.dataset.age || 0) : 0, filter: getComputedStyle(p.querySelector(".body")).filter,
    tasks: [...p.querySelectorAll(".tasks li")].map((li) => ({ task: li.dataset.task, outcome: li.dataset.outcome,
      what: text(li, ".what"), detail: text(li, ".detail") })),
    done: text(p, ".n-done"), failed: text(p, ".n-failed"),
    others: [...p.querySelectorAll(".others li")].map((li) => ({ event: li.dataset.event, what: text(li, ".what") })),
    othersOn: !!others && !others.hidden && others.offsetHeight > 0,
    queue: trend(".trend-queue"), busy: trend(".trend-busy"),
  };
})()`

// watchPool reads the pool panel until cond accepts it.
func watchPool(t *testing.T, tab context.Context, what string, cond func(poolPage) error) poolPage {
	t.Helper()
	var st poolPage
	natstest.WaitFor(t, browserWait, func() error {
		ctx, cancel := context.WithTimeout(tab, 5*time.Second)
		defer cancel()
		var err error
		if st, err = chromedp.Run(ctx, chromedp.Evaluate[poolPage](readPool)); err != nil {
			return err
		}
		if err := cond(st); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	return st
}

// eventsShown accepts a live pool panel that has drawn n events.
func eventsShown(n int) func(poolPage) error {
	return func(st poolPage) error {
		if st.State != "live" || st.Events != n {
			return fmt.Errorf("panel %q with %d events, want live with %d", st.State, st.Events, n)
		}
		return nil
	}
}

// poolNode starts a node, a publisher on its NATS and a browser showing
// poolRoom through a relay the test can cut.
func poolNode(t *testing.T) (context.Context, *events.Publisher, *bus.Bus, *relaytest.Relay) {
	t.Helper()
	tab := browse(t)
	node := servertest.Start(t, nil, nil)
	b := publishingBus(t, node.NATSURL())
	proxy := relaytest.Start(t, node.WSAddr())
	run(t, tab, chromedp.Navigate("http://"+proxy.Addr()+"/?rooms="+poolRoom))
	watchPool(t, tab, "panel live", eventsShown(0))
	return tab, events.NewPublisher(b), b, proxy
}

// publish stores a pool event as `roomcast publish` does (checked).
func publish(t *testing.T, pub *events.Publisher, name, data string) {
	t.Helper()
	if _, err := pub.Publish(t.Context(), wire.MustRoom(poolRoom), name, json.RawMessage(data), ""); err != nil {
		t.Fatal(err)
	}
}

var ageText = regexp.MustCompile(`^last update (\d+) s ago$`)

// During an outage the pool's view is greyed and says how old it is, the
// age counting up; once the page is back live the marking goes.
func TestDashboardGreysAStaleViewWithItsAge(t *testing.T) {
	tab, pub, _, proxy := poolNode(t)
	publish(t, pub, events.WorkerStatusChanged, `{"pool_id":"p1","worker_id":"p1-w1","status":"busy"}`)
	st := watchPool(t, tab, "event drawn", eventsShown(1))
	if st.Stale || st.AgeShown || st.Filter != "none" {
		t.Fatalf("a live panel shown stale: %+v", st)
	}

	proxy.Cut(true)
	st = watchPool(t, tab, "stale with an age that counts", func(st poolPage) error {
		m := ageText.FindStringSubmatch(st.AgeText)
		switch {
		case !st.Stale || !st.AgeShown:
			return fmt.Errorf("panel %q not marked stale (conn %q)", st.State, st.Conn)
		case m == nil:
			return fmt.Errorf("age shown as %q", st.AgeText)
		case m[1] != strconv.Itoa(st.Age):
			return fmt.Errorf("age text %q, data-age %d", st.AgeText, st.Age)
		case st.Age < 2:
			return fmt.Errorf("age %d s: waiting for it to count", st.Age)
		}
		return nil
	})
	if !regexp.MustCompile(`grayscale\(1\)`).MatchString(st.Filter) {
		t.Errorf("stale panel's body filter %q, want greyed", st.Filter)
	}
	screenshot(t, tab, "dashboard-stale.png")

	proxy.Allow()
	watchPool(t, tab, "fresh again", func(st poolPage) error {
		if st.State != "live" || st.Stale || st.AgeShown || st.Filter != "none" {
			return fmt.Errorf("after the resume: state %q, stale %v, age shown %v, filter %q", st.State, st.Stale, st.AgeShown, st.Filter)
		}
		return nil
	})
}

// A silent network (a frozen peer: nothing passes, no close) is noticed
// only when a ping goes unanswered (roomcast.js: a ping after 15 s of silence, 10 s for
// the pong); the age shown counts from the node's last message, so it is
// at least the pong's wait when the panel first greys, not zero.
func TestDashboardStaleAgeCountsFromTheLastMessage(t *testing.T) {
	const pongWait = 10 // s, roomcast.js deadAfter
	tab, pub, _, proxy := poolNode(t)
	publish(t, pub, events.WorkerStatusChanged, `{"pool_id":"p1","worker_id":"p1-w1","status":"busy"}`)
	watchPool(t, tab, "event drawn", eventsShown(1))
	proxy.Silence()
	st := watchPool(t, tab, "stale after an unanswered ping", func(st poolPage) error {
		if !st.Stale || !st.AgeShown {
			return fmt.Errorf("panel %q not marked stale (conn %q)", st.State, st.Conn)
		}
		return nil
	})
	if st.Age < pongWait {
		t.Fatalf("first shown stale with age %d s (%q): the node was last heard at least %d s before", st.Age, st.AgeText, pongWait)
	}
}

// task.completed and task.failed show as the tasks' outcomes, the failure
// with its error; an outcome of a malformed publisher's (no task id, an
// error that is an object) is drawn as well as it can be and breaks
// nothing after it.
func TestDashboardShowsTaskOutcomes(t *testing.T) {
	tab, pub, b, _ := poolNode(t)
	publish(t, pub, events.TaskAssigned, `{"pool_id":"p1","task_id":"t1","worker_id":"p1-w1"}`)
	publish(t, pub, events.TaskAssigned, `{"pool_id":"p1","task_id":"t2","worker_id":"p1-w2"}`)
	publish(t, pub, events.TaskCompleted, `{"pool_id":"p1","task_id":"t1","worker_id":"p1-w1","duration_ms":1200}`)
	publish(t, pub, events.TaskFailed, `{"pool_id":"p1","task_id":"t2","worker_id":"p1-w2","error":"disk full <b>"}`)
	st := watchPool(t, tab, "outcomes", eventsShown(4))
	want := []taskLine{
		{Task: "t2", Outcome: "failed", What: "t2 → p1-w2", Detail: "disk full <b>"},
		{Task: "t1", Outcome: "completed", What: "t1 → p1-w1"},
	}
	if !slices.Equal(st.Tasks, want) || st.Done != "1" || st.Failed != "1" {
		t.Fatalf("tasks %+v, done %s, failed %s; want %+v, 1 done, 1 failed", st.Tasks, st.Done, st.Failed, want)
	}
	screenshot(t, tab, "dashboard-task-outcomes.png")

	// Stored as is, past the publisher's checks: what any client of the
	// stream could put there.
	raw := `{"event":"task.failed","data":{"pool_id":"p1","error":{"code":7}}}`
	if _, err := b.Publish(t.Context(), wire.MustRoom(poolRoom), []byte(raw), wire.PublishOptions{MsgID: nuid.Next()}); err != nil {
		t.Fatal(err)
	}
	publish(t, pub, events.TaskAssigned, `{"pool_id":"p1","task_id":"t3","worker_id":"p1-w3"}`)
	st = watchPool(t, tab, "malformed outcome and the next task", eventsShown(6))
	if len(st.Tasks) < 2 || st.Tasks[0].Task != "t3" || st.Tasks[0].Outcome != "assigned" ||
		st.Tasks[1] != (taskLine{Task: "?", Outcome: "failed", What: "? → ?", Detail: "code: 7"}) || st.Failed != "2" {
		t.Fatalf("after a malformed task.failed: tasks %+v, failed %s", st.Tasks, st.Failed)
	}
}

// An event outside the pool vocabulary, published into a pool room,
// appears in the pool's log panel, as text; the panel is hidden until one
// comes.
func TestDashboardLogsOtherEventsOfAPoolRoom(t *testing.T) {
	tab, pub, _, _ := poolNode(t)
	publish(t, pub, events.WorkerStatusChanged, `{"pool_id":"p1","worker_id":"p1-w1","status":"idle"}`)
	st := watchPool(t, tab, "pool event", eventsShown(1))
	if st.OthersOn || len(st.Others) != 0 {
		t.Fatalf("log panel shown with no other event: %+v", st.Others)
	}
	publish(t, pub, "deploy.note", `{"version":"1.2.3","note":"<img src=x>"}`)
	st = watchPool(t, tab, "custom event", eventsShown(2))
	want := []otherLine{{Event: "deploy.note", What: "version: 1.2.3, note: <img src=x>"}}
	if !st.OthersOn || !slices.Equal(st.Others, want) {
		t.Fatalf("log panel shown %v with %+v, want %+v", st.OthersOn, st.Others, want)
	}
	screenshot(t, tab, "dashboard-other-events.png")
}

// The queue and busy-worker trends gain a point per change as
// pool.status_changed and worker.status_changed events arrive (a repeated
// value adds none), and end at the latest value.
func TestDashboardTrendsGainPoints(t *testing.T) {
	tab, pub, _, _ := poolNode(t)
	steps := []struct {
		name, data  string
		queue, busy trendState // Path ignored
	}{
		{events.PoolStatusChanged, `{"pool_id":"p1","status":{"worker_count":2,"queue_size":3}}`, trendState{1, "3", ""}, trendState{}},
		{events.PoolStatusChanged, `{"pool_id":"p1","status":{"worker_count":2,"queue_size":7}}`, trendState{2, "7", ""}, trendState{}},
		{events.PoolStatusChanged, `{"pool_id":"p1","status":{"worker_count":2,"queue_size":7}}`, trendState{2, "7", ""}, trendState{}},
		{events.WorkerStatusChanged, `{"pool_id":"p1","worker_id":"p1-w1","status":"busy"}`, trendState{2, "7", ""}, trendState{1, "1", ""}},
		{events.WorkerStatusChanged, `{"pool_id":"p1","worker_id":"p1-w2","status":"busy"}`, trendState{2, "7", ""}, trendState{2, "2", ""}},
		{events.PoolStatusChanged, `{"pool_id":"p1","status":{"worker_count":2,"queue_size":0}}`, trendState{3, "0", ""}, trendState{2, "2", ""}},
		{events.WorkerStatusChanged, `{"pool_id":"p1","worker_id":"p1-w1","status":"idle"}`, trendState{3, "0", ""}, trendState{3, "1", ""}},
	}
	for i, s := range steps {
		publish(t, pub, s.name, s.data)
		st := watchPool(t, tab, fmt.Sprintf("step %d", i+1), eventsShown(i+1))
		got := func(ts trendState) trendState { return trendState{ts.Points, ts.Last, ""} }
		if got(st.Queue) != s.queue || got(st.Busy) != s.busy {
			t.Fatalf("after step %d (%s): queue trend %+v, busy trend %+v; want %+v and %+v",
				i+1, s.data, st.Queue, st.Busy, s.queue, s.busy)
		}
		// A step line: one vertical move per point after the first.
		if n := regexp.MustCompile(`V`).FindAllStringIndex(st.Queue.Path, -1); len(n) != max(0, s.queue.Points-1) {
			t.Fatalf("after step %d: queue path %q has %d steps, want %d", i+1, st.Queue.Path, len(n), s.queue.Points-1)
		}
	}
	screenshot(t, tab, "dashboard-trends.png")
}
