package roomcast_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	roomcast "github.com/roomcast/roomcast/clients/go"
)

// scriptedNode is a FAKE node for one connection: it upgrades, answers
// pings, and hands the client's requests to script, which answers them.
func scriptedNode(t *testing.T, script func(next func() (typ, event, id string, data json.RawMessage), send func(string))) string {
	t.Helper()
	return fakeListener(t, func(nc net.Conn) {
		send := func(s string) { _ = wsutil.WriteServerText(nc, []byte(s)) }
		next := func() (string, string, string, json.RawMessage) {
			for {
				p, err := wsutil.ReadClientText(nc)
				if err != nil {
					return "", "", "", nil
				}
				var m struct {
					Type, Event, ID string
					Data            json.RawMessage
				}
				_ = json.Unmarshal(p, &m)
				if m.Type == "ping" {
					send(`{"type":"pong","id":"` + m.ID + `"}`)
					continue
				}
				return m.Type, m.Event, m.ID, m.Data
			}
		}
		script(next, send)
	})
}

// fakeListener is the loopback side of a FAKE node: it accepts one
// connection, upgrades it, has serve talk on it, then reads until the
// client or the test ends it; the test's end closes everything.
func fakeListener(t *testing.T, serve func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		stop := context.AfterFunc(t.Context(), func() { _ = nc.Close() })
		defer stop()
		if _, err := ws.Upgrade(nc); err != nil {
			return
		}
		serve(nc)
		for {
			if _, _, err := wsutil.ReadClientData(nc); err != nil {
				return
			}
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws"
}

func fakeEvent(seq int) string {
	return fmt.Sprintf(`{"type":"event","room":"pool:x","event":"e","seq":%d,"data":{"n":%d}}`, seq, seq)
}

// An event the node sent before it read the client's unsubscribe belongs
// to the subscription being left: it is dropped, even when the client
// subscribes the room again before the unsubscribe is answered. Handed
// over, it would become the new subscription's position, and the history
// that the new subscribe asked for (seqs at or below it) would be
// dropped as duplicates.
func TestEventsOfALeftSubscriptionAreDropped(t *testing.T) {
	t.Parallel()
	read := make(chan struct{})
	url := scriptedNode(t, func(next func() (string, string, string, json.RawMessage), send func(string)) {
		_, _, id, _ := next() // the live subscribe
		send(`{"type":"response","event":"subscribe","id":"` + id + `","data":{"status":"subscribed","channel":"pool:x","seq":10,"replayed":0,"recovered":true,"epoch":"e1"}}`)
		send(fakeEvent(11))
		close(read)
		_, _, uid, _ := next() // the unsubscribe
		_, _, sid, _ := next() // the history subscribe
		// Event 12 was on its way before the node read the unsubscribe.
		send(fakeEvent(12))
		send(`{"type":"response","event":"unsubscribe","id":"` + uid + `","data":{"status":"unsubscribed","channel":"pool:x"}}`)
		for seq := 1; seq <= 12; seq++ {
			send(fakeEvent(seq))
		}
		send(`{"type":"response","event":"subscribe","id":"` + sid + `","data":{"status":"subscribed","channel":"pool:x","seq":12,"replayed":12,"recovered":true,"epoch":"e1"}}`)
	})
	f := follow(t, roomcast.Options{URLs: []string{url}}, roomcast.SubscribeOptions{}, "pool:x")
	f.waitEvents(t, 1)
	<-read
	if err := f.c.Unsubscribe("pool:x"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Subscribe("pool:x", roomcast.SubscribeOptions{History: true}); err != nil {
		t.Fatal(err)
	}
	f.waitSubscribed(t, 2)
	var got []uint64
	for _, e := range f.events() {
		got = append(got, e.Seq)
	}
	want := []uint64{11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events handed over: %v; want %v (11 live, then the history the new subscribe asked for)", got, want)
	}
}

// An unsubscribe refused RATE_LIMITED is told and sent again after the
// backoff (docs/protocol.md section 3, "Errors"): left as it was, the node
// would go on sending the room, and counting it against the connection's
// subscriptions.
func TestUnsubscribeRateLimitedIsSentAgain(t *testing.T) {
	t.Parallel()
	again := make(chan string, 1)
	url := scriptedNode(t, func(next func() (string, string, string, json.RawMessage), send func(string)) {
		_, _, id, _ := next()
		send(`{"type":"response","event":"subscribe","id":"` + id + `","data":{"status":"subscribed","channel":"pool:x","seq":10,"replayed":0,"recovered":true,"epoch":"e1"}}`)
		_, _, uid, _ := next()
		send(`{"type":"error","event":"unsubscribe","id":"` + uid + `","data":{"code":"RATE_LIMITED","message":"slow down"}}`)
		send(fakeEvent(11)) // still a member: dropped
		_, event, _, data := next()
		again <- event + " " + string(data)
	})
	f := follow(t, roomcast.Options{URLs: []string{url}, BackoffMin: 50 * time.Millisecond}, roomcast.SubscribeOptions{}, "pool:x")
	f.waitSubscribed(t, 1)
	if err := f.c.Unsubscribe("pool:x"); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-again:
		if got != `unsubscribe {"channel":"pool:x"}` {
			t.Fatalf("after the RATE_LIMITED the client sent %s; want the unsubscribe again", got)
		}
	case <-time.After(wait):
		t.Fatal("the refused unsubscribe was not sent again")
	}
	if n := f.waitNotice(t, roomcast.RequestError, 1); n.Error != "RATE_LIMITED" || n.Room != "pool:x" {
		t.Fatalf("notice %+v", n)
	}
	if e := f.events(); len(e) != 0 {
		t.Fatalf("events of the room left were handed over: %+v", e)
	}
}

// A Subscribe of a followed room with a position (docs/protocol.md
// section 3, "Positions") leaves the old subscription first: its event
// 12, on its way before the node read the client's next message, is
// dropped. Handed over, it would become the kept seq above the position
// asked for, and the replay from there would be dropped as duplicates.
func TestSubscribeWithAPositionLeavesTheOldSubscriptionFirst(t *testing.T) {
	t.Parallel()
	requests := make(chan string, 2)
	url := scriptedNode(t, func(next func() (string, string, string, json.RawMessage), send func(string)) {
		_, _, id, _ := next() // the live subscribe
		send(`{"type":"response","event":"subscribe","id":"` + id + `","data":{"status":"subscribed","channel":"pool:x","seq":10,"replayed":0,"recovered":true,"epoch":"e1"}}`)
		send(fakeEvent(11))
		_, event, rid, data := next()
		requests <- event + " " + string(data)
		uid, sid := "", rid
		if event == "unsubscribe" {
			uid = rid
			_, event, sid, data = next()
			requests <- event + " " + string(data)
		}
		send(fakeEvent(12)) // the old subscription's, in flight
		if uid != "" {
			send(`{"type":"response","event":"unsubscribe","id":"` + uid + `","data":{"status":"unsubscribed","channel":"pool:x"}}`)
		}
		for seq := 6; seq <= 12; seq++ {
			send(fakeEvent(seq))
		}
		send(`{"type":"response","event":"subscribe","id":"` + sid + `","data":{"status":"subscribed","channel":"pool:x","seq":12,"replayed":7,"recovered":true,"epoch":"e1"}}`)
		send(fakeEvent(13))
	})
	f := follow(t, roomcast.Options{URLs: []string{url}}, roomcast.SubscribeOptions{}, "pool:x")
	f.waitEvents(t, 1)
	since := uint64(5)
	if err := f.c.Subscribe("pool:x", roomcast.SubscribeOptions{Since: &since, Epoch: "e1"}); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, requests); got != `unsubscribe {"channel":"pool:x"}` {
		t.Fatalf("after a Subscribe with a position the client sent %s; want an unsubscribe first", got)
	}
	if got := receive(t, requests); got != `subscribe {"channel":"pool:x","since":5,"epoch":"e1"}` {
		t.Fatalf("then %s; want the subscribe from the position given", got)
	}
	if s := f.waitSubscribed(t, 2); !s.Resumed || s.Seq != 12 {
		t.Fatalf("the second subscribe response: %+v; want resumed (not the room's first), seq 12", s)
	}
	waitFor(t, "event 13", func() error {
		if e := f.events(); len(e) == 0 || e[len(e)-1].Seq != 13 {
			return fmt.Errorf("%d events", len(e))
		}
		return nil
	})
	var got []uint64
	for _, e := range f.events() {
		got = append(got, e.Seq)
	}
	if want := []uint64{11, 6, 7, 8, 9, 10, 11, 12, 13}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events handed over: %v; want %v (11 live, then the replay from since 5)", got, want)
	}
}

// receive is the next request the scripted node read, or fails the test.
func receive(t *testing.T, requests chan string) string {
	t.Helper()
	select {
	case r := <-requests:
		return r
	case <-time.After(wait):
		t.Fatal("the client sent no request")
		return ""
	}
}
