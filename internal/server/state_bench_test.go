package server_test

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// fillKeyed stores n events in room with async publishes, keyed round
// robin over keys keys (worker:w0 .. ), and returns the last one's seq.
func fillKeyed(b testing.TB, url, room string, n, keys int) uint64 {
	b.Helper()
	subject := "roomcast.rooms." + wire.MustRoom(room).Token()
	return publishAll(b, url, n, func(i int) *nats.Msg {
		w := i % keys
		m := nats.NewMsg(subject)
		m.Data = fmt.Appendf(nil, `{"event":"worker.status_changed","data":{"worker_id":"w%d","status":"busy","n":%d}}`, w, i)
		m.Header.Set(wire.HeaderKey, fmt.Sprintf("worker:w%d", w))
		return m
	})
}

// stateRoom is a room filled for the state benchmarks: history events
// keyed over keys keys, all of them kept.
type stateRoom struct {
	name string
	keys int
	last uint64 // the last event's seq
}

// BenchmarkStateSubscribe: a dashboard opens a room of 100,000 retained
// events keyed over 1,000 or 10,000 keys. "state": subscribe with state,
// until the response is read and an event published after it has
// arrived (the client is live); "since0": subscribe with since 0, until
// the replay and its response are read. bytes/op is what the client
// received (payloads of the text messages). Each op dials a new
// connection first (not timed); the room has no other member, so each
// op also enters it on the node.
//
//	go test -run '^$' -bench StateSubscribe -count 6 ./internal/server/
func BenchmarkStateSubscribe(b *testing.B) {
	const history = 100_000
	ns := natstest.RunServer(b)
	srv := startNode(b, ns, func(c *config.Serve) {
		c.RetentionMaxPerRoom = history
		c.StateMaxKeysPerRoom = 10_000
	})
	rooms := []stateRoom{{name: "pool:k1000", keys: 1_000}, {name: "pool:k10000", keys: 10_000}}
	for i := range rooms {
		rooms[i].last = fillKeyed(b, ns.ClientURL(), rooms[i].name, history, rooms[i].keys)
	}
	waitKeptWithin(b, ns.ClientURL(), max(rooms[0].last, rooms[1].last), 5*time.Minute)
	pub := newPublisher(b, ns.ClientURL())
	for _, rm := range rooms {
		b.Run(fmt.Sprintf("keys-%d/state", rm.keys), func(b *testing.B) {
			var received int
			for i := range b.N {
				b.StopTimer()
				c := dialBuffered(b, srv)
				b.StartTimer()
				received += stateLive(b, c, pub, rm, i)
				_ = c.Close()
			}
			b.ReportMetric(float64(received)/float64(b.N), "bytes/op")
		})
		b.Run(fmt.Sprintf("keys-%d/since0", rm.keys), func(b *testing.B) {
			var received int
			for range b.N {
				b.StopTimer()
				c := dialBuffered(b, srv)
				b.StartTimer()
				received += replayBytes(b, c, rm.name, history)
				_ = c.Close()
			}
			b.ReportMetric(float64(received)/float64(b.N), "bytes/op")
		})
	}
}

// stateLive subscribes c to the room with state, checks the state has
// every key, publishes an event of one of the room's keys and reads
// until it arrives; it returns the bytes received.
func stateLive(b *testing.B, c *client.Conn, pub *publisher, rm stateRoom, i int) int {
	b.Helper()
	if err := c.Request(wire.EventSubscribe, "st", map[string]any{"channel": rm.name, "state": true}); err != nil {
		b.Fatal(err)
	}
	p, err := c.ReadText(time.Now().Add(30 * time.Second))
	if err != nil {
		b.Fatal(err)
	}
	received := len(p)
	after, err := stateResponse(p, "st", rm.keys)
	if err != nil {
		b.Fatal(err)
	}
	// The published event is a key's next one, so the room's state
	// keeps its size from op to op.
	seq := pub.keyed(rm.name, "worker.status_changed", fmt.Sprintf("worker:w%d", i%rm.keys), false, i)
	for {
		p, err := c.ReadText(time.Now().Add(30 * time.Second))
		if err != nil {
			b.Fatal(err)
		}
		received += len(p)
		if got := rawSeq(p); !bytes.HasPrefix(p, []byte(`{"type":"event"`)) || got <= after || got > seq {
			b.Fatalf("after the state at %d, waiting for %d: %.200s", after, seq, p)
		} else if got == seq {
			return received
		}
	}
}

// replayBytes subscribes c to room with since 0, reads the replay of all
// n retained events and the response, and returns the bytes received.
func replayBytes(b *testing.B, c *client.Conn, room string, n int) int {
	b.Helper()
	since := uint64(0)
	if err := c.Subscribe("r", room, &since); err != nil {
		b.Fatal(err)
	}
	received, got := 0, 0
	for {
		p, err := c.ReadText(time.Now().Add(30 * time.Second))
		if err != nil {
			b.Fatalf("after %d events: %v", got, err)
		}
		received += len(p)
		if !bytes.HasPrefix(p, []byte(`{"type":"event"`)) {
			if got != n {
				b.Fatalf("replayed %d, want %d: %.200s", got, n, p)
			}
			return received
		}
		got++
	}
}

// BenchmarkStateDashboards: 1,000 dashboards, connected already, subscribe
// with state to the same room (1,000 keys, 20,000 events) at once.
// ms-responses is the time until every one has its state response,
// ms-all-live until every one has the event published once all had it;
// state-reads and requests are the node's state reads
// (roomcast_state_reads_total) and JetStream requests
// (roomcast_stream_requests_total) over the op.
//
//	go test -run '^$' -bench StateDashboards -benchtime 1x -count 6 ./internal/server/
func BenchmarkStateDashboards(b *testing.B) {
	const dashboards, keys, history, room = 1_000, 1_000, 20_000, "pool:dash"
	ns := natstest.RunServer(b)
	srv := startNode(b, ns, func(c *config.Serve) { c.RetentionMaxPerRoom = history })
	waitKeptWithin(b, ns.ClientURL(), fillKeyed(b, ns.ClientURL(), room, history, keys), 5*time.Minute)
	pub := newPublisher(b, ns.ClientURL())
	var responses, live time.Duration
	var reads, requests float64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		conns := dialMany(b, srv, dashboards)
		reads0, requests0 := stateReads(b, srv), streamRequests(b, srv)
		b.StartTimer()
		start := time.Now()
		after := subscribeAll(b, conns, room, keys)
		responses += time.Since(start)
		seq := pub.keyed(room, "worker.status_changed", fmt.Sprintf("worker:w%d", i%keys), false, i)
		awaitAll(b, conns, after, seq)
		live += time.Since(start)
		b.StopTimer()
		reads += stateReads(b, srv) - reads0
		requests += streamRequests(b, srv) - requests0
		for _, c := range conns {
			_ = c.Close()
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(responses.Milliseconds())/n, "ms-responses")
	b.ReportMetric(float64(live.Milliseconds())/n, "ms-all-live")
	b.ReportMetric(reads/n, "state-reads")
	b.ReportMetric(requests/n, "requests")
}

// stateResponse checks that p is the response to subscribe request id
// with a state of keys events, and returns the state's position. It
// counts the events without decoding them: the clients share the node's
// cores, so what they spend is taken from the figure.
func stateResponse(p []byte, id string, keys int) (uint64, error) {
	head, _, found := bytes.Cut(p, []byte(`,"state":[`))
	if !found || !bytes.HasPrefix(head, []byte(`{"type":"response"`)) || !bytes.Contains(head, []byte(`"id":"`+id+`"`)) {
		return 0, fmt.Errorf("want the state response to %s, got %.200s", id, p)
	}
	if n := bytes.Count(p, []byte(`{"type":"event"`)); n != keys {
		return 0, fmt.Errorf("state of %d keys, want %d", n, keys)
	}
	return rawSeq(head), nil
}

// dialMany connects n buffered clients.
func dialMany(b *testing.B, srv *server.Server, n int) []*client.Conn {
	b.Helper()
	conns := make([]*client.Conn, n)
	for i := range conns {
		conns[i] = dialBuffered(b, srv)
	}
	return conns
}

// subscribeAll has every connection subscribe to room with state at
// once, and waits until each has its response with every key; it returns
// each one's state position.
func subscribeAll(b *testing.B, conns []*client.Conn, room string, keys int) []uint64 {
	b.Helper()
	after := make([]uint64, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			if err := c.Request(wire.EventSubscribe, "st", map[string]any{"channel": room, "state": true}); err != nil {
				errs[i] = err
				return
			}
			p, err := c.ReadText(time.Now().Add(time.Minute))
			if err != nil {
				errs[i] = err
				return
			}
			if after[i], err = stateResponse(p, "st", keys); err != nil {
				errs[i] = fmt.Errorf("dashboard %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	if err := firstErr(errs); err != nil {
		b.Fatal(err)
	}
	return after
}

// awaitAll waits until every connection has the event at seq, each after
// nothing but the room's events past its state's position.
func awaitAll(b *testing.B, conns []*client.Conn, after []uint64, seq uint64) {
	b.Helper()
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			for {
				p, err := c.ReadText(time.Now().Add(time.Minute))
				if err != nil {
					errs[i] = err
					return
				}
				got := rawSeq(p)
				switch {
				case !bytes.HasPrefix(p, []byte(`{"type":"event"`)) || got <= after[i] || got > seq:
					errs[i] = fmt.Errorf("dashboard %d, after the state at %d, waiting for %d: %.200s", i, after[i], seq, p)
					return
				case got == seq:
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr(errs); err != nil {
		b.Fatal(err)
	}
}

// firstErr counts the errors of errs and wraps the first.
func firstErr(errs []error) error {
	errs = slices.DeleteFunc(errs, func(err error) bool { return err == nil })
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d failed, first: %w", len(errs), errs[0])
}

// stateReads scrapes a node's count of state reads.
func stateReads(tb testing.TB, srv *server.Server) float64 {
	tb.Helper()
	return scrapeSum(tb, srv, "roomcast_state_reads_total{")
}
