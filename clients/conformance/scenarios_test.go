package conformance_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// room is the room every scenario follows.
const room = "pool:c1"

// scenario is one thing that happens to a client, tried with each library.
type scenario struct {
	name string
	run  func(t testing.TB, r runner)
}

var scenarios = []scenario{
	{"restart", func(t testing.TB, r runner) { restartScenario(t, r, false) }},
	{"sigkill", func(t testing.TB, r runner) { restartScenario(t, r, true) }},
	{"drain", drainScenario},
	{"rebalance", rebalanceScenario},
	{"slow-consumer", slowScenario},
	{"history-lost", historyLostScenario},
	{"stream-recreated", streamRecreatedScenario},
	{"state", stateScenario},
	{"token-refresh", tokenRefreshScenario},
	{"token-expired", tokenExpiredScenario},
	{"token-refused", tokenRefusedScenario},
	{"bad-input", badInputScenario},
	{"late-unavailable", lateUnavailableScenario},
	{"position-given-again", positionGivenAgainScenario},
	{"held-above-kept", heldAboveKeptScenario},
	{"unauthenticated-stop", unauthenticatedStopScenario},
	{"unreadable-response", unreadableResponseScenario},
	{"leave-refused", leaveRefusedScenario},
}

// TestConformance runs every scenario with every library; the libraries
// run side by side, each with nodes and a NATS server of its own.
func TestConformance(t *testing.T) {
	for _, r := range runners() {
		t.Run(r.name(), func(t *testing.T) {
			t.Parallel()
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) { sc.run(t, r) })
			}
		})
	}
}

// urlOf is the node URL a runner is given: the Python runner connects
// with no path, as the pool system's monitors do (docs/protocol.md
// section 3); the others at /ws.
func urlOf(r runner, n *node) string {
	if r.name() == "python" {
		return n.URL("")
	}
	return n.URL("/ws")
}

// follow is a configuration that follows room with its history, backing
// off briefly so that scenarios stay short.
func follow(urls ...string) runnerConfig {
	return runnerConfig{URLs: urls, Rooms: []roomConfig{{Room: room, History: true}}, BackoffMinMS: 100, BackoffMaxMS: 1000}
}

// A node stopped (SIGTERM: a drain, 1001) or killed (SIGKILL: no close
// frame, 1006) and started again on the same address while events flow:
// the application gets every event once, in order, and every resume is
// recovered.
func restartScenario(t testing.TB, r runner, kill bool) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL())
	pub := newPublisher(t, ns, room)
	pub.publishN(5)
	s := r.start(t, follow(urlOf(r, n)))
	s.waitEvent(t, 4)
	pub.flow(20 * time.Millisecond)
	s.waitEvent(t, 15)

	wantCode := 1001
	if kill {
		n.kill()
		wantCode = 1006
	} else {
		n.stop()
	}
	s.waitNotice(t, noticeDisconnected)
	n.restart()
	recs := finishFlow(t, s, pub)
	checkAllRecovered(t, recs)
	checkClosedWith(t, recs, wantCode)
}

// A node drains (SIGTERM) with a second node beside it: the client is
// told server.draining, closed with 1001, and moves to the next URL at
// once, without the backoff (3 s at least here: half of 6 s) kept for failures.
func drainScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	a := startNode(t, "a", ns.ClientURL())
	b := startNode(t, "b", ns.ClientURL())
	pub := newPublisher(t, ns, room)
	cfg := follow(urlOf(r, a), urlOf(r, b))
	cfg.BackoffMinMS, cfg.BackoffMaxMS = 6000, 12000
	s := r.start(t, cfg)
	s.waitFor(t, "a subscribe response", func(recs []stamped) bool { return count(recs, "subscribed", "") > 0 })
	pub.flow(20 * time.Millisecond)
	s.waitEvent(t, 10)

	a.stop()
	s.waitNotice(t, noticeDraining)
	s.waitFor(t, "a second connection", func(recs []stamped) bool { return count(recs, "notice", noticeConnected) >= 2 })
	recs := finishFlow(t, s, pub)
	checkAllRecovered(t, recs)
	checkReconnectedAtOnce(t, recs, 1001)
	if b.metricOr(t, "roomcast_subscriptions") < 1 {
		t.Fatal("node b holds no subscription after the drain of a")
	}
}

// A second node starts beside one that holds every connection (the
// client's and a crowd that keeps coming back to it): the first sheds
// connections with 4012 until it has shed the client, which moves to the
// next URL at once, without the backoff (3 s at least here: half of 6 s), and resumes.
func rebalanceScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	a := startNode(t, "a", ns.ClientURL())
	servertest.Crowd(t, a.URL("/ws"), 19)
	pub := newPublisher(t, ns, room)
	cfg := follow(urlOf(r, a), "") // the second URL is b's, once it runs
	cfg.BackoffMinMS, cfg.BackoffMaxMS = 6000, 12000
	b := startNodeAt(t, "b", ns.ClientURL(), false)
	cfg.URLs[1] = urlOf(r, b)
	s := r.start(t, cfg)
	s.waitFor(t, "a subscribe response", func(recs []stamped) bool { return count(recs, "subscribed", "") > 0 })
	pub.flow(20 * time.Millisecond)
	s.waitEvent(t, 10)

	b.restart() // a is now over its share of two nodes
	s.waitFor(t, "a close with 4012", func(recs []stamped) bool { return noticeWithCode(recs, noticeDisconnected, 4012) })
	s.waitFor(t, "a second connection", func(recs []stamped) bool { return count(recs, "notice", noticeConnected) >= 2 })
	recs := finishFlow(t, s, pub)
	checkAllRecovered(t, recs)
	checkReconnectedAtOnce(t, recs, 4012)
}

// A client whose application stops taking events (data.pause_ms) while a
// burst is published overflows its send queue on the node, which closes
// it (4008, or a reset when its buffers are full); the client resumes and
// the application, once it goes on, gets every event once, in order. A
// browser reads on while its page is busy, so for it the path stalls too
// (a relay that stops reading), as a slow network would.
func slowScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL(), "--send-queue-messages", "64", "--send-queue-bytes", "1048576")
	path := relaytest.Start(t, n.listen)
	pub := newPublisher(t, ns, room)
	s := r.start(t, follow("ws://"+path.Addr()+"/ws"))
	s.waitFor(t, "a subscribe response", func(recs []stamped) bool { return count(recs, "subscribed", "") > 0 })

	pub.publish(map[string]any{"pause_ms": 8000})
	s.waitEvent(t, 0)
	if !r.pausesReads() {
		path.Stall()
	}
	pad := strings.Repeat("x", 32<<10)
	const most = 1500 // 48 MiB: more than any socket buffers and queues hold
	closed := false
	for i := 0; i < most && !closed; i++ {
		if pub.publish(map[string]any{"pad": pad}) < 0 {
			t.FailNow()
		}
		if i%20 == 19 {
			closed = n.metricOr(t, "roomcast_connection_closes_total", `reason="slow_consumer"`) >= 1
		}
	}
	path.Flow()
	if !closed {
		t.Fatalf("the node did not close the paused client after %d events of 32 KiB", most)
	}
	pub.publishN(5)
	total := pub.published()
	s.waitEvent(t, total-1)

	recs := s.all()
	checkExactly(t, recs, room, upTo(total))
	checkAllRecovered(t, recs)
	if count(recs, "notice", noticeDisconnected) == 0 {
		t.Fatal("the client was closed as a slow consumer, but reported no disconnection")
	}
}

// Events published while the client is away are purged before it comes
// back: its resume is told recovered: false, and it goes on with what
// the stream still holds, each once, in order.
func historyLostScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL())
	pub := newPublisher(t, ns, room)
	s := r.start(t, follow(urlOf(r, n)))
	pub.publishN(20)
	s.waitEvent(t, 19)

	n.stop()
	s.waitNotice(t, noticeDisconnected)
	pub.publishN(20) // n=20..39: gone before the client is back
	pub.purge()
	pub.publishN(20) // n=40..59
	n.restart()
	s.waitEvent(t, 59)
	s.waitSubscribed(t, 2)

	recs := s.all()
	checkExactly(t, recs, room, append(upTo(20), between(40, 60)...))
	last := lastSubscribed(recs)
	if last.Recovered || !last.Resumed {
		t.Fatalf("the resume after the purge: %s; want resumed with recovered false", describe(last.record))
	}
}

// The stream is deleted and created again by hand while the client is
// away, its sequences starting at 1 again: the new stream's events come
// with seqs at or below the client's kept one, which only the response's
// epoch tells from duplicates (the hold rule). Every event once, and the
// loss told.
func streamRecreatedScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL())
	pub := newPublisher(t, ns, room)
	s := r.start(t, follow(urlOf(r, n)))
	pub.publishN(10) // seq 1..10
	s.waitEvent(t, 9)

	n.stop()
	s.waitNotice(t, noticeDisconnected)
	natstest.RecreateStream(t, pub.js, streamName, nil)
	pub.publishN(4) // n=10..13, seq 1..4 of the new stream
	n.restart()
	s.waitEvent(t, 13)
	s.waitSubscribed(t, 2)

	recs := s.all()
	checkExactly(t, recs, room, upTo(14))
	last := lastSubscribed(recs)
	if last.Recovered || !last.Resumed || last.Epoch == firstSubscribed(recs).Epoch {
		t.Fatalf("the resume into the new stream: %s; want resumed in another epoch with recovered false", describe(last.record))
	}
}

// A room followed with state: the first response carries the latest event
// of each live key; after the history is purged while the client is away,
// its resume is answered recovered: false with the state again (the keys
// outlive the history), and the events after it follow.
func stateScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL())
	pub := newPublisher(t, ns, room)
	pub.publishKeyed(nil, "worker:w1", false)
	pub.publishKeyed(nil, "worker:w2", false)
	pub.publishKeyed(nil, "worker:w1", false) // supersedes n=0
	pub.publishKeyed(nil, "worker:w2", true)  // ends worker:w2
	pub.publishKeyed(nil, "worker:w3", false)
	waitState(t, n, room, 2)
	cfg := follow(urlOf(r, n))
	cfg.Rooms[0] = roomConfig{Room: room, State: true}
	s := r.start(t, cfg)
	s.waitSubscribed(t, 1)
	if first := firstSubscribed(s.all()); first.State != 2 {
		t.Fatalf("the first response: %s; want a state of 2 keys (worker:w1, worker:w3)", describe(first.record))
	}
	pub.publishKeyed(nil, "worker:w4", false) // n=5
	s.waitEvent(t, 5)
	waitState(t, n, room, 3) // the keeper has read it before the history goes

	n.stop()
	s.waitNotice(t, noticeDisconnected)
	pub.publishKeyed(nil, "worker:w5", false) // n=6: purged before any node reads it
	pub.purge()
	pub.publishKeyed(nil, "worker:w6", false) // n=7
	n.restart()
	s.waitSubscribed(t, 2)

	recs := s.all()
	last := lastSubscribed(recs)
	// worker:w1, w3 and w4 at least; w6 too when the keeper read it first.
	if last.Recovered || !last.Resumed || last.State < 3 {
		t.Fatalf("the resume after the purge: %s; want resumed, recovered false, with a state of 3 keys or more", describe(last.record))
	}
	// n=7 comes in the state, or after it when the keeper had not read it.
	if got := eventNs(recs, room); len(got) < 1 || got[0] != 5 || len(got) > 2 || len(got) == 2 && got[1] != 7 {
		t.Fatalf("events handed over: n=%v; want n=5, then n=7 at most (the rest came in the states)", got)
	}
}

// A client with a refresh callback refreshes its short-lived token on the
// open connection, past the first token's expiry and the node's 5 s of
// grace: one connection, every event once.
func tokenRefreshScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL(), "--jwt-secret-file", secretFile(t, testSecret), "--jwt-leeway", "0s")
	ts := startTokenServer(t, 4*time.Second)
	pub := newPublisher(t, ns, room)
	cfg := follow(urlOf(r, n))
	// The first token lives a little longer, so that a runner slow to
	// start on a busy machine does not connect with it expired.
	started := time.Now()
	cfg.Token, cfg.RefreshURL = mint(t, 6*time.Second), ts.URL
	firstExpiry := started.Add(6 * time.Second)
	s := r.start(t, cfg)
	pub.flow(50 * time.Millisecond)
	// The node would have closed a connection that kept the first token
	// 5 s after it expired.
	beyond := firstExpiry.Add(7 * time.Second)
	s.waitFor(t, "events past the first token's expiry and grace", func([]stamped) bool { return time.Now().After(beyond) })
	recs := finishFlow(t, s, pub)
	if c := count(recs, "notice", noticeConnected); c != 1 {
		t.Fatalf("%d connections; want the first one kept:\n%s", c, tail(recs, 30))
	}
	// A token of 4 s (3 to 4 s: exp is in whole seconds) is refreshed at
	// half its life, every 1.5 s at the soonest. Many more is a client that
	// refreshes a fresh token again at once (its refresh time before half
	// the life: "exp - 10 s").
	if c := count(recs, "notice", noticeTokenRefreshFailed); c != 0 {
		t.Fatalf("%d failed refreshes; want none:\n%s", c, tail(recs, 30))
	}
	elapsed := time.Since(started)
	if served, most := ts.served.Load(), int64(elapsed/(1500*time.Millisecond))+2; served > most {
		t.Fatalf("%d tokens asked for in %s; want %d at most (tokens of 4 s, refreshed at half their life)", served, elapsed.Round(time.Second), most)
	}
	if c := count(recs, "notice", noticeTokenRefreshed); c < 2 {
		t.Fatalf("%d tokens refreshed; want 2 or more (tokens of 4 s over %s)", c, elapsed.Round(time.Second))
	}
	if c := count(recs, "notice", noticeDisconnected); c != 0 {
		t.Fatalf("%d disconnections; want none:\n%s", c, tail(recs, 30))
	}
}

// A token that expires without a refresh callback: the node closes with
// 4001 and the client stops, saying why, instead of reconnecting.
func tokenExpiredScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL(), "--jwt-secret-file", secretFile(t, testSecret), "--jwt-leeway", "0s")
	cfg := follow(urlOf(r, n))
	cfg.Token = mint(t, 2*time.Second)
	s := r.start(t, cfg)
	stopped := waitStopped(t, s)
	if stopped.Code != 4001 {
		t.Fatalf("stopped: %s; want code 4001", describe(stopped))
	}
	if c := count(s.all(), "notice", noticeConnected); c != 1 {
		t.Fatalf("%d connections; want 1 (no reconnection with an expired token)", c)
	}
}

// A token the node refuses at once (expired before it was sent): 1008,
// and the client stops instead of trying again.
func tokenRefusedScenario(t testing.TB, r runner) {
	ns := natsFor(t)
	n := startNode(t, "edge", ns.ClientURL(), "--jwt-secret-file", secretFile(t, testSecret), "--jwt-leeway", "0s")
	cfg := follow(urlOf(r, n))
	cfg.Token = mint(t, -time.Minute)
	s := r.start(t, cfg)
	stopped := waitStopped(t, s)
	if stopped.Code != 1008 {
		t.Fatalf("stopped: %s; want code 1008", describe(stopped))
	}
	if recs := s.all(); count(recs, "notice", noticeDisconnected) > 1 {
		t.Fatalf("%d disconnections; want at most the one that stopped it:\n%s", count(recs, "notice", noticeDisconnected), tail(recs, 20))
	}
}

// A node that sends bad input among real messages (a fake: a real node
// never does): each is reported as bad_input and skipped, the events
// around it are handed over, the connection kept.
func badInputScenario(t testing.TB, r runner) {
	f := startFakeNode(t, withBadInput)
	cfg := follow(f.URL())
	cfg.Rooms[0].Room = "pool:fake"
	s := r.start(t, cfg)
	s.waitEvent(t, 3)
	s.waitFor(t, fmt.Sprintf("%d bad_input notices", len(badInput)), func(recs []stamped) bool {
		return count(recs, "notice", noticeBadInput) >= len(badInput)
	})

	recs := s.all()
	checkExactly(t, recs, "pool:fake", upTo(4))
	if c := count(recs, "notice", noticeBadInput); c != len(badInput) {
		t.Fatalf("%d bad_input notices; want %d, one for each:\n%s", c, len(badInput), tail(recs, 30))
	}
	if c := count(recs, "notice", noticeDisconnected) + count(recs, "stopped", ""); c != 0 {
		t.Fatalf("the bad input ended the connection:\n%s", tail(recs, 30))
	}
}

// A subscribe whose catch-up fails after its response (an UNAVAILABLE
// with its id: the node left the room; a fake, as a real node does it
// too rarely to catch) is told and subscribed again, as any UNAVAILABLE
// subscribe, and the room's events follow.
func lateUnavailableScenario(t testing.TB, r runner) {
	f := startFakeNode(t, withLateUnavailable)
	cfg := follow(f.URL())
	cfg.Rooms[0] = roomConfig{Room: "pool:fake", State: true}
	s := r.start(t, cfg)
	s.waitEvent(t, 0)

	recs := s.all()
	if c := count(recs, "subscribed", ""); c != 2 {
		t.Fatalf("%d subscribe responses; want 2, the second after the retry:\n%s", c, tail(recs, 20))
	}
	var told []record
	for _, s := range recs {
		if s.Kind == "notice" && s.Notice == noticeRequestError {
			told = append(told, s.record)
		}
	}
	if len(told) != 1 || told[0].Error != "UNAVAILABLE" || told[0].Room != "pool:fake" {
		t.Fatalf("request errors told: %v; want one UNAVAILABLE of pool:fake", told)
	}
	if got := f.subscribes.Load(); got != 2 {
		t.Fatalf("the node read %d subscribes; want 2", got)
	}
}
