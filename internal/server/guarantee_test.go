package server_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A client of the embedded NATS cannot publish to a live subject: a forged
// live event with a huge sequence would make the edge drop every real
// event of the room as a duplicate. The forgery is refused by NATS, and the
// real event that follows reaches the subscriber.
func TestForgedLiveEventIsRefused(t *testing.T) {
	srv := startNode(t, nil, nil)
	c := dial(t, srv)
	const room = "pool:forged"
	subscribe(t, c, room, nil)

	forger, errs := violations(t, srv)
	forged := nats.NewMsg("roomcast.live.pool.forged")
	forged.Header.Set(jetstream.StreamHeader, "ROOMCAST")
	forged.Header.Set(jetstream.SubjectHeader, "roomcast.rooms.pool.forged")
	forged.Header.Set(jetstream.SequenceHeader, "999999999")
	forged.Header.Set(jetstream.LastSequenceHeader, "0")
	forged.Header.Set(jetstream.TimeStampHeaer, time.Now().UTC().Format(time.RFC3339Nano))
	forged.Data = []byte(`{"event":"worker.status_changed","data":{"forged":true}}`)
	if err := forger.PublishMsg(forged); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, errs, "publishing to a live subject")

	// Nor can it answer the edge's stream reads in the stream's place, or
	// forge JetStream's advisories.
	for _, subject := range []string{"_ROOMCAST_EDGE.forged", "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.ROOMCAST"} {
		if err := forger.Publish(subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, errs, "publishing to "+subject)
	}

	real := newPublisher(t, srv.NATSURL()).event(room, "worker.status_changed", 1)
	if m := readEvents(t, c, 1)[0]; m.Seq != real || counterOf(t, m) != 1 {
		t.Fatalf("after the forgery the client got seq %d (%s), want the real event %d", m.Seq, m.Data, real)
	}
}

// streamAdmin is an operator's JetStream client.
func streamAdmin(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// The stream is deleted (a wiped store) while clients are subscribed: the
// edge creates it again by itself, past every sequence the old one used,
// and closes its clients with 4010. A client resuming with a position from
// the old stream is told recovered: false and gets the new stream's events.
func TestDeletedStreamIsRecreatedAndClientsAreTold(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, nil)
	pub := newPublisher(t, ns.ClientURL())
	const room = "pool:wiped"
	c := dial(t, srv)
	subscribe(t, c, room, nil)
	var old uint64
	for i := range 3 {
		old = pub.event(room, "e", i)
	}
	readEvents(t, c, 3)

	js := streamAdmin(t, ns.ClientURL())
	if err := js.DeleteStream(t.Context(), "ROOMCAST"); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, int(wire.CloseStreamReset))

	var base uint64
	natstest.WaitFor(t, 20*time.Second, func() error {
		st, err := js.Stream(t.Context(), "ROOMCAST")
		if err != nil {
			return err
		}
		base = st.CachedInfo().Config.FirstSeq
		return nil
	})
	if base <= old {
		t.Fatalf("recreated stream starts at %d, not past the old stream's %d", base, old)
	}

	c2 := dial(t, srv)
	res, replay := subscribe(t, c2, room, &old)
	if res.Recovered || len(replay) != 0 {
		t.Fatalf("resume from the old stream: %+v with %d events; want recovered false and nothing", res, len(replay))
	}
	next := pub.event(room, "e", 3)
	if m := readEvents(t, c2, 1)[0]; m.Seq != next || next < base {
		t.Fatalf("after the reset: seq %d, want %d (at least %d)", m.Seq, next, base)
	}
}

// An operator deletes the stream and creates it again, sequences starting
// at 1: the edge notices the new identity, closes its clients with 4010 and
// delivers the new stream's events instead of dropping them as duplicates
// of the old stream's higher sequences.
func TestStreamRecreatedByAnOperatorResetsRooms(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := startNode(t, ns, nil)
	pub := newPublisher(t, ns.ClientURL())
	const room = "pool:again"
	c := dial(t, srv)
	subscribe(t, c, room, nil)
	for i := range 5 {
		pub.event("pool:other", "e", i) // the old stream runs ahead of the new one
	}
	pub.event(room, "e", 5)
	readEvents(t, c, 1)

	js := streamAdmin(t, ns.ClientURL())
	// An operator's own configuration, which the edge restores to its own.
	natstest.RecreateStream(t, js, "ROOMCAST", func(c *jetstream.StreamConfig) { c.AllowDirect = false })
	expectClose(t, c, int(wire.CloseStreamReset))
	// The edge resets its rooms, then gives the stream its configuration
	// back: once it has, a new client is not caught by the reset.
	natstest.WaitFor(t, 20*time.Second, func() error {
		st, err := js.Stream(t.Context(), "ROOMCAST")
		if err != nil {
			return err
		}
		if !st.CachedInfo().Config.AllowDirect {
			return errors.New("the edge has not configured the new stream yet")
		}
		return nil
	})

	c2 := dial(t, srv)
	subscribe(t, c2, room, nil)
	first := pub.event(room, "e", 6)
	if first != 1 {
		t.Fatalf("the recreated stream stored its first event at %d, want 1", first)
	}
	if m := readEvents(t, c2, 1)[0]; m.Seq != first || counterOf(t, m) != 6 {
		t.Fatalf("after the recreation: seq %d n %d, want %d 6", m.Seq, counterOf(t, m), first)
	}
}
