package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A dashboard that subscribed with conflate and reads one message every
// 20 ms through a 4 KiB receive buffer stays connected, with the default
// queue settings, while 3,000 keyed events of 4 KiB over 50 keys arrive
// (and a few unkeyed ones): it receives every unkeyed event, every event
// it does not receive is counted in the conflated field of a later one,
// and once the publishing stops its picture (the latest event of each
// key, as it applied them) comes to equal the true state. The same
// client without conflate is closed as a slow consumer (4008).
func TestConflatingDashboardStaysConnected(t *testing.T) {
	srv := startNode(t, nil, nil)
	const room = "pool:conflate"
	dash := newPacedReader(t, srv, room, true)
	plain := newPacedReader(t, srv, room, false)

	const keyed, keys, unkeyedEvery = 3000, 50, 300
	truth := make(map[string]int)
	var unkeyed []int
	pad := strings.Repeat("p", 4<<10)
	js, err := jetstream.New(natstest.Connect(t, srv.NATSURL()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range keyed {
		m := nats.NewMsg("roomcast.rooms." + wire.MustRoom(room).Token())
		m.Data = []byte(fmt.Sprintf(`{"event":"worker.status_changed","data":{"n":%d,"pad":%q}}`, i, pad))
		key := fmt.Sprintf("worker:w%d", i%keys)
		m.Header.Set(wire.HeaderKey, key)
		truth[key] = i
		publishAsync(t, js, m)
		if i%unkeyedEvery == unkeyedEvery/2 {
			u := keyed + i
			m := nats.NewMsg(m.Subject)
			m.Data = []byte(fmt.Sprintf(`{"event":"pool.scaling","data":{"n":%d}}`, u))
			unkeyed = append(unkeyed, u)
			publishAsync(t, js, m)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged within 30s")
	}
	published := time.Now()
	t.Logf("published %d events in %v", keyed+len(unkeyed), published.Sub(start).Round(time.Millisecond))

	natstest.WaitFor(t, 30*time.Second, func() error {
		st := dash.state()
		switch {
		case st.err != nil:
			t.Fatalf("the conflating client's connection ended: %v", st.err)
		case !maps.Equal(st.picture, truth):
			return fmt.Errorf("picture of %d keys not the true state yet, after %d events", len(st.picture), st.events)
		}
		return nil
	})
	t.Logf("picture right %v after the publishing stopped", time.Since(published).Round(time.Millisecond))
	// It still talks.
	if err := dash.c.Send(wire.Message{Type: wire.TypePing, ID: "still"}); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if st := dash.state(); st.pongs != 1 || st.err != nil {
			return fmt.Errorf("%d pongs (%v)", st.pongs, st.err)
		}
		return nil
	})
	st := dash.stop()
	if fmt.Sprint(st.unkeyed) != fmt.Sprint(unkeyed) {
		t.Errorf("unkeyed events %v, want %v", st.unkeyed, unkeyed)
	}
	total := keyed + len(unkeyed)
	if st.events+st.conflated != total || st.conflated == 0 {
		t.Errorf("received %d events and %d conflated, want %d in all, some conflated", st.events, st.conflated, total)
	}
	if got := value(scrape(t, srv.AdminAddr()), "roomcast_conflated_events_total"); got < float64(st.conflated) {
		t.Errorf("roomcast_conflated_events_total %v, want at least the %d the client was told of", got, st.conflated)
	}

	// The client without conflate was closed as a slow consumer: a 4008
	// close frame, or (its buffers full) a reset the node counts as 4008.
	plain.waitSlowConsumer(t, srv)
	if st := plain.stop(); st.conflated != 0 {
		t.Errorf("the client without conflate was told of %d conflated events", st.conflated)
	}
}

// A dashboard that conflates and reads at 5% of the publish rate (one
// message every 20 ms, while 1,000 keyed events a second arrive) for 30 s
// stays connected, and once the publishing stops it reads at most a
// second's worth of messages (50) before its picture is the true state:
// what it has no chance to conflate (the writer's batch, the socket's
// buffers) stays small. Counted in messages, not measured in time, so a
// busy machine does not change the answer. The same client without
// conflate is closed as a slow consumer.
func TestConflatingDashboardKeepsUpForHalfAMinute(t *testing.T) {
	srv := startNode(t, nil, nil)
	const room = "pool:sustained"
	dash := newPacedReader(t, srv, room, true)
	plain := newPacedReader(t, srv, room, false)
	js, err := jetstream.New(natstest.Connect(t, srv.NATSURL()))
	if err != nil {
		t.Fatal(err)
	}
	const keys, perTick, tick, ticks = 10, 10, 10 * time.Millisecond, 3000 // 1,000 a second for 30 s
	subject := "roomcast.rooms." + wire.MustRoom(room).Token()
	pad := strings.Repeat("p", 1000)
	truth := make(map[string]int)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	n := 0
	for range ticks {
		<-ticker.C
		if js.PublishAsyncPending() > 1000 {
			// A busy machine acknowledges slower than 1,000 a second:
			// wait rather than stall the publisher.
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				t.Fatal("publishes not acknowledged within 30s")
			}
		}
		for range perTick {
			n++
			key := fmt.Sprintf("worker:w%d", n%keys)
			m := nats.NewMsg(subject)
			m.Data = fmt.Appendf(nil, `{"event":"worker.status_changed","data":{"n":%d,"pad":%q}}`, n, pad)
			m.Header.Set(wire.HeaderKey, key)
			truth[key] = n
			publishAsync(t, js, m)
		}
		if st := dash.state(); st.err != nil {
			t.Fatalf("the conflating client's connection ended after %d events: %v", n, st.err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged within 30s")
	}
	dash.expect(truth)
	natstest.WaitFor(t, 30*time.Second, func() error {
		st := dash.state()
		switch {
		case st.err != nil:
			t.Fatalf("the conflating client's connection ended: %v", st.err)
		case st.settled < 0:
			return fmt.Errorf("picture of %d keys not the true state yet", len(st.picture))
		}
		return nil
	})
	st := dash.stop()
	t.Logf("read %d events (%d conflated away); %d after the publishing stopped until the picture was right", st.events, st.conflated, st.settled)
	if st.settled > 50 {
		t.Errorf("read %d messages after the publishing stopped before the picture was right, want at most a second's worth (50)", st.settled)
	}
	if st.events+st.conflated != n {
		t.Errorf("received %d events and %d conflated, want %d in all", st.events, st.conflated, n)
	}
	plain.waitSlowConsumer(t, srv)
}

// Conflation is per room and per subscribe: a subscribe of the room
// without conflate, or after an unsubscribe, does not conflate, and such
// a client that reads nothing is closed with 4008 as before, while one
// whose subscribe asked for it stays and reads the newest event of each
// key.
func TestConflationFollowsTheSubscribe(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) {
		c.SendQueueMessages = 64
		c.SendQueueBytes = 1 << 20
		c.SocketSendBuffer = 8 << 10
	})
	const room = "pool:resub"
	sub := func(c *client.Conn, id string, data map[string]any) {
		t.Helper()
		data["channel"] = room
		if err := c.Request(wire.EventSubscribe, id, data); err != nil {
			t.Fatal(err)
		}
		if m := read(t, c); m.Type != wire.TypeResponse || m.ID != id {
			t.Fatalf("%s answered %+v (data %s)", id, m, m.Data)
		}
	}
	resubscribed, unsubscribed, kept := dialBuffer(t, srv, 4<<10), dialBuffer(t, srv, 4<<10), dialBuffer(t, srv, 4<<10)
	sub(resubscribed, "r1", map[string]any{"conflate": true})
	sub(resubscribed, "r2", map[string]any{"conflate": false})
	sub(unsubscribed, "u1", map[string]any{"conflate": true})
	if err := unsubscribed.Request(wire.EventUnsubscribe, "u2", map[string]any{"channel": room}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, unsubscribed); m.Type != wire.TypeResponse || m.ID != "u2" {
		t.Fatalf("unsubscribe answered %+v", m)
	}
	sub(unsubscribed, "u3", map[string]any{})
	sub(kept, "k1", map[string]any{"conflate": true})

	// 600 keyed events of 1 KiB over 4 keys, read by nobody: ten times
	// the queue's 64 frames.
	js, err := jetstream.New(natstest.Connect(t, srv.NATSURL()))
	if err != nil {
		t.Fatal(err)
	}
	const n, keys = 600, 4
	pad := strings.Repeat("p", 1<<10)
	for i := range n {
		m := nats.NewMsg("roomcast.rooms." + wire.MustRoom(room).Token())
		m.Data = []byte(fmt.Sprintf(`{"event":"worker.status_changed","data":{"n":%d,"pad":%q}}`, i+1, pad))
		m.Header.Set(wire.HeaderKey, fmt.Sprintf("worker:w%d", i%keys))
		publishAsync(t, js, m)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishes not acknowledged within 30s")
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		if got := servertest.Closes(t, srv.AdminAddr(), "slow_consumer"); got != 2 {
			return fmt.Errorf("%v slow consumer closes, want 2", got)
		}
		return nil
	})
	// The client that kept conflate reads to the newest of every key.
	var st readerState
	st.picture = make(map[string]int)
	for st.events+st.conflated < n {
		p, err := kept.ReadText(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("the conflating client, after %d events and %d conflated: %v", st.events, st.conflated, err)
		}
		if err := st.apply(p); err != nil {
			t.Fatal(err)
		}
	}
	for k := range keys {
		if key, want := fmt.Sprintf("worker:w%d", k), n-keys+k+1; st.picture[key] != want {
			t.Errorf("%s ends at %d, want %d", key, st.picture[key], want)
		}
	}
	if st.conflated == 0 {
		t.Error("nothing conflated: the client was never behind")
	}
}

func publishAsync(t *testing.T, js jetstream.JetStream, m *nats.Msg) {
	t.Helper()
	if _, err := js.PublishMsgAsync(m); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// pacedReader is a client with a 4 KiB receive buffer that reads one
// message every 20 ms on a goroutine of its own, which stop ends, and
// applies the events of its room to its picture.
type pacedReader struct {
	c    *client.Conn
	done chan struct{} // closed to stop the reader
	wg   sync.WaitGroup

	mu sync.Mutex
	st readerState // guarded by mu
}

type readerState struct {
	picture   map[string]int // the latest n of each key, as applied
	unkeyed   []int          // the n of each unkeyed event, in order
	events    int
	conflated int
	pongs     int
	err       error // what ended the reading; nil while it goes on

	truth   map[string]int // the true state, once the publishing stopped
	mark    int            // events read when it stopped
	settled int            // events read after it until the picture was the truth; -1 before
}

// newPacedReader subscribes, with conflate or not, and starts reading.
func newPacedReader(t *testing.T, srv *server.Server, room string, conflate bool) *pacedReader {
	t.Helper()
	c := dialBuffer(t, srv, 4<<10)
	if err := c.Request(wire.EventSubscribe, "s", map[string]any{"channel": room, "conflate": conflate}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypeResponse || m.ID != "s" {
		t.Fatalf("subscribe answered %+v (data %s)", m, m.Data)
	}
	r := &pacedReader{c: c, done: make(chan struct{}), st: readerState{picture: make(map[string]int)}}
	r.wg.Add(1)
	go r.run()
	t.Cleanup(func() { r.stop() })
	return r
}

func (r *pacedReader) run() {
	defer r.wg.Done()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		// Blocked until a message comes (a deadline cut into a message
		// would lose the frames' boundaries); stop wakes it.
		p, err := r.c.ReadText(time.Now().Add(time.Minute))
		select {
		case <-r.done:
			return
		default:
		}
		r.mu.Lock()
		if err == nil {
			err = r.st.apply(p)
		}
		r.st.err = err
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// apply takes one event into the picture.
func (st *readerState) apply(p []byte) error {
	var m struct {
		Type, Key string
		Data      struct{ N int }
		Conflated int
	}
	if err := json.Unmarshal(p, &m); err != nil {
		return err
	}
	switch m.Type {
	case wire.TypePong:
		st.pongs++
		return nil
	case wire.TypeEvent:
	default:
		return fmt.Errorf("unexpected message %s", p)
	}
	st.events++
	st.conflated += m.Conflated
	if m.Key == "" {
		st.unkeyed = append(st.unkeyed, m.Data.N)
		return nil
	}
	if m.Data.N <= st.picture[m.Key] && st.picture[m.Key] != 0 {
		return fmt.Errorf("key %s: %d after %d", m.Key, m.Data.N, st.picture[m.Key])
	}
	st.picture[m.Key] = m.Data.N
	st.checkSettled()
	return nil
}

// checkSettled notes when the picture first equals the truth.
func (st *readerState) checkSettled() {
	if st.truth != nil && st.settled < 0 && maps.Equal(st.picture, st.truth) {
		st.settled = st.events - st.mark
	}
}

// expect tells the reader the true state, once the publishing stopped.
func (r *pacedReader) expect(truth map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.truth, r.st.mark, r.st.settled = maps.Clone(truth), r.st.events, -1
	r.st.checkSettled()
}

// state is a copy of what the reader has so far.
func (r *pacedReader) state() readerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.picture = maps.Clone(st.picture)
	st.unkeyed = append([]int(nil), st.unkeyed...)
	st.truth = nil
	return st
}

// waitSlowConsumer waits until the reader, which does not conflate, was
// closed as a slow consumer: a 4008 close frame, or (its buffers full) a
// reset the node counts as 4008. It is the node's only such close.
func (r *pacedReader) waitSlowConsumer(t *testing.T, srv *server.Server) {
	t.Helper()
	natstest.WaitFor(t, 20*time.Second, func() error {
		if st := r.state(); st.err == nil {
			return errors.New("the client without conflate is still connected")
		}
		if got := servertest.Closes(t, srv.AdminAddr(), "slow_consumer"); got != 1 {
			return fmt.Errorf("%v slow consumer closes, want 1", got)
		}
		return nil
	})
}

// stop ends the reading and returns what it read.
func (r *pacedReader) stop() readerState {
	select {
	case <-r.done:
	default:
		close(r.done)
		_ = r.c.NetConn().SetReadDeadline(time.Now()) // wakes a read
	}
	r.wg.Wait()
	return r.state()
}
