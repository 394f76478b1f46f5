package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// publishSeq stores an event of room with roomcast publish, which keys it
// as the pool vocabulary says, and returns its seq.
func publishSeq(t *testing.T, ns *natsserver.Server, room, event, data string) uint64 {
	t.Helper()
	code, stdout, stderr := runCmd(t.Context(), "", "publish", "--nats", ns.ClientURL(), room, event, data)
	seq, err := strconv.ParseUint(strings.TrimSpace(stdout), 10, 64)
	if code != 0 || err != nil {
		t.Fatalf("publish %s %s: exit %d, %q %s", room, event, code, stdout, stderr)
	}
	return seq
}

// pushOutOfHistory publishes n unkeyed events to a pool room, enough to
// push its older events out of a history of fewer, and waits until the
// state keeper has them all; it returns the last one's seq.
func pushOutOfHistory(t *testing.T, ns *natsserver.Server, room string, n int) uint64 {
	t.Helper()
	id := wire.MustRoom(room).ID()
	var last uint64
	for i := range n {
		last = publishSeq(t, ns, room, "pool.scaling", fmt.Sprintf(`{"pool_id":%q,"event_type":"scaled_up","workers":%d}`, id, i))
	}
	servertest.WaitKept(t, natstest.Connect(t, ns.ClientURL()), last)
	return last
}

// tailCmd runs tail until the test ends or stop is called.
func tailCmd(t *testing.T, args ...string) (out, errb *servertest.SyncBuffer, stop func()) {
	t.Helper()
	out, errb = new(servertest.SyncBuffer), new(servertest.SyncBuffer)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		runWith(ctx, out, errb, "", append([]string{"tail"}, args...)...)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return out, errb, stop
}

// tail --state prints a worker whose only event the room's history no
// longer holds, in the room's state, marked as such, before the live
// events; tail without it cannot, even from the start of the history.
func TestTailStateShowsAWorkerOlderThanTheHistory(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := servertest.Start(t, ns, func(c *config.Serve) { c.RetentionMaxPerRoom = 3 })
	const room = "pool:ts"
	old := publishSeq(t, ns, room, "worker.status_changed", `{"pool_id":"ts","worker_id":"w-old","status":"idle"}`)
	servertest.WaitKept(t, natstest.Connect(t, ns.ClientURL()), old)
	last := pushOutOfHistory(t, ns, room, 4)

	out, _, stop := tailCmd(t, "--state", "--url", servertest.WSURL(srv), room)
	end := "= end of the state of " + room
	waitOutput(t, out, end)
	live := publishSeq(t, ns, room, "worker.status_changed", `{"pool_id":"ts","worker_id":"w-new","status":"busy"}`)
	waitOutput(t, out, fmt.Sprintf("#%d", live))
	stop()
	// The state is as of the room's position the keeper last recorded,
	// which may be behind: the events after it follow, unmarked.
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	at := stateSeq(lines[0], "= state of "+room+" as of seq ", " (1 key)")
	if len(lines) < 4 || at < old || at > last ||
		!strings.HasPrefix(lines[1], "= ") || !strings.Contains(lines[1], fmt.Sprintf("#%d", old)) || !strings.Contains(lines[1], "w-old") ||
		lines[2] != fmt.Sprintf("%s: its events after seq %d follow", end, at) {
		t.Fatalf("tail --state printed:\n%s\nwant the state of w-old's event %d first", out, old)
	}
	for _, l := range lines[3:] {
		if strings.HasPrefix(l, "=") || !strings.Contains(l, room) {
			t.Fatalf("tail --state printed %q after the state:\n%s", l, out)
		}
	}
	if !strings.Contains(lines[len(lines)-1], "w-new") {
		t.Fatalf("the live event is not last:\n%s", out)
	}

	out, errb, stop := tailCmd(t, "--json", "--since", "0", "--url", servertest.WSURL(srv), room)
	waitOutput(t, errb, "subscribed to "+room)
	stop()
	if n := strings.Count(out.String(), "\n"); n != 3 || strings.Contains(out.String(), "w-old") {
		t.Fatalf("tail --since 0 printed %d events, want the history's 3 without w-old:\n%s", n, out)
	}
}

// After a reconnection whose resume lost events to retention, tail
// --state prints the room's state again, with what changed meanwhile,
// instead of a partial replay.
func TestTailStatePrintsAFreshStateAfterALossyResume(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := servertest.Start(t, ns, func(c *config.Serve) { c.RetentionMaxPerRoom = 3 })
	proxy := relaytest.Start(t, srv.WSAddr())
	const room = "pool:tr"
	w1 := publishSeq(t, ns, room, "worker.status_changed", `{"pool_id":"tr","worker_id":"w1","status":"idle"}`)
	servertest.WaitKept(t, natstest.Connect(t, ns.ClientURL()), w1)

	out, errb, stop := tailCmd(t, "--state", "--json", "--url", "ws://"+proxy.Addr()+"/ws", room)
	waitOutput(t, out, `"type":"state"`)
	proxy.Cut(true)
	waitOutput(t, errb, "reconnecting")
	w2 := publishSeq(t, ns, room, "worker.status_changed", `{"pool_id":"tr","worker_id":"w2","status":"busy"}`)
	servertest.WaitKept(t, natstest.Connect(t, ns.ClientURL()), w2)
	pushOutOfHistory(t, ns, room, 4) // what tail printed last is gone
	proxy.Allow()
	natstest.WaitFor(t, reconnectWait, func() error {
		if n := strings.Count(out.String(), `"type":"state"`); n != 2 {
			return fmt.Errorf("%d states printed, want 2", n)
		}
		return nil
	})
	stop()

	// Two states, then the events after the second's position.
	lines := bytes.Split(bytes.TrimSpace([]byte(out.String())), []byte("\n"))
	var states [2]stateLine
	for i, l := range lines {
		var s stateLine
		if err := json.Unmarshal(l, &s); err != nil {
			t.Fatalf("line %s: %v", l, err)
		}
		switch {
		case i < 2 && s.Type == "state":
			states[i] = s
		case i >= 2 && s.Type == "event" && s.Seq > states[1].Seq:
		default:
			t.Fatalf("line %d: %s; want two states, then the events after the second", i+1, l)
		}
	}
	keysOf := func(s stateLine) string {
		var k []string
		for _, m := range s.State {
			k = append(k, fmt.Sprintf("%s@%d", m.Key, m.Seq))
		}
		return strings.Join(k, " ")
	}
	if got, want := keysOf(states[1]), fmt.Sprintf("worker:w1@%d worker:w2@%d", w1, w2); states[1].Room != room || states[1].Seq < w2 || got != want {
		t.Fatalf("the state after the resume: %s as of %d with %s; want %s as of %d or later with %s", states[1].Room, states[1].Seq, got, room, w2, want)
	}
	if !strings.Contains(errb.String(), "with its state of 2 keys") {
		t.Fatalf("tail did not say it resumed with a state: %s", errb)
	}
}

// reconnectWait bounds a wait on tail's output over a reconnection: its
// backoff is 250 ms to 10 s (×1.5 at most), on two busy cores.
const reconnectWait = 30 * time.Second

// A line says when an event ends its key, and how many superseded events
// a conflating connection skipped before it.
func TestTailMarksKeyEndsAndSkips(t *testing.T) {
	m := wire.Message{Type: wire.TypeEvent, Room: "pool:p1", Event: "worker.removed", Seq: 9, TS: "2026-12-01T08:00:00.123Z",
		Key: "worker:w1", KeyDeleted: true, Conflated: 3, Data: json.RawMessage(`{"worker_id":"w1","pool_id":"p1"}`)}
	var buf bytes.Buffer
	if err := printHuman(&buf, m, false); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); !strings.HasSuffix(got, "  [ends worker:w1]  [3 superseded skipped before]\n") {
		t.Fatalf("line %q", got)
	}
	buf.Reset()
	m.KeyDeleted, m.Conflated = false, 0
	if err := printHuman(&buf, m, false); err != nil || strings.Contains(buf.String(), "[") {
		t.Fatalf("line %q (%v): an event that only has a key gets no note", buf.String(), err)
	}
}

// stateSeq is the seq in line between prefix and suffix; 0 when line is
// not of that form.
func stateSeq(line, prefix, suffix string) uint64 {
	s, ok := strings.CutPrefix(line, prefix)
	s, ok2 := strings.CutSuffix(s, suffix)
	seq, err := strconv.ParseUint(s, 10, 64)
	if !ok || !ok2 || err != nil {
		return 0
	}
	return seq
}
