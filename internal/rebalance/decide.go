package rebalance

import (
	"math"
	"time"

	"github.com/roomcast/roomcast/internal/cluster"
)

// View is what a node knows when it decides.
type View struct {
	// Self is this node, with its connections counted now (not as last
	// published); Peers the other nodes it has heard from recently
	// (cluster.Node.Members without the first).
	Self  cluster.Member
	Peers []cluster.Member
	// Interval is how often nodes publish their status.
	Interval time.Duration
	// InTransit are the connections this node shed within TransitWindow:
	// they have left it but may not show in a peer's count yet. Counted
	// in the total, or the node would shed toward a share too small and
	// overshoot.
	InTransit int
	// Allowance is how many the pace allows now (see Pacer).
	Allowance int
}

// Decision is what Decide concluded.
type Decision struct {
	Shed  int     // connections to shed now
	Nodes int     // ready nodes counted, this one included when it is
	Share float64 // connections per counted node, those in transit included
	// Hold says why nothing is shed, "" when Shed > 0.
	Hold string
}

// Reasons a node holds (Decision.Hold).
const (
	HoldDisabled = "disabled"
	HoldDraining = "draining"
	HoldNotReady = "not ready"
	HoldPeer     = "a peer is not ready or not heard from lately"
	HoldAlone    = "fewer than 2 ready nodes"
	HoldFew      = "too few connections to balance"
	HoldBalanced = "within its share"
	HoldPaced    = "paced"
)

// StaleAfter is how long after its last status a node counts as not heard
// from: a little more than an interval, so one late status is not enough,
// and well before the cluster forgets it (cluster.Expiry intervals): a
// node that has just died still counts its clients, who are about to
// arrive on the others.
func StaleAfter(interval time.Duration) time.Duration { return interval * 3 / 2 }

// TransitWindow is how long a shed connection counts as in transit: until
// every peer's status heard here was made after its client had time to
// reconnect (ReconnectAllowance). A status heard age ago counts the
// clients that arrived before then; one shed more recently than the
// oldest status's age plus the allowance may be in no count yet. Counting
// it in the total as well as in a peer's only makes the node shed a little
// less for a moment; leaving it out of both would make it overshoot.
// Draining peers do not matter (they are not counted); with no peer, or
// one older than StaleAfter (the node holds anyway), it is StaleAfter plus
// the allowance.
func TransitWindow(peers []cluster.Member, interval time.Duration) time.Duration {
	stale := StaleAfter(interval)
	oldest := time.Duration(0)
	for _, m := range peers {
		if !m.Draining {
			oldest = max(oldest, m.Age)
		}
	}
	if len(peers) == 0 || oldest > stale {
		oldest = stale
	}
	return oldest + ReconnectAllowance(interval)
}

// ReconnectAllowance is how long a shed client is given to reach another
// node: half an interval, ample for a client that reconnects at once
// (milliseconds on a LAN, a few hundred over the internet with TLS). A
// slower one shows up late and the node may shed a few more than needed,
// which the peers' own limits correct.
func ReconnectAllowance(interval time.Duration) time.Duration { return interval / 2 }

// Decide returns how many connections this node sheds now. It sheds only
// when every rule allows:
//   - the policy is enabled, this node is ready and not draining;
//   - every other node that is not draining is ready and was heard from
//     within StaleAfter (draining nodes are not counted at all);
//   - at least 2 ready nodes count, holding MinShare connections each on
//     average;
//   - this node holds more than Limit(share, Tolerance), share being the
//     counted nodes' connections plus those in transit over the number of
//     nodes; it sheds what is above, no more than Allowance.
func Decide(p Policy, v View) Decision {
	d := Decision{}
	if v.Self.Ready && !v.Self.Draining {
		d.Nodes = 1
	}
	total := v.Self.Connections + v.InTransit
	stale := StaleAfter(v.Interval)
	peerHold := false
	for _, m := range v.Peers {
		switch {
		case m.Draining:
			continue // leaving: its clients go elsewhere anyway
		case !m.Ready || m.Age > stale:
			peerHold = true
			continue
		}
		d.Nodes++
		total += m.Connections
	}
	if d.Nodes > 0 {
		d.Share = float64(total) / float64(d.Nodes)
	}
	switch {
	case !p.Enabled:
		d.Hold = HoldDisabled
	case v.Self.Draining:
		d.Hold = HoldDraining
	case !v.Self.Ready || v.Self.Age > stale:
		d.Hold = HoldNotReady
	case peerHold:
		d.Hold = HoldPeer
	case d.Nodes < 2:
		d.Hold = HoldAlone
	case d.Share < MinShare:
		d.Hold = HoldFew
	}
	if d.Hold != "" {
		return d
	}
	excess := v.Self.Connections - Limit(d.Share, p.Tolerance)
	switch {
	case excess <= 0:
		d.Hold = HoldBalanced
	case v.Allowance <= 0:
		d.Hold = HoldPaced
	default:
		d.Shed = min(excess, v.Allowance)
	}
	return d
}

// Limit is the most connections a node keeps: share × (1+tolerance)
// rounded down, so that with the default tolerance two full nodes of three
// leave the third within 20% of its share; but never under the share
// rounded up, or at tolerance 0 the nodes' limits would add up to fewer
// than the connections and some node would always shed.
func Limit(share, tolerance float64) int {
	return max(int(math.Floor(share*(1+tolerance)+1e-9)), int(math.Ceil(share-1e-9)))
}
