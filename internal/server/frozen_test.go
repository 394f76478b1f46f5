package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/relaytest"
)

// The NATS server an edge is connected to stops answering without closing
// the connection (a frozen process, a host or a network gone silent; the
// integration tests' SIGSTOP): the edge notices by its unanswered pings,
// moves to another server of the cluster, and delivers again within
// seconds. With nats.go's default pings (every 2 minutes, stale after two
// unanswered) it sat on the dead connection for 6 minutes, not ready and
// its clients without events, while the rest of the cluster was fine.
func TestFrozenNATSServerIsLeft(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster; skipped with -short")
	}
	cluster := natstest.RunCluster(t, 3)
	// The edge reaches the first server through a proxy that can go
	// silent, and learns the others from the cluster.
	p := relaytest.Start(t, cluster.Servers[0].Addr().String())
	edge := startNode(t, nil, func(c *config.Serve) {
		c.NATS = config.List{"nats://" + p.Addr()}
		c.StreamReplicas = 3
	})
	c := dial(t, edge)
	const room = "pool:ha" // publishWithRetry's
	subscribeWhenAvailable(t, c, room)
	js := clusterPublisher(t, []string{cluster.Servers[1].ClientURL(), cluster.Servers[2].ClientURL()})

	p.Silence()
	silenced := time.Now()
	if err := publishWithRetry(js, room, 0); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(45 * time.Second))
	if err != nil {
		t.Fatalf("no event within 45 s of the edge's NATS server going silent: %v", err)
	}
	if n := counterOf(t, m); n != 0 {
		t.Fatalf("event with counter %d, want 0", n)
	}
	t.Logf("the event reached the client %v after the server went silent", time.Since(silenced).Round(time.Millisecond))
	waitReady(t, edge.AdminAddr(), http.StatusOK)
	if edge.NATSConn().ConnectedAddr() == p.Addr() {
		t.Fatal("the edge is still connected through the silent proxy")
	}
}
