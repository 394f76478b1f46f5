package conformance_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// scenarioWait bounds every wait on a runner: generous, for two busy
// cores running nodes, a browser and the race detector.
const scenarioWait = 60 * time.Second

// stamped is a record with the time the harness received it.
type stamped struct {
	record
	at time.Time
}

// recorder keeps what a runner reported, in order.
type recorder struct {
	mu   sync.Mutex
	recs []stamped
}

// add keeps r; runners call it from their own goroutines.
func (r *recorder) add(rec record) {
	r.mu.Lock()
	r.recs = append(r.recs, stamped{rec, time.Now()})
	r.mu.Unlock()
}

// all is a copy of what was recorded so far.
func (r *recorder) all() []stamped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stamped(nil), r.recs...)
}

// waitFor waits until cond holds for what was recorded, or fails the test
// saying what: the last records are logged.
func (r *recorder) waitFor(t testing.TB, what string, cond func([]stamped) bool) {
	t.Helper()
	deadline := time.Now().Add(scenarioWait)
	for {
		recs := r.all()
		if cond(recs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("within %s, the runner did not report %s; its last records:\n%s", scenarioWait, what, tail(recs, 30))
		}
		time.Sleep(20 * time.Millisecond) // polling the runner's reports
	}
}

// waitEvent waits until the runner has handed over the event with n.
func (r *recorder) waitEvent(t testing.TB, n int) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("the event n=%d", n), func(recs []stamped) bool {
		for _, s := range recs {
			if s.Kind == "event" && s.N == n {
				return true
			}
		}
		return false
	})
}

// waitSubscribed waits until the runner reported n subscribe responses:
// a resume's replayed events come before its response, so the last event
// may be handed over before the response is.
func (r *recorder) waitSubscribed(t testing.TB, n int) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("subscribe response %d", n), func(recs []stamped) bool { return count(recs, "subscribed", "") >= n })
}

// waitNotice waits until the runner reported a notice of kind.
func (r *recorder) waitNotice(t testing.TB, kind string) {
	t.Helper()
	r.waitFor(t, "a notice "+kind, func(recs []stamped) bool { return count(recs, "notice", kind) > 0 })
}

// count is how many records of kind (and, for notices, of notice) there are.
func count(recs []stamped, kind, notice string) int {
	c := 0
	for _, s := range recs {
		if s.Kind == kind && (notice == "" || s.Notice == notice) {
			c++
		}
	}
	return c
}

// eventNs is the n of every event record of room, in the order handed over.
func eventNs(recs []stamped, room string) []int {
	var out []int
	for _, s := range recs {
		if s.Kind == "event" && s.Room == room {
			out = append(out, s.N)
		}
	}
	return out
}

// checkExactly fails the test unless the events of room handed over are
// exactly want, in order: nothing lost, nothing twice.
func checkExactly(t testing.TB, recs []stamped, room string, want []int) {
	t.Helper()
	got := eventNs(recs, room)
	if len(got) == len(want) {
		same := true
		for i := range got {
			if got[i] != want[i] {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	t.Fatalf("room %s: the application got %d events, want %d: %s; its records:\n%s",
		room, len(got), len(want), firstDifference(got, want), tail(recs, 40))
}

// upTo is 0, 1, ..., n-1.
func upTo(n int) []int { return between(0, n) }

// between is from, ..., to-1.
func between(from, to int) []int {
	out := make([]int, 0, max(0, to-from))
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// firstDifference says where got departs from want.
func firstDifference(got, want []int) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at index %d got n=%d, want n=%d (before it: %v)", i, got[i], want[i], got[max(0, i-5):i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("extra events from index %d: %v", len(want), got[len(want):min(len(got), len(want)+10)])
	}
	return fmt.Sprintf("missing events from index %d: n=%v", len(got), want[len(got):min(len(want), len(got)+10)])
}

// tail formats the last n lines of recs, for a failure message: a run of
// events of one room is one line.
func tail(recs []stamped, n int) string {
	var lines []string
	for i := 0; i < len(recs); i++ {
		s := recs[i]
		if s.Kind != "event" {
			lines = append(lines, fmt.Sprintf("  %s %s", s.at.Format("15:04:05.000"), describe(s.record)))
			continue
		}
		j := i
		for j+1 < len(recs) && recs[j+1].Kind == "event" && recs[j+1].Room == s.Room {
			j++
		}
		lines = append(lines, fmt.Sprintf("  %s events %s n=%d..%d (%d), seq %d..%d", s.at.Format("15:04:05.000"),
			s.Room, s.N, recs[j].N, j-i+1, s.Seq, recs[j].Seq))
		i = j
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// describe is one record in a line.
func describe(r record) string {
	switch r.Kind {
	case "event":
		return fmt.Sprintf("event %s seq=%d n=%d conflated=%d", r.Room, r.Seq, r.N, r.Conflated)
	case "subscribed":
		return fmt.Sprintf("subscribed %s seq=%d epoch=%s replayed=%d recovered=%v resumed=%v state=%d", r.Room, r.Seq, r.Epoch, r.Replayed, r.Recovered, r.Resumed, r.State)
	case "notice":
		return fmt.Sprintf("notice %s code=%d error=%s room=%s %q", r.Notice, r.Code, r.Error, r.Room, r.Text)
	case "stopped":
		return fmt.Sprintf("stopped code=%d %q", r.Code, r.Text)
	}
	return r.Kind
}
