package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
)

// BenchmarkRebalanceScaleOut measures, with the default policy, the time
// from the start of the second and third nodes to a balanced cluster
// (every node within [0.8, 1.1] of its share) when all the clients were
// on the first: the target is 30 s for 200. With 2,000 the pace
// decides (some 1,270 moved at 50 a second). It reports s/balance and the
// connections shed (shed/op). Run it with -benchtime=1x -count=6.
func BenchmarkRebalanceScaleOut(b *testing.B) {
	for _, clients := range []int{200, 2000} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) { benchScaleOut(b, clients) })
	}
}

func benchScaleOut(b *testing.B, clients int) {
	const room = "pool:bench-rebalance"
	var took time.Duration
	shed := 0.0
	for range b.N {
		ns := natstest.RunServer(b)
		nodes := newNodeSet()
		nodes.start(b, ns, "a", nil)
		ctx, cancel := context.WithCancel(context.Background())
		fs := startFollowers(b, ctx, nodes, clients, room)
		start := time.Now()
		nodes.start(b, ns, "b", nil)
		nodes.start(b, ns, "c", nil)
		nodes.waitBalanced(b, clients, 120*time.Second)
		took += time.Since(start)
		for _, n := range nodes.all() {
			shed += scrapeSum(b, n, "roomcast_rebalance_shed_total{")
		}
		stopFollowers(b, cancel, fs)
	}
	b.ReportMetric(took.Seconds()/float64(b.N), "s/balance")
	b.ReportMetric(shed/float64(b.N), "shed/op")
}
