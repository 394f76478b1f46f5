// Package rebalance moves clients off a node that holds more than its fair
// share of the cluster's connections, after a scale-out (docs/protocol.md
// section 7, "Rebalancing"; docs/architecture.md, design point on
// rebalancing). Decide is the rule, pure: from this node's status and its
// peers' (package cluster), how many connections to shed now. Loop applies
// it on a schedule against the node's edge.
//
// It is a package of its own, not part of cluster, because cluster only
// tells nodes about each other; what a node does with that (close its
// clients) is a policy on top, with its own flags, metrics and tests.
package rebalance

import (
	"errors"
	"fmt"
)

// Policy is what --rebalance, --rebalance-tolerance and --rebalance-rate
// set.
type Policy struct {
	// Enabled lets the node shed; off, it never does.
	Enabled bool
	// Tolerance is how far above its share a node may stay, as a fraction
	// of the share: 0.1 lets a node of a three-node cluster with 300
	// connections hold 110.
	Tolerance float64
	// Rate is how many connections a node sheds a second at most.
	Rate int
}

// Defaults and bounds of Policy.
const (
	DefaultTolerance = 0.1
	// DefaultRate balances 200 connections of three nodes (about 127 off
	// the one that held them all) in a few seconds, and 19,000 in a few
	// minutes even with clients routed at random (a third of those shed
	// come back: docs/benchmarks.md); 50 took over 6 minutes. The
	// resumes it causes stay a trickle beside the nodes' other work.
	DefaultRate  = 100
	MaxTolerance = 1.0
	MaxRate      = 10000
	// MinShare is the fewest connections per counted node for which the
	// cluster is worth balancing: below it a node's excess is a handful
	// of clients and moving them is noise.
	MinShare = 10
)

// DefaultPolicy is the policy with the defaults: enabled.
func DefaultPolicy() Policy {
	return Policy{Enabled: true, Tolerance: DefaultTolerance, Rate: DefaultRate}
}

// Check reports what is wrong with p, naming the flags.
func (p Policy) Check() error {
	var errs []error
	if !(p.Tolerance >= 0 && p.Tolerance <= MaxTolerance) { // NaN fails both
		errs = append(errs, fmt.Errorf("--rebalance-tolerance must be between 0 and %g (a fraction of a node's share: 0.1 is 10%%), got %g", MaxTolerance, p.Tolerance))
	}
	if p.Rate < 1 || p.Rate > MaxRate {
		errs = append(errs, fmt.Errorf("--rebalance-rate must be between 1 and %d connections a second, got %d", MaxRate, p.Rate))
	}
	return errors.Join(errs...)
}
