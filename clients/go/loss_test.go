package roomcast_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	roomcast "github.com/roomcast/roomcast/clients/go"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// A stream purged while the client was away: the resume says
// recovered: false, and the client goes on with what was kept.
func TestTellsALossAfterAPurgeWhileDisconnected(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	srv := servertest.Start(t, ns, nil)
	proxy := relaytest.Start(t, srv.WSAddr())
	const room = "pool:purge"
	f := follow(t, roomcast.Options{URLs: []string{"ws://" + proxy.Addr() + "/ws"}}, roomcast.SubscribeOptions{}, room)
	f.waitSubscribed(t, 1)
	pub := newPublisher(t, ns)
	for range 3 {
		pub.publish(room, "")
	}
	f.waitEvents(t, 3)

	proxy.Cut(true)
	if d := f.waitNotice(t, roomcast.Disconnected, 1); d.Code != 1006 {
		t.Fatalf("cut: %+v; want 1006 (no close frame)", d)
	}
	st, err := pub.js.Stream(t.Context(), bus.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	pub.publish(room, "")
	pub.publish(room, "")
	proxy.Allow()

	s := f.waitSubscribed(t, 2)
	if s.Recovered || !s.Resumed || s.Replayed != 2 {
		t.Fatalf("the resume: %+v; want recovered: false with the 2 kept events", s)
	}
	f.waitEvents(t, 5)
	checkOnceInOrder(t, f.events(), 5)
}

// A resume across a recreated stream whose sequences start at 1 again:
// the events at or below the kept seq are held until the response, whose
// new epoch says they are new, and then handed over, in order.
func TestHandsOverHeldEventsOfARecreatedStream(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	srv := servertest.Start(t, ns, nil)
	proxy := relaytest.Start(t, srv.WSAddr())
	const room = "pool:recreated"
	f := follow(t, roomcast.Options{URLs: []string{"ws://" + proxy.Addr() + "/ws"}}, roomcast.SubscribeOptions{}, room)
	first := f.waitSubscribed(t, 1)
	// A raw connection beside it tells when the node noticed the new stream.
	raw, err := client.Dial(t.Context(), servertest.WSURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Subscribe("s", room, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Read(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, ns)
	pub.publish(room, "")
	pub.publish(room, "")
	f.waitEvents(t, 2)

	proxy.Cut(true) // the client away while the stream is recreated
	natstest.RecreateStream(t, pub.js, bus.DefaultStream, nil)
	for _, err := raw.Read(time.Now().Add(wait)); ; _, err = raw.Read(time.Now().Add(wait)) {
		var ce *client.CloseError
		if errors.As(err, &ce) && ce.Code == 4010 {
			break
		}
		if err != nil {
			t.Fatalf("the node did not close with 4010: %v", err)
		}
	}
	var last uint64
	for range 3 {
		last = pub.publish(room, "") // seqs 1, 2, 3: the first two at or below the kept one
	}
	if last != 3 {
		t.Fatalf("the new stream's third event is seq %d, want 3", last)
	}
	proxy.Allow()

	s := f.waitSubscribed(t, 2)
	if s.Recovered || s.Epoch == first.Epoch || s.Replayed != 3 {
		t.Fatalf("the resume: %+v; want recovered: false, 3 replayed, a new epoch", s)
	}
	f.waitEvents(t, 5)
	checkOnceInOrder(t, f.events(), 5)
	// The held events came before the response that released them.
	msgs, _ := f.snapshot()
	var order []string
	for _, m := range msgs {
		switch m.(type) {
		case *roomcast.Event:
			order = append(order, "e")
		case *roomcast.Subscribed:
			order = append(order, "s")
		}
	}
	if got := strings.Join(order, ""); got != "seeeees" {
		t.Fatalf("order of events (e) and responses (s): %s, want seeeees", got)
	}
}

// A slow application: while it does not call Next, the client does not
// read its socket, the node's queue overflows and it closes the
// connection (4008; or resets it, 1006); the client resumes once Next is
// called again, every event once, in order.
func TestResumesAfterTheApplicationWasTooSlow(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	srv := servertest.Start(t, ns, func(c *config.Serve) {
		c.SendQueueMessages = 64
		c.SendQueueBytes = 2 << 20
	})
	const room = "pool:slow"
	f := follow(t, roomcast.Options{URLs: []string{servertest.WSURL(srv)}, NetDial: smallBuffer(8 << 10), Buffer: 8},
		roomcast.SubscribeOptions{}, room)
	f.waitSubscribed(t, 1)
	pub := newPublisher(t, ns)
	pub.publish(room, "")
	f.waitEvents(t, 1)

	resume := f.pause()
	const n = 300
	pad := `,"pad":"` + strings.Repeat("p", 40<<10) + `"`
	for range n - 1 {
		pub.publish(room, pad)
	}
	waitFor(t, "the node closing the slow client", func() error {
		if got := servertest.Closes(t, srv.AdminAddr(), "slow_consumer"); got < 1 {
			return fmt.Errorf("%v slow consumers closed", got)
		}
		return nil
	})
	resume()
	f.waitEvents(t, n)
	checkOnceInOrder(t, f.events(), n)
	d := f.notices(roomcast.Disconnected)
	if len(d) == 0 || (d[0].Code != 4008 && d[0].Code != 1006) {
		t.Fatalf("disconnections %+v; want a 4008 or a reset", d)
	}
	if s := f.waitSubscribed(t, 2); !s.Resumed || !s.Recovered {
		t.Fatalf("the resume: %+v", s)
	}
}
