package cluster

import (
	"slices"
	"time"
)

// Member is a node as this one last heard of it: its status, and how long
// ago it was heard (by this node's clock), which tells a live node from
// one that has just died and whose clients are about to arrive elsewhere.
type Member struct {
	Status
	Age time.Duration
}

// Members returns every node this one knows: itself first, then each peer
// heard from within Expiry intervals, sorted by name, each with the age of
// its status; it forgets the others. The rebalancer reads it; Peers is
// this, without the ages.
func (n *Node) Members() []Member {
	now := time.Now()
	cutoff := now.Add(-Expiry * n.opts.Interval)
	n.mu.Lock()
	self := Member{Status: n.self, Age: now.Sub(n.self.At)}
	out := make([]Member, 0, len(n.peers))
	for id, p := range n.peers {
		if p.heard.Before(cutoff) {
			// Forgotten, or every restart of a peer (a new id) would
			// stay for good.
			delete(n.peers, id)
			continue
		}
		out = append(out, Member{Status: p.st, Age: now.Sub(p.heard)})
	}
	n.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return byName(a.Status, b.Status) })
	return append([]Member{self}, out...)
}

// Interval is how often the node publishes its status.
func (n *Node) Interval() time.Duration { return n.opts.Interval }
