package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
)

// The NATS node an edge is connected to dies while events are published:
// the edge reconnects to another node of the cluster (R3 stream), backfills,
// and its client receives every event once, in order.
func TestClusterNodeLossLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster; skipped with -short")
	}
	cluster := natstest.RunCluster(t, 3)
	edge := startNode(t, nil, func(c *config.Serve) {
		c.NATS = config.List{cluster.URLs()}
		c.StreamReplicas = 3
	})
	c := dial(t, edge)
	const room, total = "pool:ha", 200
	subscribeWhenAvailable(t, c, room)

	victim := cluster.ServerFor(edge.NATSConn().ConnectedUrl())
	if victim == nil {
		t.Fatalf("edge connected to %q, not a cluster node", edge.NATSConn().ConnectedUrl())
	}
	// The publisher uses the other nodes, as workers elsewhere would.
	var others []string
	for _, s := range cluster.Servers {
		if s != victim {
			others = append(others, s.ClientURL())
		}
	}
	js := clusterPublisher(t, others)

	done := make(chan error, 1)
	go func() {
		for i := range total {
			if i == total/4 {
				victim.Shutdown()
			}
			if err := publishWithRetry(js, room, i); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()

	var stall time.Duration // the longest time from an event's storing to its arrival
	for i := range total {
		m, err := c.Read(time.Now().Add(60 * time.Second))
		if err != nil {
			t.Fatalf("after %d events: %v", i, err)
		}
		if got := counterOf(t, m); got != i {
			t.Fatalf("event %d has counter %d (seq %d): a gap or a duplicate", i, got, m.Seq)
		}
		stored, err := time.Parse(time.RFC3339Nano, m.TS)
		if err != nil {
			t.Fatalf("event %d: ts %q: %v", i, m.TS, err)
		}
		stall = max(stall, time.Since(stored))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Failover costs tens of milliseconds to a couple of seconds (a leader
	// election); a request left waiting on the dead node used to make it
	// 11 s. The bound is loose so a busy machine does not fail it.
	t.Logf("longest from storing to delivery: %s", stall)
	if stall > 6*time.Second {
		t.Fatalf("an event took %s from storing to delivery across the failover", stall)
	}
	if n := edge.NATSConn().Stats().Reconnects; n == 0 {
		t.Fatal("the edge never reconnected: the node loss was not exercised")
	}
}

func clusterPublisher(t testing.TB, urls []string) jetstream.JetStream {
	nc := natstest.Connect(t, fmt.Sprint(urls[0], ",", urls[1]), nats.MaxReconnects(-1))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// publishWithRetry publishes event n of room with a message id, retrying
// through a leader election; the id makes the retries idempotent.
func publishWithRetry(js jetstream.JetStream, room string, n int) error {
	msg := &nats.Msg{
		Subject: "roomcast.rooms.pool.ha",
		Data:    []byte(fmt.Sprintf(`{"event":"worker.status_changed","data":{"n":%d}}`, n)),
		Header:  nats.Header{jetstream.MsgIDHeader: {fmt.Sprintf("%s-%d", room, n)}},
	}
	deadline := time.Now().Add(45 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish %d: %w", n, err)
		}
		time.Sleep(100 * time.Millisecond) // back off between retries, not a synchronisation
	}
}
