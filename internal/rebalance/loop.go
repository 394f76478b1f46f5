package rebalance

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/internal/cluster"
)

// Options configure a Loop.
type Options struct {
	Policy Policy
	// Interval is how often nodes publish their status; the loop ticks
	// ten times an interval, spreading the rate.
	Interval time.Duration
	// Members are the nodes this one knows, itself first
	// (cluster.Node.Members); Count its open connections now, less those
	// it shed that are still closing (their clients may be counted
	// elsewhere already); Shed closes n of them for rebalancing and
	// returns how many it closed.
	Members func() []cluster.Member
	Count   func() int
	Shed    func(n int) int
	// ShedTotal counts the connections shed (roomcast_rebalance_shed_total);
	// Nodes is set to the ready nodes counted (roomcast_cluster_nodes).
	ShedTotal prometheus.Counter
	Nodes     prometheus.Gauge
	Logger    *slog.Logger
}

// ticksPerInterval is how finely the loop spreads its pace.
const ticksPerInterval = 10

// Loop applies Decide on a schedule. Stop ends it.
type Loop struct {
	opts  Options
	stop  chan struct{}
	done  chan struct{}
	total atomic.Uint64 // connections shed since start

	// Owned by the loop's goroutine.
	pacer    *Pacer
	recent   []shedAt  // sheds within the transit window, oldest first
	shedding bool      // shed within quietAfter intervals: for the log only
	lastShed time.Time // the last tick that shed: the same
	hold     string    // the last decision's hold reason: the same
}

// shedAt is one tick's shedding.
type shedAt struct {
	at time.Time
	n  int
}

// Start starts the loop.
func Start(o Options) *Loop {
	if o.Interval <= 0 {
		o.Interval = cluster.DefaultInterval
	}
	tick := o.Interval / ticksPerInterval
	l := &Loop{opts: o, stop: make(chan struct{}), done: make(chan struct{}),
		pacer: NewPacer(o.Policy.Rate, tick, time.Now())}
	go l.run(tick)
	return l
}

// Stop ends the loop and waits for it; no shedding begins after it
// returns. It may be called more than once.
func (l *Loop) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// Total is how many connections the node has shed since it started.
func (l *Loop) Total() uint64 { return l.total.Load() }

func (l *Loop) run(tick time.Duration) {
	defer close(l.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			l.step(now)
		}
	}
}

// step decides once and sheds what the decision says.
func (l *Loop) step(now time.Time) {
	members := l.opts.Members()
	if len(members) == 0 {
		return // not joined yet
	}
	self, peers := members[0], members[1:]
	self.Connections = l.opts.Count()
	d := Decide(l.opts.Policy, View{
		Self: self, Peers: peers, Interval: l.opts.Interval,
		InTransit: l.inTransit(now, TransitWindow(peers, l.opts.Interval)), Allowance: l.pacer.Allowance(now),
	})
	l.opts.Nodes.Set(float64(d.Nodes))
	l.logChange(now, d)
	if d.Shed == 0 {
		return
	}
	n := l.opts.Shed(d.Shed)
	l.pacer.Spend(n)
	l.recent = append(l.recent, shedAt{at: now, n: n})
	l.total.Add(uint64(n))
	l.opts.ShedTotal.Add(float64(n))
}

// inTransit sums the sheds within window, forgetting older ones (the
// window is never longer than StaleAfter plus ReconnectAllowance).
func (l *Loop) inTransit(now time.Time, window time.Duration) int {
	cutoff := now.Add(-window)
	i := 0
	for i < len(l.recent) && l.recent[i].at.Before(cutoff) {
		i++
	}
	l.recent = l.recent[i:]
	sum := 0
	for _, s := range l.recent {
		sum += s.n
	}
	return sum
}

// logChange logs when the node starts shedding and when it has shed
// nothing for a few intervals (not each flip of a tick: a node near its
// limit sheds one now and then while clients settle), and at debug level
// each change of the reason it holds.
func (l *Loop) logChange(now time.Time, d Decision) {
	log := l.opts.Logger
	if log == nil {
		return
	}
	if d.Hold != l.hold {
		log.Debug("rebalancing: decision", "hold", d.Hold, "shed", d.Shed, "nodes", d.Nodes, "share", d.Share)
	}
	l.hold = d.Hold
	switch {
	case d.Shed > 0 && !l.shedding:
		l.shedding = true
		log.Info("rebalancing: shedding connections above the share", "nodes", d.Nodes, "share", int(d.Share), "tolerance", l.opts.Policy.Tolerance, "rate", l.opts.Policy.Rate)
	case d.Shed > 0:
	case l.shedding && now.Sub(l.lastShed) > quietAfter*l.opts.Interval:
		l.shedding = false
		log.Info("rebalancing: done", "reason", d.Hold, "nodes", d.Nodes, "share", int(d.Share), "shed_total", l.total.Load())
	}
	if d.Shed > 0 {
		l.lastShed = now
	}
}

// quietAfter is how many intervals without shedding end a rebalancing, for
// the log.
const quietAfter = 3
