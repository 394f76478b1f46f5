package rebalance

import (
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/cluster"
)

const interval = time.Second

// node is a ready, fresh node holding conns.
func node(name string, conns int) cluster.Member {
	return cluster.Member{Status: cluster.Status{ID: name, Name: name, Ready: true, Connections: conns}, Age: interval / 2}
}

func notReady(m cluster.Member) cluster.Member {
	m.Ready = false
	m.Reason = "NATS disconnected"
	return m
}
func draining(m cluster.Member) cluster.Member { m.Draining = true; m.Ready = false; return m }
func aged(m cluster.Member, age time.Duration) cluster.Member {
	m.Age = age
	return m
}

func TestDecide(t *testing.T) {
	on := DefaultPolicy()
	lots := 1000 // an allowance that never binds
	cases := []struct {
		name      string
		policy    Policy
		self      cluster.Member
		peers     []cluster.Member
		inTransit int
		allowance int
		want      int
		hold      string
		nodes     int
	}{
		{name: "over its share: sheds what is above share×1.1", policy: on,
			self: node("a", 300), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: lots, want: 300 - 110, nodes: 3},
		{name: "exactly at share×(1+tolerance): holds", policy: on,
			self: node("a", 110), peers: []cluster.Member{node("b", 95), node("c", 95)},
			allowance: lots, hold: HoldBalanced, nodes: 3},
		{name: "one above share×(1+tolerance): sheds one", policy: on,
			self: node("a", 111), peers: []cluster.Member{node("b", 95), node("c", 94)},
			allowance: lots, want: 1, nodes: 3},
		{name: "a node under its share never sheds", policy: on,
			self: node("b", 0), peers: []cluster.Member{node("a", 300), node("c", 0)},
			allowance: lots, hold: HoldBalanced, nodes: 3},
		{name: "the pace bounds it", policy: on,
			self: node("a", 300), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: 5, want: 5, nodes: 3},
		{name: "pace spent: holds", policy: on,
			self: node("a", 300), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: 0, hold: HoldPaced, nodes: 3},
		{name: "in transit counts in the total: no overshoot", policy: on,
			// 150 left a moments ago and show nowhere yet: the share is
			// still 100, so a holds at 110, not at (150+0+0)/3×1.1 = 55.
			self: node("a", 150), peers: []cluster.Member{node("b", 0), node("c", 0)},
			inTransit: 150, allowance: lots, want: 40, nodes: 3},
		{name: "tolerance 0 sheds down to the rounded-up share", policy: Policy{Enabled: true, Rate: 50},
			self: node("a", 35), peers: []cluster.Member{node("b", 33), node("c", 32)},
			allowance: lots, want: 1, nodes: 3},
		{name: "tolerance 0 at the rounded-up share holds (no ping-pong)", policy: Policy{Enabled: true, Rate: 50},
			self: node("a", 34), peers: []cluster.Member{node("b", 33), node("c", 33)},
			allowance: lots, hold: HoldBalanced, nodes: 3},
		{name: "disabled never sheds", policy: Policy{Tolerance: 0.1, Rate: 50},
			self: node("a", 300), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: lots, hold: HoldDisabled, nodes: 3},
		{name: "this node not ready", policy: on,
			self: notReady(node("a", 300)), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: lots, hold: HoldNotReady, nodes: 2},
		{name: "this node's own status stale", policy: on,
			self: aged(node("a", 300), 2*interval), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: lots, hold: HoldNotReady, nodes: 3},
		{name: "this node draining never sheds", policy: on,
			self: draining(node("a", 300)), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: lots, hold: HoldDraining, nodes: 2},
		{name: "a peer not ready holds", policy: on,
			self: node("a", 300), peers: []cluster.Member{node("b", 0), notReady(node("c", 0))},
			allowance: lots, hold: HoldPeer, nodes: 2},
		{name: "a peer not heard from for 1.5 intervals holds (it may have died: its clients are coming)", policy: on,
			self: node("a", 300), peers: []cluster.Member{node("b", 0), aged(node("c", 100), 1600*time.Millisecond)},
			allowance: lots, hold: HoldPeer, nodes: 2},
		{name: "a peer heard from just within 1.5 intervals counts", policy: on,
			self: node("a", 300), peers: []cluster.Member{node("b", 0), aged(node("c", 0), 1400*time.Millisecond)},
			allowance: lots, want: 190, nodes: 3},
		{name: "a draining peer is not counted, nor does it hold", policy: on,
			// Counted: a (300) and b (0): share 150, a keeps 165.
			self: node("a", 300), peers: []cluster.Member{node("b", 0), draining(node("c", 500))},
			allowance: lots, want: 300 - 165, nodes: 2},
		{name: "a draining peer with a stale status is not counted either", policy: on,
			self: node("a", 300), peers: []cluster.Member{node("b", 0), aged(draining(node("c", 0)), 2*interval)},
			allowance: lots, want: 300 - 165, nodes: 2},
		{name: "alone", policy: on,
			self: node("a", 300), allowance: lots, hold: HoldAlone, nodes: 1},
		{name: "alone once the others drain", policy: on,
			self: node("a", 300), peers: []cluster.Member{draining(node("b", 10))},
			allowance: lots, hold: HoldAlone, nodes: 1},
		{name: "too few connections: under MinShare a node", policy: on,
			self: node("a", 29), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: lots, hold: HoldFew, nodes: 3},
		{name: "just enough connections: MinShare a node", policy: on,
			self: node("a", 30), peers: []cluster.Member{node("b", 0), node("c", 0)},
			allowance: lots, want: 30 - 11, nodes: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.policy, View{Self: tc.self, Peers: tc.peers, Interval: interval, InTransit: tc.inTransit, Allowance: tc.allowance})
			if d.Shed != tc.want || d.Hold != tc.hold || d.Nodes != tc.nodes {
				t.Fatalf("got shed %d, hold %q, nodes %d; want shed %d, hold %q, nodes %d (share %.1f)",
					d.Shed, d.Hold, d.Nodes, tc.want, tc.hold, tc.nodes, d.Share)
			}
		})
	}
}

// Three nodes converge: each applying Decide to the others' counts (the
// shed clients spread over the others) ends within the tolerance, and no
// node sheds once there. A simulation of the rule, not of the network.
func TestDecideConverges(t *testing.T) {
	counts := []int{200, 0, 0}
	p := DefaultPolicy()
	for round := 0; round < 100; round++ {
		moved := false
		for i := range counts {
			var peers []cluster.Member
			for j, c := range counts {
				if j != i {
					peers = append(peers, node(string(rune('a'+j)), c))
				}
			}
			d := Decide(p, View{Self: node(string(rune('a'+i)), counts[i]), Peers: peers, Interval: interval, Allowance: p.Rate})
			for k := 0; k < d.Shed; k++ { // to the others in turn
				counts[(i+1+k%2)%3]++
			}
			counts[i] -= d.Shed
			moved = moved || d.Shed > 0
		}
		if !moved {
			for _, c := range counts {
				if share := 200.0 / 3; float64(c) > share*1.1+1 || float64(c) < share*0.8 {
					t.Fatalf("settled at %v: a node outside its share", counts)
				}
			}
			return
		}
	}
	t.Fatalf("still moving after 100 rounds: %v", counts)
}

func TestPolicyCheck(t *testing.T) {
	if err := DefaultPolicy().Check(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{Tolerance: -0.1, Rate: 50}, "--rebalance-tolerance"},
		{Policy{Tolerance: 1.5, Rate: 50}, "--rebalance-tolerance"},
		{Policy{Tolerance: nan(), Rate: 50}, "--rebalance-tolerance"},
		{Policy{Tolerance: 0.1, Rate: 0}, "--rebalance-rate"},
		{Policy{Tolerance: 0.1, Rate: -5}, "--rebalance-rate"},
		{Policy{Tolerance: 0.1, Rate: MaxRate + 1}, "--rebalance-rate"},
	} {
		err := tc.p.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.p, err, tc.want)
		}
	}
}

func nan() float64 { zero := 0.0; return zero / zero }

// The pacer gives at most a tick's worth at once and the rate over a
// second, however often it is asked.
func TestPacer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := NewPacer(50, 100*time.Millisecond, t0)
	if got := p.Allowance(t0); got != 5 {
		t.Fatalf("at start: %d, want a tick's worth, 5", got)
	}
	p.Spend(5)
	if got := p.Allowance(t0.Add(10 * time.Millisecond)); got != 0 {
		t.Fatalf("10 ms after spending it all: %d, want 0", got)
	}
	if got := p.Allowance(t0.Add(time.Hour)); got != 5 {
		t.Fatalf("after a long pause: %d, want no more than a tick's worth, 5", got)
	}
	// Over 10 s asked every millisecond, spending all it gives: 50 a second.
	p = NewPacer(50, 100*time.Millisecond, t0)
	total := 0
	for ms := 1; ms <= 10000; ms++ {
		n := p.Allowance(t0.Add(time.Duration(ms) * time.Millisecond))
		p.Spend(n)
		total += n
	}
	if total < 495 || total > 505 {
		t.Fatalf("shed %d in 10 s at 50/s", total)
	}
	// A rate under the ticks a second still moves: 1 at a time.
	p = NewPacer(3, 100*time.Millisecond, t0)
	if got := p.Allowance(t0); got != 1 {
		t.Fatalf("rate 3: %d at once, want 1", got)
	}
}

// With the default tolerance, two nodes of three at their limit leave the
// third within 20% of its share, for any total worth balancing: the
// measured target of issue 20.
func TestLimitLeavesEveryNodeWithin20Percent(t *testing.T) {
	for total := 3 * MinShare; total <= 20000; total++ {
		share := float64(total) / 3
		limit := Limit(share, DefaultTolerance)
		if third := float64(total - 2*limit); third < 0.8*share-1e-9 || float64(limit) > share*1.1+1e-9 {
			t.Fatalf("%d connections: limit %d leaves the third node %v of a share of %.2f", total, limit, third, share)
		}
	}
	if got := Limit(100, 0); got != 100 {
		t.Fatalf("Limit(100, 0) = %d", got)
	}
	if got := Limit(100.0/3, 0); got != 34 {
		t.Fatalf("Limit(33.3, 0) = %d, want 34: the limits must add up to the connections", got)
	}
}

// A shed connection is in transit until the oldest status of a counted
// peer was made after its client had time to arrive.
func TestTransitWindow(t *testing.T) {
	allow := ReconnectAllowance(interval)
	for _, tc := range []struct {
		name  string
		peers []cluster.Member
		want  time.Duration
	}{
		{"fresh peers: the oldest status's age", []cluster.Member{aged(node("b", 0), 200*time.Millisecond), aged(node("c", 0), 700*time.Millisecond)}, 700*time.Millisecond + allow},
		{"a draining peer's age does not count", []cluster.Member{aged(node("b", 0), 200*time.Millisecond), aged(draining(node("c", 0)), 1400*time.Millisecond)}, 200*time.Millisecond + allow},
		{"no peer", nil, StaleAfter(interval) + allow},
		{"a stale peer: capped", []cluster.Member{aged(node("b", 0), 2*time.Second)}, StaleAfter(interval) + allow},
	} {
		if got := TransitWindow(tc.peers, interval); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
