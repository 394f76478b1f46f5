package roomcastjs_test

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

const room = "pool:p1"

// numbered publishes events numbered from, to (data.n), as a worker does.
func numbered(t *testing.T, b *bus.Bus, from, to int) {
	t.Helper()
	for n := from; n <= to; n++ {
		payload := fmt.Appendf(nil, `{"event":"test.numbered","data":{"n":%d}}`, n)
		if _, err := b.Publish(t.Context(), wire.MustRoom(room), payload, wire.PublishOptions{MsgID: fmt.Sprintf("%s-%d-%d", t.Name(), n, time.Now().UnixNano())}); err != nil {
			t.Fatal(err)
		}
	}
}

func wsURL(addr string) string { return "ws://" + addr + "/ws" }

// A node restarted (the same address, the same NATS) while events go on:
// the client reconnects with backoff, resumes with since and epoch, and
// hands over every event once, in order, with the resume recovered.
func TestResumesAcrossANodeRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	node := servertest.Start(t, ns, nil)
	addr := node.WSAddr()
	b := bustest.On(t, natstest.Connect(t, ns.ClientURL()))
	numbered(t, b, 1, 5)

	r := startRunner(t, site(t, nil), runnerConfig{URLs: []string{wsURL(addr)}, Rooms: []roomConfig{{Room: room, History: true}},
		BackoffMinMS: 100, BackoffMaxMS: 1000})
	r.waitFor("the history", eventsAre(room, 5))
	node.Shutdown()
	numbered(t, b, 6, 10) // while no node is up
	servertest.Start(t, ns, func(c *config.Serve) { c.Listen = addr })
	numbered(t, b, 11, 12)
	r.waitFor("every event once, in order", eventsAre(room, 12))

	subs := kinds(r.records, "subscribed", "")
	last := subs[len(subs)-1]
	if len(subs) < 2 || !last.Resumed || !last.Recovered || last.Epoch == "" || last.Epoch != subs[0].Epoch {
		t.Fatalf("subscribe responses %v: want a first one, then a recovered resume in the same epoch", subs)
	}
	logRecords(t, r)
	if len(kinds(r.records, "notice", "disconnected")) == 0 || len(kinds(r.records, "stopped", "")) != 0 {
		t.Fatalf("want a disconnection told and no stop:\n%s", lines(r.records))
	}
}

var nextAttempt = regexp.MustCompile(`next attempt in (\d+) ms`)

// reconnectedAtOnce accepts records holding a disconnection with code,
// whose next attempt came within 100 ms, and a connection after it.
func reconnectedAtOnce(code int) func([]record) error {
	return func(rs []record) error {
		for i, r := range rs {
			if r.Kind != "notice" || r.Notice != "disconnected" || r.Code != code {
				continue
			}
			m := nextAttempt.FindStringSubmatch(r.Text)
			if m == nil {
				return fmt.Errorf("after %d: %q names no next attempt", code, r.Text)
			}
			if ms, _ := strconv.Atoi(m[1]); ms > 100 {
				return fmt.Errorf("after %d: %q, want the next attempt within 100 ms", code, r.Text)
			}
			if len(kinds(rs[i:], "notice", "connected")) == 0 {
				return fmt.Errorf("not connected again after %d", code)
			}
			return nil
		}
		return fmt.Errorf("no disconnection with %d yet", code)
	}
}

// Shed by a rebalancing node (4012), then drained (1001): the client
// reconnects at once each time, to the next URL, though its backoff would
// wait 10 s or more, and resumes with every event once, in order.
func TestReconnectsAtOnceWhenShedOrDrained(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	named := func(name string) func(*config.Serve) { return func(c *config.Serve) { c.ServerName = name } }
	first := servertest.Start(t, ns, named("first"))
	second := servertest.Start(t, ns, named("second"))
	b := bustest.On(t, natstest.Connect(t, ns.ClientURL()))
	numbered(t, b, 1, 3)
	r := startRunner(t, site(t, nil), runnerConfig{URLs: []string{wsURL(first.WSAddr()), wsURL(second.WSAddr())},
		Rooms: []roomConfig{{Room: room, History: true}}, BackoffMinMS: 20_000, BackoffMaxMS: 40_000})
	r.waitFor("the history", eventsAre(room, 3))

	// A crowd keeps the first node over its share: it sheds at random
	// until the client is among those shed.
	stopCrowd := servertest.Crowd(t, servertest.WSURL(first), 20)
	start := time.Now()
	r.waitFor("shed and back", reconnectedAtOnce(4012))
	stopCrowd()
	t.Logf("shed and reconnected within %s", time.Since(start).Round(time.Millisecond))
	numbered(t, b, 4, 6)
	r.waitFor("events after the shedding", eventsAre(room, 6))

	// The client is on the second node now (the next URL): drain it.
	second.Shutdown()
	numbered(t, b, 7, 9)
	r.waitFor("drained and back", reconnectedAtOnce(1001))
	r.waitFor("every event once, in order", eventsAre(room, 9))
	logRecords(t, r)
	if len(kinds(r.records, "notice", "draining")) == 0 {
		t.Errorf("server.draining not told:\n%s", lines(r.records))
	}
}

// Events of the room are purged while the client is cut off: its resume
// is answered recovered:false, which it hands over (the application is
// told of the loss), and it goes on with the events after, without
// stopping or retrying.
func TestToldOfEventsLostToAPurge(t *testing.T) {
	t.Parallel()
	node := servertest.Start(t, nil, nil)
	b := bustest.On(t, node.NATSConn())
	proxy := relaytest.Start(t, node.WSAddr())
	numbered(t, b, 1, 3)
	r := startRunner(t, site(t, nil), runnerConfig{URLs: []string{wsURL(proxy.Addr())}, Rooms: []roomConfig{{Room: room, History: true}},
		BackoffMinMS: 100, BackoffMaxMS: 500})
	r.waitFor("the history", eventsAre(room, 3))

	proxy.Cut(true)
	r.waitFor("cut off", func(rs []record) error {
		if len(kinds(rs, "notice", "disconnected")) == 0 {
			return fmt.Errorf("no disconnection told")
		}
		return nil
	})
	js, err := jetstream.New(node.NATSConn()) // the node's own connection: a worker's may not manage the stream
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(t.Context(), bus.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context(), jetstream.WithPurgeSubject(b.Subjects().Room(wire.MustRoom(room)))); err != nil {
		t.Fatal(err)
	}
	numbered(t, b, 4, 5)
	proxy.Allow()
	r.waitFor("the loss told, the events after handed over", func(rs []record) error {
		var lost bool
		for _, s := range kinds(rs, "subscribed", "") {
			lost = lost || (s.Resumed && !s.Recovered)
		}
		if !lost {
			return fmt.Errorf("no resume with recovered:false yet")
		}
		return eventsAre(room, 5)(rs)
	})
	logRecords(t, r)
	if len(kinds(r.records, "stopped", "")) != 0 {
		t.Fatalf("the client stopped:\n%s", lines(r.records))
	}
}
