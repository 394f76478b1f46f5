package server_test

import (
	"context"
	"fmt"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/natsembed"
	"github.com/roomcast/roomcast/internal/server"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
)

// All clients are on node a; b and c start: within 30 s every node holds
// its share within the tolerance, the moved clients were told to
// reconnect at once (4012), each 4012 counted by the node that sent it,
// and no client lost or got twice an event published during the move.
func TestRebalanceAfterScaleOut(t *testing.T) {
	ns := natstest.RunServer(t)
	nodes := newNodeSet()
	a := nodes.start(t, ns, "a", nil)
	const clients, room = 48, "pool:rebalance"
	ctx, cancel := context.WithCancel(context.Background())
	fs := startFollowers(t, ctx, nodes, clients, room)
	defer stopFollowers(t, cancel, fs)

	pub := newPublisher(t, ns.ClientURL())
	published := publishUntil(t, pub, room)
	nodes.start(t, ns, "b", nil)
	nodes.start(t, ns, "c", nil)

	nodes.waitBalanced(t, clients, 30*time.Second)
	total := published()
	t.Logf("balanced at %v with %d events published", nodes.counts(), total)

	// Every client on a node, caught up with every event once, in order.
	natstest.WaitFor(t, 20*time.Second, func() error {
		for i, f := range fs {
			node, _, next, bad := f.state()
			if len(bad) > 0 {
				t.Fatalf("client %d: %v", i, bad)
			}
			if node < 0 || next != total {
				return fmt.Errorf("client %d on node %d has %d events of %d", i, node, next, total)
			}
		}
		return nil
	})
	// Every shed connection got its 4012, which its client saw.
	natstest.WaitFor(t, 10*time.Second, func() error {
		shed, atOnce := 0.0, 0
		for _, n := range nodes.all() {
			shed += scrapeSum(t, n, "roomcast_rebalance_shed_total{")
		}
		for _, f := range fs {
			f.mu.Lock()
			atOnce += f.atOnce
			f.mu.Unlock()
		}
		closes := scrapeSum(t, a, `roomcast_connection_closes_total{reason="rebalance"`)
		switch {
		case shed < clients/2:
			return fmt.Errorf("%v shed in all, want at least %d moved off a", shed, clients/2)
		case float64(atOnce) != shed:
			return fmt.Errorf("clients saw %d closes 4012, the nodes shed %v", atOnce, shed)
		case closes != scrapeSum(t, a, "roomcast_rebalance_shed_total{"):
			return fmt.Errorf("a counted %v closes with reason rebalance, shed %v", closes, scrapeSum(t, a, "roomcast_rebalance_shed_total{"))
		}
		return nil
	})
	if got := scrapeSum(t, a, "roomcast_cluster_nodes{"); got != 3 {
		t.Fatalf("roomcast_cluster_nodes on a: %v, want 3", got)
	}
	// a's status tells the others what it shed.
	shedByA := uint64(scrapeSum(t, a, "roomcast_rebalance_shed_total{"))
	natstest.WaitFor(t, 10*time.Second, func() error {
		for _, m := range nodes.all()[1].Cluster().Members() {
			if m.Name == "a" && m.Shed == shedByA {
				return nil
			}
		}
		return fmt.Errorf("b has not heard a's status with shed %d", shedByA)
	})
}

// While one node (c) reports itself not ready, a, holding every client,
// sheds nothing over several of c's statuses, though b is ready and idle;
// once c is ready again, a sheds. c is made not ready for real: its NATS
// user loses the right to ask for the stream's info, so its readiness
// check fails while its status still goes out. The permissions are
// reloaded on a server of the NATS cluster that holds neither stream: a
// reload of one serving direct gets races inside nats-server (its setOpts
// against getDirectMulti's read of the options), and the keeper and the
// rooms make direct gets all the time.
func TestRebalanceHoldsWhileAPeerIsNotReady(t *testing.T) {
	users := natsUsers("a", "b", "c")
	bases := make(map[string]*natsserver.Options)
	var mu sync.Mutex
	nc := natstest.RunClusterWith(t, 3, func(o *natsembed.Options) {
		o.Configure = func(so *natsserver.Options) {
			so.Users = users(nil)
			so.NoAuthUser = "a" // for the cluster's own wait for its meta leader
			mu.Lock()
			bases[so.ServerName] = so.Clone() // before the server starts: it owns so from then on
			mu.Unlock()
		}
	})
	nodes := newNodeSet()
	withUser := func(name string) func(*config.Serve) {
		return func(c *config.Serve) { c.NATSAuth.User, c.NATSAuth.Password = name, "pw-"+name }
	}
	a := nodes.start(t, nc.Servers[0], "a", withUser("a"))
	quiet := serverWithoutStreams(t, nc, a)
	nodes.start(t, nc.Servers[0], "b", withUser("b"))
	nodes.start(t, quiet, "c", withUser("c"))
	reload := func(denied map[string][]string) {
		t.Helper()
		o := bases[quiet.Name()].Clone()
		o.Users = users(denied)
		if err := quiet.ReloadOptions(o); err != nil {
			t.Fatalf("reload NATS: %v", err)
		}
	}
	reload(map[string][]string{"c": {"$JS.API.STREAM.INFO.>"}})
	waitStatuses(t, a, "c", 1, func(m cluster.Member) error {
		if m.Ready {
			return fmt.Errorf("c still ready")
		}
		return nil
	})

	const clients = 30
	ctx, cancel := context.WithCancel(context.Background())
	fs := startFollowers(t, ctx, nodes, clients, "pool:held")
	defer stopFollowers(t, cancel, fs)
	// Three more statuses of c, all not ready, each heard after every
	// client was on a: a had three chances at least to shed.
	waitStatuses(t, a, "c", 3, func(m cluster.Member) error {
		if m.Ready {
			t.Fatalf("c became ready: %+v", m.Status)
		}
		return nil
	})
	if shed := scrapeSum(t, a, "roomcast_rebalance_shed_total{"); shed != 0 || a.ConnCount() != clients {
		t.Fatalf("a shed %v (holds %d of %d) while c was not ready", shed, a.ConnCount(), clients)
	}
	if got := scrapeSum(t, a, "roomcast_cluster_nodes{"); got != 2 {
		t.Fatalf("roomcast_cluster_nodes on a: %v while c was not ready, want 2", got)
	}

	reload(nil)
	natstest.WaitFor(t, 20*time.Second, func() error {
		if shed := scrapeSum(t, a, "roomcast_rebalance_shed_total{"); shed == 0 {
			return fmt.Errorf("a has shed nothing since c is ready again (counts %v)", nodes.counts())
		}
		return nil
	})
}

// serverWithoutStreams returns a server of the cluster that is the leader
// of neither roomcast stream (both have one replica), which node's start
// made.
func serverWithoutStreams(t *testing.T, c *natstest.Cluster, node *server.Server) *natsserver.Server {
	t.Helper()
	js, err := jetstream.New(node.NATSConn())
	if err != nil {
		t.Fatal(err)
	}
	busy := make(map[string]bool)
	for _, name := range []string{"ROOMCAST", bus.StateStreamName("ROOMCAST")} {
		st, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if ci := st.CachedInfo().Cluster; ci != nil {
			busy[ci.Leader] = true
		}
	}
	for _, s := range c.Servers {
		if !busy[s.Name()] {
			return s
		}
	}
	t.Fatalf("every server leads a stream: %v", busy)
	return nil
}

// A draining node is not counted: b drains (its status says so, and not
// ready) while a holds every client and c none; a sheds down to its share
// of a and c alone. Were b counted, a would hold (b is not ready); were it
// counted as ready, a would shed down to a third.
func TestRebalanceDrainingNodeNotCounted(t *testing.T) {
	ns := natstest.RunServer(t)
	nodes := newNodeSet()
	a := nodes.start(t, ns, "a", nil)
	b := startNode(t, ns, func(c *config.Serve) { // not in the followers' list
		c.ServerName = "b"
		c.DrainDelay = 12 * time.Second
	})
	go b.Shutdown() // returns after the drain delay; cleanup waits for it
	waitStatuses(t, a, "b", 1, func(m cluster.Member) error {
		if !m.Draining {
			return fmt.Errorf("b not draining yet")
		}
		return nil
	})
	c := nodes.start(t, ns, "c", nil)

	const clients = 30
	ctx, cancel := context.WithCancel(context.Background())
	fs := startFollowers(t, ctx, nodes, clients, "pool:draining")
	defer stopFollowers(t, cancel, fs)
	// a and c count: a share of 15, a keeps 16 (15 × 1.1 rounded down).
	natstest.WaitFor(t, 15*time.Second, func() error {
		if a.ConnCount() != 16 || c.ConnCount() != 14 {
			return fmt.Errorf("a holds %d, c %d: want 16 and 14", a.ConnCount(), c.ConnCount())
		}
		return nil
	})
	if got := scrapeSum(t, a, "roomcast_cluster_nodes{"); got != 2 {
		t.Fatalf("roomcast_cluster_nodes on a: %v while b drains, want 2", got)
	}
	// b still drains: what a did, it did with b draining.
	if st, _ := readyz(t, b.AdminAddr()); st != 503 {
		t.Fatalf("b's /readyz %d: its drain ended before the check", st)
	}
}

// --rebalance=false: a never sheds, though b and c are ready and idle.
func TestRebalanceDisabledNeverSheds(t *testing.T) {
	ns := natstest.RunServer(t)
	nodes := newNodeSet()
	a := nodes.start(t, ns, "a", func(c *config.Serve) { c.Rebalance.Enabled = false })
	const clients = 30
	ctx, cancel := context.WithCancel(context.Background())
	fs := startFollowers(t, ctx, nodes, clients, "pool:off")
	defer stopFollowers(t, cancel, fs)
	nodes.start(t, ns, "b", nil)
	nodes.start(t, ns, "c", nil)
	waitStatuses(t, a, "c", 3, func(m cluster.Member) error {
		if !m.Ready {
			return fmt.Errorf("c not ready")
		}
		return nil
	})
	if shed := scrapeSum(t, a, "roomcast_rebalance_shed_total{"); shed != 0 || a.ConnCount() != clients {
		t.Fatalf("a shed %v (holds %d of %d) with --rebalance=false", shed, a.ConnCount(), clients)
	}
	if got := scrapeSum(t, a, "roomcast_cluster_nodes{"); got != 3 {
		t.Fatalf("roomcast_cluster_nodes on a: %v, want 3 (counted even when off)", got)
	}
}
