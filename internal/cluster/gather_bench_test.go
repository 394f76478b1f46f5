package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/connz"
	"github.com/roomcast/roomcast/internal/natstest"
)

// BenchmarkGather measures one view of a cluster of three nodes on one
// NATS server, each answering with ten slowest connections: what a
// /clusterz, a cluster request or one refresh of `top` costs when every
// node answers (Gather returns at the last answer, not at its wait).
func BenchmarkGather(b *testing.B) {
	ns := natstest.RunServer(b)
	slow := make([]connz.Conn, cluster.SummarySlowest)
	for i := range slow {
		slow[i] = connz.Conn{ID: uint64(i), Remote: "127.0.0.1:40000", User: "u", Rooms: []connz.Room{{Room: "pool:p1", Lag: 100}}, Lag: 100}
	}
	var nodes []*cluster.Node
	for i := range 3 {
		n, err := cluster.Start(cluster.Options{
			Conn: natstest.Connect(b, ns.ClientURL()), Prefix: prefix, Name: fmt.Sprintf("n%d", i),
			Local:   func() cluster.Status { return cluster.Status{Ready: true, Connections: 1000} },
			Slowest: func(int) []connz.Conn { return slow },
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(n.Close)
		nodes = append(nodes, n)
	}
	natstest.WaitFor(b, 10*time.Second, func() error {
		if got := len(nodes[0].Peers()); got != 3 {
			return fmt.Errorf("%d nodes known", got)
		}
		return nil
	})
	b.ResetTimer()
	for range b.N {
		v, err := nodes[0].View(context.Background(), 5*time.Second)
		if err != nil || len(v.Nodes) != 3 {
			b.Fatalf("view of %d nodes: %v", len(v.Nodes), err)
		}
	}
}
