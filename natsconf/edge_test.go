package natsconf_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natsembed"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// checkBusCalls runs every JetStream call of the edge's bus on a connection
// of its own as the edge user, and checks that none was denied.
func checkBusCalls(t *testing.T, url, password string, room wire.Room, seq uint64) {
	t.Helper()
	nc, errs := connect(t, url, "edge", password, nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix))
	b := bustest.On(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop, err := b.WatchStream(func() {}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.EnsureStream(ctx); err != nil { // info, then update
		t.Errorf("EnsureStream: %v", err)
	}
	if st, err := b.StreamState(ctx); err != nil || st.LastSeq != seq {
		t.Errorf("StreamState: %+v, %v", st, err)
	}
	if heads, _, err := b.Heads(ctx, []wire.Room{room}); err != nil || heads[room] != seq {
		t.Errorf("Heads (multi_last direct get): %v, %v", heads, err)
	}
	if head, err := b.LeaderHead(ctx, room); err != nil || head != seq {
		t.Errorf("LeaderHead (message get): %d, %v", head, err)
	}
	var got []uint64
	if _, err := b.Replay(ctx, room, 0, seq, func(ev *wire.Event) error {
		got = append(got, ev.Seq)
		return nil
	}); err != nil || !slices.Equal(got, []uint64{seq}) {
		t.Errorf("Replay (direct get): %v, %v", got, err)
	}
	// A long replay: a consumer made, pulled from and deleted.
	m := metrics.NewUnregistered()
	long, err := bus.New(nc, bus.Options{Logger: natstest.Quiet, Metrics: m, LongReplay: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	got = nil
	if _, err := long.Replay(ctx, room, 0, seq, func(ev *wire.Event) error {
		got = append(got, ev.Seq)
		return nil
	}); err != nil || !slices.Equal(got, []uint64{seq}) {
		t.Errorf("Replay (consumer): %v, %v", got, err)
	}
	if n := testutil.ToFloat64(m.StreamCalls.WithLabelValues(metrics.StreamConsumerPull)); n == 0 {
		t.Errorf("the long replay pulled nothing from a consumer: denied, and read with direct gets?")
	}
	// The keyed state: the node's keeper has written its position, as the
	// edge user, before the state can be read.
	if err := b.EnsureStateStream(ctx); err != nil {
		t.Errorf("EnsureStateStream: %v", err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		_, err := b.State(ctx, room)
		return err
	})
	if stored, err := b.Stored(ctx, room, seq); err != nil || !stored {
		t.Errorf("Stored (direct get): %v, %v", stored, err)
	}
	// A denial comes back as -ERR before the flush's PONG.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.LastError(); err != nil {
		t.Errorf("the edge's calls: %v", err)
	}
	errs.mu.Lock()
	defer errs.mu.Unlock()
	if len(errs.errs) > 0 {
		t.Errorf("the edge's calls: %v", errs.errs)
	}
}

// checkReady waits for the node's readiness, which reads the stream.
func checkReady(t *testing.T, admin string) {
	t.Helper()
	natstest.WaitFor(t, 5*time.Second, func() error {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
}

// roomClient is a WebSocket client subscribed to a room.
type roomClient struct {
	c       *client.Conn
	pending []wire.Message // events read before the subscribe response
}

// dialRoom connects a WebSocket client and subscribes it to room. A replay
// may send events before the subscribe response: they are kept.
func dialRoom(t *testing.T, url, room string, since *uint64) *roomClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &roomClient{c: c}
	// A stream of three replicas just made may not answer reads at once:
	// the node says UNAVAILABLE, and a client tries again, as this does.
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; ; attempt++ {
		id := fmt.Sprintf("s%d", attempt)
		if err := c.Subscribe(id, room, since); err != nil {
			t.Fatal(err)
		}
		for answered := false; !answered; {
			m, err := c.Read(deadline)
			switch {
			case err != nil:
				t.Fatalf("subscribe %s: %v", room, err)
			case m.Type == wire.TypeEvent:
				rc.pending = append(rc.pending, m)
			case m.Type == wire.TypeResponse && m.ID == id:
				return rc
			case m.Type == wire.TypeError && m.ID == id && strings.Contains(string(m.Data), wire.CodeUnavailable) && time.Now().Before(deadline):
				answered = true
				time.Sleep(100 * time.Millisecond) // the retry a client makes after UNAVAILABLE
			default:
				t.Fatalf("subscribe %s: %+v", room, m)
			}
		}
	}
}

// readEvent returns the client's next event.
func readEvent(t *testing.T, rc *roomClient) wire.Message {
	t.Helper()
	if len(rc.pending) > 0 {
		m := rc.pending[0]
		rc.pending = rc.pending[1:]
		return m
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := rc.c.Read(deadline)
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		if m.Type == wire.TypeEvent {
			return m
		}
	}
}

// checkClusterSubjects proves the edge user may use the cluster's
// subjects and the publisher may not: a second node joined as the edge
// user and the running roomcast node see each other's statuses and answer
// each other's summary requests; a publisher can neither publish a forged
// status nor listen to the summaries.
func checkClusterSubjects(t *testing.T, url, edgePassword string, node *server.Server, pub *nats.Conn, pubErrs *errLog) {
	t.Helper()
	nc, errs := connect(t, url, "edge", edgePassword, nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix))
	other, err := cluster.Start(cluster.Options{
		Conn: nc, Prefix: bus.DefaultPrefix, Name: "zz-other", Interval: 100 * time.Millisecond,
		Local: func() cluster.Status { return cluster.Status{Ready: true} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got, want := len(other.Peers()), 2; got != want {
			return fmt.Errorf("the edge user's node knows %d nodes, want %d", got, want)
		}
		if got := len(node.Cluster().Peers()); got != 2 {
			return fmt.Errorf("the roomcast node knows %d nodes, want 2", got)
		}
		return nil
	})
	sums, err := other.Gather(context.Background(), 5*time.Second)
	if err != nil || len(sums) != 2 || sums[1].Name != "zz-other" {
		t.Fatalf("summaries gathered as the edge user: %+v, %v", sums, err)
	}
	errs.mu.Lock()
	if len(errs.errs) > 0 {
		t.Errorf("the edge's cluster messages: %v", errs.errs)
	}
	errs.mu.Unlock()

	forged := fmt.Appendf(nil, `{"id":"forged","name":"forged","ready":true,"connections":%d}`, 1000000)
	for _, s := range []string{"roomcast.cluster.status", "roomcast.cluster.summary", "roomcast.cluster.reply.x"} {
		if err := pub.Publish(s, forged); err != nil {
			t.Fatal(err)
		}
		pubErrs.waitViolation(t, "publisher", "Publish", s)
	}
	for _, s := range []string{"roomcast.cluster.>", "roomcast.cluster.reply.>", "roomcast.cluster.summary", "roomcast.cluster.status"} {
		if _, err := pub.SubscribeSync(s); err != nil {
			t.Fatal(err)
		}
		pubErrs.waitViolation(t, "publisher", "Subscription", s)
	}
	for _, st := range node.Cluster().Peers() {
		if st.ID == "forged" {
			t.Fatalf("the publisher's forged status reached the node: %+v", st)
		}
	}
}
