package conformance_test

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
)

// Scenarios of the contract's rules (docs/protocol.md section 3, "What a
// client does") on a fake node, which sends the one message that tests a
// rule at the one moment it matters: a real node does so too rarely to be
// caught in the act.

// rulesRoom is the room of these scenarios.
const rulesRoom = "pool:fake"

// The application subscribes the room it follows again, from a position
// it stored (since 5), while the room's events flow: the client leaves the
// old subscription first, so that its event still on its way (n=12, sent
// before the node read the client's next request) is dropped and the
// replay from since 5 is handed over, each once. Here every event's n is
// its seq.
func positionGivenAgainScenario(t testing.TB, r runner) {
	var inFlight atomic.Bool
	sendInFlight := func(f *fakeNode, c net.Conn) {
		if !inFlight.Swap(true) {
			f.send(c, ws.OpText, fakeEvent(rulesRoom, 12, 12))
		}
	}
	answer := func(f *fakeNode, c net.Conn, id, room string, nth int) {
		if nth == 1 {
			f.send(c, ws.OpText, fakeResponse(id, room, 10, 0))
			f.send(c, ws.OpText, fakeEvent(room, 11, 11))
			return
		}
		sendInFlight(f, c) // unless the unsubscribe came first
		replayFrom5(f, c, id, room)
	}
	leave := func(f *fakeNode, c net.Conn, id, room string) {
		sendInFlight(f, c)
		f.send(c, ws.OpText, unsubscribed(id, room))
	}
	f := startFakeNodeLeaving(t, answer, leave)
	recs := resubscribeFrom5(t, r, f)
	want := []string{`subscribe {"channel":"pool:fake"}`, `unsubscribe {"channel":"pool:fake"}`,
		`subscribe {"channel":"pool:fake","epoch":"fake-1","since":5}`}
	if got := subscriptionRequests(f); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the node read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if last := lastSubscribed(recs); !last.Resumed || last.Seq != 12 {
		t.Fatalf("the second subscribe response: %s; want resumed (every subscribe of a room after its first), seq 12", describe(last.record))
	}
}

// After a reconnection (the fake closes with 4012), the resume's events
// before its response are held from the first at or below the kept seq:
// n=1 (seq 12, the kept one: a repeat) and n=2 (seq 13, held behind it).
// The response names the same stream: the repeat is dropped, and n=2,
// above the kept seq, is handed over before the response.
func heldAboveKeptScenario(t testing.TB, r runner) {
	answer := func(f *fakeNode, c net.Conn, id, room string, nth int) {
		if nth == 1 {
			f.send(c, ws.OpText, fakeResponse(id, room, 10, 0))
			f.send(c, ws.OpText, fakeEvent(room, 11, 0))
			f.send(c, ws.OpText, fakeEvent(room, 12, 1))
			_ = ws.WriteFrame(c, ws.NewCloseFrame(ws.NewCloseFrameBody(4012, "rebalance: reconnect now and resume")))
			return
		}
		f.send(c, ws.OpText, fakeEvent(room, 12, 1))
		f.send(c, ws.OpText, fakeEvent(room, 13, 2))
		f.send(c, ws.OpText, fakeResponse(id, room, 13, 2))
		f.send(c, ws.OpText, fakeEvent(room, 14, 3))
	}
	f := startFakeNode(t, answer)
	cfg := follow(f.URL())
	cfg.Rooms = []roomConfig{{Room: rulesRoom}}
	s := r.start(t, cfg)
	s.waitEvent(t, 3)

	recs := s.all()
	checkExactly(t, recs, rulesRoom, upTo(4))
	want := []string{`subscribe {"channel":"pool:fake"}`, `subscribe {"channel":"pool:fake","epoch":"fake-1","since":12}`}
	if got := subscriptionRequests(f); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the node read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if c := count(recs, "subscribed", ""); c != 2 {
		t.Fatalf("%d subscribe responses; want 2:\n%s", c, tail(recs, 20))
	}
}

// subscriptionRequests are the subscribes and unsubscribes the fake read.
func subscriptionRequests(f *fakeNode) []string {
	var out []string
	for _, q := range f.requests() {
		if strings.HasPrefix(q, "subscribe ") || strings.HasPrefix(q, "unsubscribe ") {
			out = append(out, q)
		}
	}
	return out
}

// A subscribe refused UNAUTHENTICATED, with no refresh callback: the
// client closes the connection and stops, telling a disconnection with
// code 1000 first ("the node requires a token").
func unauthenticatedStopScenario(t testing.TB, r runner) {
	answer := func(f *fakeNode, c net.Conn, id, _ string, _ int) {
		f.send(c, ws.OpText, fakeError("subscribe", id, "UNAUTHENTICATED", "a token is required"))
	}
	f := startFakeNode(t, answer)
	cfg := follow(f.URL())
	cfg.Rooms = []roomConfig{{Room: rulesRoom}}
	s := r.start(t, cfg)
	stopped := waitStopped(t, s)

	recs := s.all()
	var ends []record
	for _, s := range recs {
		if s.Kind == "notice" && s.Notice == noticeDisconnected {
			ends = append(ends, s.record)
		}
	}
	if len(ends) != 1 || ends[0].Code != 1000 || !strings.HasSuffix(ends[0].Text, "stopping") {
		t.Fatalf("disconnections told: %v; want one, code 1000, stopping:\n%s", ends, tail(recs, 20))
	}
	if stopped.Code != 0 || !strings.Contains(stopped.Text, "token") {
		t.Fatalf("stopped: %s; want code 0, the node requires a token", describe(stopped))
	}
}

// A subscribe response whose data cannot be read (a seq that is not a
// number) is told as bad input and taken as an UNAVAILABLE: the room is
// subscribed again after the retry's wait (1 s), and the second response
// and the event after it are handed over. A library that took the
// unreadable response for an answer would never subscribe again.
func unreadableResponseScenario(t testing.TB, r runner) {
	answer := func(f *fakeNode, c net.Conn, id, room string, nth int) {
		if nth == 1 {
			f.send(c, ws.OpText, map[string]any{"type": "response", "event": "subscribe", "id": id, "data": map[string]any{
				"status": "subscribed", "channel": room, "seq": "six", "replayed": 0, "recovered": true, "epoch": "fake-1"}})
			return
		}
		f.send(c, ws.OpText, fakeResponse(id, room, 6, 0))
		f.send(c, ws.OpText, fakeEvent(room, 7, 0))
	}
	f := startFakeNode(t, answer)
	cfg := follow(f.URL())
	cfg.Rooms = []roomConfig{{Room: rulesRoom}}
	s := r.start(t, cfg)
	s.waitEvent(t, 0)

	recs := s.all()
	checkExactly(t, recs, rulesRoom, upTo(1))
	if c := count(recs, "subscribed", ""); c != 1 {
		t.Fatalf("%d subscribe responses handed over; want 1, the readable one:\n%s", c, tail(recs, 20))
	}
	if c := count(recs, "notice", noticeBadInput); c != 1 {
		t.Fatalf("%d bad_input notices; want 1, for the unreadable response:\n%s", c, tail(recs, 20))
	}
	if got := f.subscribes.Load(); got != 2 {
		t.Fatalf("the node read %d subscribes; want 2", got)
	}
}

// As position-given-again, but the node refuses the unsubscribe that was
// to leave the old subscription (RATE_LIMITED): the old subscription
// stands, and its live event (n=12) comes before the node refuses the
// subscribe from since 5 too. The client must not take that event for
// the new position's (it would become the kept seq, and the replay from
// since 5 would be lost as duplicates): it leaves and subscribes again
// after the backoff, and the replay is handed over, each event once.
func leaveRefusedScenario(t testing.TB, r runner) {
	var unsubscribes atomic.Int32
	answer := func(f *fakeNode, c net.Conn, id, room string, nth int) {
		switch nth {
		case 1:
			f.send(c, ws.OpText, fakeResponse(id, room, 10, 0))
			f.send(c, ws.OpText, fakeEvent(room, 11, 11))
		case 2: // the old subscription stands: its event, then the refusal
			f.send(c, ws.OpText, fakeEvent(room, 12, 12))
			f.send(c, ws.OpText, fakeError("subscribe", id, "RATE_LIMITED", "too many messages"))
		default:
			replayFrom5(f, c, id, room)
		}
	}
	leave := func(f *fakeNode, c net.Conn, id, room string) {
		if unsubscribes.Add(1) == 1 {
			f.send(c, ws.OpText, fakeError("unsubscribe", id, "RATE_LIMITED", "too many messages"))
			return
		}
		f.send(c, ws.OpText, unsubscribed(id, room))
	}
	f := startFakeNodeLeaving(t, answer, leave)
	resubscribeFrom5(t, r, f)
	got := subscriptionRequests(f)
	if len(got) < 5 || got[3] != `unsubscribe {"channel":"pool:fake"}` {
		t.Fatalf("the node read:\n%s\nwant the unsubscribe sent again before the subscribe", strings.Join(got, "\n"))
	}
}

// replayFrom5 answers a subscribe from since 5 in the rules' room, whose
// every event's n is its seq: the replay n=6..12, the response, then the
// live n=13.
func replayFrom5(f *fakeNode, c net.Conn, id, room string) {
	for seq := 6; seq <= 12; seq++ {
		f.send(c, ws.OpText, fakeEvent(room, seq, seq))
	}
	f.send(c, ws.OpText, fakeResponse(id, room, 12, 7))
	f.send(c, ws.OpText, fakeEvent(room, 13, 13))
}

// resubscribeFrom5 runs a client that follows the rules' room live, then,
// once it has n=11, subscribes it again from the position since 5; it
// checks that the application got n=11, then the replay n=6..12 and n=13,
// each once, and returns the runner's records.
func resubscribeFrom5(t testing.TB, r runner, f *fakeNode) []stamped {
	t.Helper()
	since, after := uint64(5), 11
	cfg := follow(f.URL())
	cfg.Rooms = []roomConfig{{Room: rulesRoom}, {Room: rulesRoom, Since: &since, Epoch: "fake-1", AfterN: &after}}
	s := r.start(t, cfg)
	s.waitEvent(t, 13)
	recs := s.all()
	checkExactly(t, recs, rulesRoom, []int{11, 6, 7, 8, 9, 10, 11, 12, 13})
	return recs
}
