package config

import (
	"flag"

	"github.com/roomcast/roomcast/internal/rebalance"
)

// registerRebalance defines the rebalancing flags (docs/protocol.md section
// 7, "Rebalancing") into p.
func registerRebalance(fs *flag.FlagSet, p *rebalance.Policy) {
	*p = rebalance.DefaultPolicy()
	fs.BoolVar(&p.Enabled, "rebalance", p.Enabled, "shed connections (close code 4012: reconnect at once and resume) while this node holds more than its share of the cluster's by --rebalance-tolerance; never while another node is not ready, nor in a cluster of fewer than 2 ready nodes")
	fs.Float64Var(&p.Tolerance, "rebalance-tolerance", p.Tolerance, "how far above its share of the cluster's connections a node may stay before it sheds, as a fraction of the share (0 to 1)")
	fs.IntVar(&p.Rate, "rebalance-rate", p.Rate, "connections a second a node sheds at most while rebalancing, spread over each second")
}
