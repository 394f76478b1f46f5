package roomcast_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws/wsutil"

	roomcast "github.com/roomcast/roomcast/clients/go"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// fakeNode is a FAKE server, not a roomcast node: a real node never sends
// what it sends (frames that are not JSON, an unknown type, a binary
// frame, events without a room or a seq). It answers the client's first
// ping and its subscribe, and sends the bad frames between the two.
func fakeNode(t *testing.T) string {
	t.Helper()
	return fakeListener(t, func(nc net.Conn) { serveBadInput(t, nc) })
}

// serveBadInput is the fake node's conversation.
func serveBadInput(t *testing.T, nc net.Conn) {
	text := func(s string) { _ = wsutil.WriteServerText(nc, []byte(s)) }
	var subID string
	for subID == "" {
		p, err := wsutil.ReadClientText(nc)
		if err != nil {
			return
		}
		var m struct{ Type, Event, ID string }
		_ = json.Unmarshal(p, &m)
		switch {
		case m.Type == "ping":
			text(`{"type":"pong","id":"` + m.ID + `"}`)
		case m.Event == "subscribe":
			subID = m.ID
		}
	}
	text(`not json`)
	text(`[1,2]`)
	text(`{"type":"mystery"}`)
	_ = wsutil.WriteServerBinary(nc, []byte{1, 2, 3})
	text(`{"type":"event","event":"e","seq":5,"data":{"n":-1}}`)
	text(`{"type":"event","room":"pool:fake","event":"e","data":{"n":-1}}`)
	text(`{"type":"response","event":"subscribe","id":"` + subID + `","data":{"status":"subscribed","channel":"pool:fake","seq":6,"replayed":0,"recovered":true,"epoch":"e1","later":"ignored"}}`)
	text(`{"type":"event","room":"pool:fake","event":"e","seq":7,"ts":"2026-12-01T08:00:00.123Z","data":{"n":0},"newer_field":1}`)
}

// What the client cannot read is told as bad_input and skipped; the
// connection goes on.
func TestBadInputIsToldAndSkipped(t *testing.T) {
	t.Parallel()
	f := follow(t, roomcast.Options{URLs: []string{fakeNode(t)}}, roomcast.SubscribeOptions{}, "pool:fake")
	f.waitEvents(t, 1)
	bad := f.notices(roomcast.BadInput)
	want := []string{"not a JSON object", "not a JSON object", "unknown type", "binary", "without a room", "without a valid seq"}
	if len(bad) != len(want) {
		t.Fatalf("bad input told: %+v; want %d notices", bad, len(want))
	}
	for i, w := range want {
		if !strings.Contains(bad[i].Text, w) {
			t.Errorf("bad input %d: %q, want it to say %q", i, bad[i].Text, w)
		}
	}
	if e := f.events()[0]; e.Seq != 7 || e.Room != "pool:fake" || e.Time().IsZero() {
		t.Fatalf("event %+v", e)
	}
	if s := f.waitSubscribed(t, 1); s.Epoch != "e1" || s.Seq != 6 {
		t.Fatalf("subscribed %+v", s)
	}
	if d := f.notices(roomcast.Disconnected); len(d) != 0 {
		t.Fatalf("the connection ended: %+v", d)
	}
}

// A connection that goes silent (a frozen peer: no close comes) is pinged
// after PingAfter and dropped PingTimeout later; the client reconnects,
// to the next URL, and resumes.
func TestSilentConnectionIsDropped(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, nil, nil)
	proxy := relaytest.Start(t, srv.WSAddr())
	f := follow(t, roomcast.Options{URLs: []string{"ws://" + proxy.Addr() + "/ws", servertest.WSURL(srv)},
		PingAfter: 300 * time.Millisecond, PingTimeout: 300 * time.Millisecond}, roomcast.SubscribeOptions{}, "pool:silent")
	f.waitSubscribed(t, 1)
	proxy.Silence()
	d := f.waitNotice(t, roomcast.Disconnected, 1)
	if d.Code != 1006 || !strings.Contains(d.Text, "no answer to a ping") {
		t.Fatalf("disconnected %+v; want 1006, no answer to a ping", d)
	}
	if s := f.waitSubscribed(t, 2); !s.Resumed {
		t.Fatalf("subscribed %+v", s)
	}
}

// A subscribe response whose data does not parse is told as bad input
// and handled as an UNAVAILABLE: the events held for it are dropped and
// the room is subscribed again, from the kept position, after the retry
// wait (a FAKE node: a real one never sends such a response).
func TestUnreadableSubscribeResponseIsRetried(t *testing.T) {
	t.Parallel()
	again := make(chan string, 1)
	url := scriptedNode(t, func(next func() (string, string, string, json.RawMessage), send func(string)) {
		_, _, id, _ := next() // the resume from since 10
		send(fakeEvent(9))    // held: at or below the kept seq
		send(fakeEvent(11))   // held behind it
		send(`{"type":"response","event":"subscribe","id":"` + id + `","data":{"status":"subscribed","seq":"eleven"}}`)
		_, event, id, data := next()
		again <- event + " " + string(data)
		send(fakeEvent(11))
		send(`{"type":"response","event":"subscribe","id":"` + id + `","data":{"status":"subscribed","channel":"pool:x","seq":11,"replayed":1,"recovered":true,"epoch":"e1"}}`)
		send(fakeEvent(12))
	})
	since := uint64(10)
	f := follow(t, roomcast.Options{URLs: []string{url}}, roomcast.SubscribeOptions{Since: &since, Epoch: "e1"}, "pool:x")
	select {
	case got := <-again:
		if got != `subscribe {"channel":"pool:x","since":10,"epoch":"e1"}` {
			t.Fatalf("after the unreadable response the client sent %s; want the resume from 10 again", got)
		}
	case <-time.After(wait):
		t.Fatal("the room was not subscribed again after its unreadable response")
	}
	f.waitEvents(t, 2)
	if s := f.waitSubscribed(t, 1); s.Seq != 11 {
		t.Fatalf("subscribed %+v", s)
	}
	var seqs []uint64
	for _, e := range f.events() {
		seqs = append(seqs, e.Seq)
	}
	if len(seqs) != 2 || seqs[0] != 11 || seqs[1] != 12 {
		t.Fatalf("events handed over: %v; want [11 12]", seqs)
	}
	bad := f.notices(roomcast.BadInput)
	if len(bad) != 1 || bad[0].Room != "pool:x" || !strings.Contains(bad[0].Text, "subscribing again") {
		t.Fatalf("bad input told: %+v; want one of pool:x, subscribing again", bad)
	}
}
