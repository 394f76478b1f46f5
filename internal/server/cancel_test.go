package server_test

import (
	"encoding/json"
	"testing"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// A client that subscribes with since 0 to a long room, reads slowly and
// gives up (unsubscribes) used to wait behind the whole replay, which went
// on reading the stream for nobody (issue 18). The unsubscribe now cancels
// the catch-up in flight: the subscribe is answered CANCELLED after the
// events it sent, then the unsubscribe, and the node stops reading.
func TestUnsubscribeCancelsACatchUpInFlight(t *testing.T) {
	const n, room = 20_000, "pool:long"
	ns := natstest.RunServer(t)
	edit := func(c *config.Serve) { c.RetentionMaxPerRoom = n }
	srv := startNode(t, ns, edit)
	fillRoomAt(t, ns.ClientURL(), room, n)
	before := catchUpReads(t, srv)

	c := dialSmallBuffer(t, srv)
	zero := uint64(0)
	if err := c.Subscribe("s1", room, &zero); err != nil {
		t.Fatal(err)
	}
	got := readEvents(t, c, 100) // a slow reader: 100, then it gives up
	if err := c.Request(wire.EventUnsubscribe, "u1", map[string]string{"channel": room}); err != nil {
		t.Fatal(err)
	}
	rest, answer := readUntil(t, c, "s1")
	expectCode(t, answer, wire.CodeCancelled)
	if between, m := readUntil(t, c, "u1"); len(between) != 0 || m.Type != wire.TypeResponse {
		t.Fatalf("after CANCELLED: %d messages, then %+v (data %s); want the unsubscribe's response", len(between), m, m.Data)
	}
	got = append(got, rest...)
	expectCounters(t, got, 0)
	if len(got) >= n {
		t.Fatalf("the cancelled subscribe sent all %d events", len(got))
	}
	cancelled := catchUpReads(t, srv) - before

	// The join has returned (the unsubscribe was handled after it): what
	// it read is all it reads. A round trip later, nothing more was read.
	ping(t, c)
	if after := catchUpReads(t, srv) - before; after != cancelled {
		t.Fatalf("stream requests went on after the cancel: %v, then %v", cancelled, after)
	}
	// The whole replay, on a node of its own, for scale.
	other := startNode(t, ns, edit)
	before = catchUpReads(t, other)
	if _, replay := subscribe(t, dial(t, other), room, &zero); len(replay) != n {
		t.Fatalf("a whole replay: %d events, want %d", len(replay), n)
	}
	whole := catchUpReads(t, other) - before
	t.Logf("%d of %d events sent before the cancel; %v stream requests, %v for the whole replay", len(got), n, cancelled, whole)
	if cancelled*2 > whole {
		t.Fatalf("the cancelled catch-up made %v stream requests, the whole replay %v: it did not stop reading", cancelled, whole)
	}
}

// A subscribe of the room again, with since, cancels the catch-up in
// flight as well, and gets exactly the events after its since, then live
// events with no gap and no duplicate.
func TestSubscribeAgainCancelsTheCatchUpAndResumesExactly(t *testing.T) {
	const n, room = 20_000, "pool:again"
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, func(c *config.Serve) { c.RetentionMaxPerRoom = n })
	fillRoomAt(t, ns.ClientURL(), room, n)

	c := dialSmallBuffer(t, srv)
	zero := uint64(0)
	if err := c.Subscribe("s1", room, &zero); err != nil {
		t.Fatal(err)
	}
	got := readEvents(t, c, 100)
	since := got[len(got)-1].Seq
	if err := c.Subscribe("s2", room, &since); err != nil {
		t.Fatal(err)
	}
	first, answer := readUntil(t, c, "s1")
	expectCode(t, answer, wire.CodeCancelled)
	expectCounters(t, append(got, first...), 0)
	second, m := readUntil(t, c, "s2")
	if m.Type != wire.TypeResponse {
		t.Fatalf("the second subscribe: %+v (data %s)", m, m.Data)
	}
	var res wire.SubscribeResult
	if err := json.Unmarshal(m.Data, &res); err != nil {
		t.Fatal(err)
	}
	expectCounters(t, second, 100)
	if len(second) != n-100 || res.Replayed != n-100 || !res.Recovered {
		t.Fatalf("the second subscribe: %d events before %+v; want the %d after since %d, recovered", len(second), res, n-100, since)
	}
	newPublisher(t, ns.ClientURL()).event(room, "live", n)
	if live := readEvents(t, c, 1); counterOf(t, live[0]) != n || live[0].Seq <= res.Seq {
		t.Fatalf("live event after the resume: %+v, response seq %d", live[0], res.Seq)
	}
}

// Only a request that will be handled cancels: a malformed one, or one
// over the rate limit, leaves the catch-up to finish.
func TestRefusedMessagesCancelNothing(t *testing.T) {
	const n, room = 5_000, "pool:kept"
	for _, tc := range []struct {
		name   string
		edit   func(*config.Serve)
		before int      // pings sent first, to use up the rate limit's burst
		sends  []string // sent during the catch-up
		codes  []string // their answers, in order
	}{
		{"malformed", nil, 0, []string{
			`{"type":"request","event":"unsubscribe","id":"bad1","data":{"channel":"pool:"}}`,
			`{"type":"request","event":"unsubscribe","id":"bad2","data":{"channel":"pool:kept","since":5}}`,
		}, []string{wire.CodeInvalidRoom, wire.CodeBadRequest}},
		// A burst of max-subscriptions + 10 = 11 at one message a second:
		// 10 pings and the subscribe take it all, unless a second passed
		// before the unsubscribe arrived (see refilled).
		{"rate limited", func(c *config.Serve) { c.RateLimit, c.MaxSubscriptions = 1, 1 }, 10, []string{
			`{"type":"request","event":"unsubscribe","id":"over","data":{"channel":"pool:kept"}}`,
		}, []string{wire.CodeRateLimited}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.RunServer(t)
			srv := startNode(t, ns, func(c *config.Serve) {
				c.RetentionMaxPerRoom = n
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			fillRoomAt(t, ns.ClientURL(), room, n)
			for attempt := 1; ; attempt++ {
				msgs, m, answers := catchUpWith(t, dialSmallBuffer(t, srv), room, tc.before, tc.sends)
				if refilled(t, m, answers) {
					if attempt == 5 {
						t.Fatal("5 connections in a row had their rate limit refilled before the unsubscribe arrived")
					}
					continue // a new connection, with a new burst
				}
				if m.Type != wire.TypeResponse {
					t.Fatalf("the subscribe was answered %+v (data %s); want it to finish", m, m.Data)
				}
				expectCounters(t, msgs[tc.before:], 0)
				if len(msgs) != tc.before+n {
					t.Fatalf("%d messages before the response, want %d pongs and %d events", len(msgs), tc.before, n)
				}
				for i, code := range tc.codes {
					expectCode(t, answers[i], code)
				}
				return
			}
		})
	}
}

// catchUpWith sends c before pings, a subscribe of room from 0 and sends,
// and returns what came before the subscribe's answer, that answer, and
// the answers to sends.
func catchUpWith(t *testing.T, c *client.Conn, room string, before int, sends []string) ([]wire.Message, wire.Message, []wire.Message) {
	t.Helper()
	for range before {
		if err := c.Send(wire.Message{Type: wire.TypePing, ID: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	zero := uint64(0)
	if err := c.Subscribe("s1", room, &zero); err != nil {
		t.Fatal(err)
	}
	for _, s := range sends {
		if err := c.SendRaw([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	msgs, m := readUntil(t, c, "s1")
	answers := make([]wire.Message, len(sends))
	for i := range answers {
		answers[i] = read(t, c)
	}
	return msgs, m, answers
}

// refilled reports whether the rate limit let an unsubscribe through: its
// bucket refilled before the message arrived (a second on a busy machine),
// and the attempt shows nothing about refused messages. The answer tells
// what the limit decided when the message arrived, so this is no guess
// about time. An unsubscribe let through must have cancelled, though.
func refilled(t *testing.T, subscribe wire.Message, answers []wire.Message) bool {
	t.Helper()
	for _, a := range answers {
		if a.Type == wire.TypeResponse && a.ID == "over" {
			expectCode(t, subscribe, wire.CodeCancelled)
			return true
		}
	}
	return false
}

// readUntil reads until the answer to request id and returns what came
// before it, and it.
func readUntil(t *testing.T, c *client.Conn, id string) ([]wire.Message, wire.Message) {
	t.Helper()
	var before []wire.Message
	for {
		m := read(t, c)
		if (m.Type == wire.TypeResponse || m.Type == wire.TypeError) && m.ID == id {
			return before, m
		}
		before = append(before, m)
	}
}

// expectCode checks m is an error with code.
func expectCode(t *testing.T, m wire.Message, code string) {
	t.Helper()
	var e wire.ErrorData
	if m.Type != wire.TypeError || json.Unmarshal(m.Data, &e) != nil || e.Code != code {
		t.Fatalf("got %+v (data %s), want error %s", m, m.Data, code)
	}
}

// expectCounters checks msgs are events with counters from, from+1, ...
func expectCounters(t *testing.T, msgs []wire.Message, from int) {
	t.Helper()
	for i, m := range msgs {
		if m.Type != wire.TypeEvent || counterOf(t, m) != from+i {
			t.Fatalf("message %d: %+v (data %s); want event %d", i, m, m.Data, from+i)
		}
	}
}

// ping makes a round trip to srv's handler.
func ping(t *testing.T, c *client.Conn) {
	t.Helper()
	if err := c.Send(wire.Message{Type: wire.TypePing, ID: "rt"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypePong {
		t.Fatalf("want a pong, got %+v", m)
	}
}

// catchUpReads is the node's stream requests of the kinds a catch-up
// makes. The node's anti-entropy (its stream identity every 5 s, and the
// rooms' heads) may add requests of its own kinds at any moment, so they
// are left out.
func catchUpReads(t *testing.T, srv *server.Server) float64 {
	t.Helper()
	total := 0.0
	for _, kind := range []string{metrics.StreamDirectGet, metrics.StreamLeaderGet,
		metrics.StreamConsumerCreate, metrics.StreamConsumerPull, metrics.StreamConsumerDelete} {
		total += scrapeSum(t, srv, `roomcast_stream_requests_total{kind="`+kind+`"`)
	}
	return total
}
