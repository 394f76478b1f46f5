package server_test

import (
	"fmt"
	"testing"

	"github.com/roomcast/roomcast/internal/natstest"
)

// BenchmarkSamplerIdle is one round of the node's sampler (the lag
// histograms, the lagging count and the cluster status's slowest
// connections) over 2,000 idle connections in 200 rooms: the cost every
// node pays each round whatever its traffic. ns/op is one round.
//
//	go test -run '^$' -bench SamplerIdle -count 6 ./internal/server/
func BenchmarkSamplerIdle(b *testing.B) {
	const conns, rooms = 2000, 200
	srv := startNode(b, natstest.RunServer(b), nil)
	for i := range conns {
		subscribe(b, dial(b, srv), fmt.Sprintf("pool:idle-%d", i%rooms), nil)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		srv.SampleOnce()
	}
}
