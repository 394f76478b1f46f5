package bench

import (
	"context"
	"fmt"
	"time"
)

// clusterFigures are the cluster scenario's figures, in the table's order.
func clusterFigures(cfg *ScenarioConfig) (rssAll, rssEdges, p50, p99, maxLat, cpuAll, cpuEdges, rate, deliveries figureSpec) {
	at := fmt.Sprintf("at %g events/s", cfg.Rate)
	all := fmt.Sprintf("one event to all %d connections", cfg.Shape.Conns)
	return figureSpec{"server RSS per connection, every server process (idle, subscribed)", "bytes", lower},
		figureSpec{"server RSS per connection, edges only (the reference: its servers)", "bytes", lower},
		figureSpec{all + ": p50 latency", "ms", lower},
		figureSpec{all + ": p99 latency", "ms", lower},
		figureSpec{all + ": max latency", "ms", lower},
		figureSpec{"server CPU per delivery " + at + ", every server process", "µs", lower},
		figureSpec{"server CPU per delivery " + at + ", edges only (the reference: its servers)", "µs", lower},
		figureSpec{"highest passing rate", "events/s", higher},
		figureSpec{"deliveries/s at the highest passing rate", "deliveries/s", higher}
}

// cluster measures one run of the cluster scenario on target: the idle
// memory, an event fanned out to every connection at AllRate, CPU per
// delivery at Rate, and the highest passing rate.
func (sc *scenario) cluster(ctx context.Context, run int, target string) error {
	cfg := sc.cfg
	cl, err := cfg.StartCluster(ctx, target, cfg.Shape)
	if err != nil {
		return err
	}
	defer cl.Close()
	rssAll, rssEdges, p50, p99, maxLat, cpuAll, cpuEdges, rate, deliveries := clusterFigures(cfg)

	all, edges, err := clusterRSS(ctx, cl)
	if err != nil {
		return err
	}
	st := Step{Scenario: cfg.Scenario, Target: target, Run: run, Step: "idle", Connections: cl.Subscribed,
		Rooms: cl.Layout.Rooms() + 1, RSSBytesPerConn: all, Passed: cl.Failed == 0}
	sc.emit(st)
	sc.figs.add(rssAll, target, all, st.Passed)
	sc.figs.add(rssEdges, target, edges, st.Passed)

	res, err := sc.clusterLoad(ctx, cl, run, "fan-out to all", float64(time.Second)/float64(allGap(cl.Layout.Conns)), true)
	if err != nil {
		return err
	}
	l, ok := res.rep.Latency, res.rep.Problem() == nil && res.rep.Latency != nil && res.rep.Latency.Samples > 0
	if !ok {
		l = &Latency{}
	}
	sc.figs.add(p50, target, l.P50, ok)
	sc.figs.add(p99, target, l.P99, ok)
	sc.figs.add(maxLat, target, l.Max, ok)

	if res, err = sc.clusterLoad(ctx, cl, run, "fixed-rate", cfg.Rate, false); err != nil {
		return err
	}
	ok = res.rep.Received > 0 && res.edgeCPU > 0
	sc.figs.add(cpuAll, target, (res.edgeCPU+res.natsCPU)*1e6/float64(max(res.rep.Received, 1)), ok)
	sc.figs.add(cpuEdges, target, res.edgeCPU*1e6/float64(max(res.rep.Received, 1)), ok)

	if cfg.MaxRate < 0 {
		return nil
	}
	var bestDeliveries float64
	best, atMax, err := searchRate(cfg.Rate, cfg.MaxRate, func(r float64) (bool, error) {
		res, err := sc.clusterLoad(ctx, cl, run, "search", r, false)
		if err != nil {
			return false, err
		}
		if passed(res.rep) {
			bestDeliveries = max(bestDeliveries, res.rep.DeliveriesPerSec)
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	sc.figs.add(rate, target, best, true)
	sc.figs.add(deliveries, target, bestDeliveries, best > 0)
	if atMax {
		sc.figs.result(rate, target).AtMax++
	}
	return nil
}

// ClusterAllEvents is how many events the fan-out to all publishes, allGap
// apart.
const ClusterAllEvents = 3

// allGap is the time between two events of the fan-out to all: 100 µs a
// connection, from half a second to ten. At 95,000 connections on one
// shared server core one event costs the servers seconds of CPU (1.6 s
// for roomcast, 4 s for the reference, measured), and the figure is meant
// to be an event's latency, not a backlog's.
func allGap(conns int) time.Duration {
	return min(10*time.Second, max(500*time.Millisecond, time.Duration(conns)*100*time.Microsecond))
}

// clusterAllGrace is the least grace of the fan-out to all: at 95,000
// connections on one shared core its deliveries take seconds.
const clusterAllGrace = 30 * time.Second

// clusterRSS is the servers' resident memory per subscribed connection:
// every server process's, and the edges' alone.
func clusterRSS(ctx context.Context, cl *Cluster) (all, edges float64, err error) {
	sum := func(pids []int) (int64, error) {
		var total int64
		for _, pid := range pids {
			rss, err := settledRSS(ctx, pid)
			if err != nil {
				return 0, err
			}
			total += rss
		}
		return total, nil
	}
	e, err := sum(cl.Edges)
	if err != nil {
		return 0, 0, err
	}
	n, err := sum(cl.NATS)
	if err != nil {
		return 0, 0, err
	}
	conns := float64(max(cl.Subscribed, 1))
	return float64(e+n) / conns, float64(e) / conns, nil
}

// clusterResult is one load step of the cluster scenario.
type clusterResult struct {
	rep              *Report
	edgeCPU, natsCPU float64 // seconds, over the step
}

// clusterLoad publishes rate events a second for Duration, over the
// layout's rooms or (all) to the room every connection follows, and
// gathers the generators' counts once delivered (or the grace is over).
func (sc *scenario) clusterLoad(ctx context.Context, cl *Cluster, run int, name string, rate float64, all bool) (*clusterResult, error) {
	cfg := sc.cfg
	rooms := cl.Layout.Rooms()
	pc := Config{NATSURL: cl.NATSURL, Protocol: cl.protocol(), Rooms: rooms, Rate: rate, Duration: cfg.Duration}
	if all {
		pc.Rooms, pc.Duration = 1, ClusterAllEvents*allGap(cl.Layout.Conns)
	}
	pc = pc.withDefaults()
	t := &tally{}
	p, err := newPublisher(&pc, t)
	if err != nil {
		return nil, err
	}
	defer p.close()
	if all {
		p.subjects[0] = roomSubject(&pc, cl.Layout.All())
	} else {
		p.order = cl.Layout.PublishOrder()
	}
	if err := cl.broadcast(ctx, generatorCommand{Cmd: "begin"}, genBegun, generatorReplyTimeout, nil); err != nil {
		return nil, err
	}
	edgeCPU, natsCPU := cpuWindows(cl.Edges, t), cpuWindows(cl.NATS, t)
	pub := p.run(ctx)
	acked := make([]int64, rooms+1)
	if all {
		acked[cl.Layout.All()] = pub.acked[0]
	} else {
		copy(acked, pub.acked)
	}
	rep := &Report{Mode: ModeLoad, Connections: cl.Layout.Conns, Subscribed: cl.Subscribed, DialFailed: cl.Failed,
		Rooms: pc.Rooms, Rate: rate, DurationSeconds: pc.Duration.Seconds(),
		PublishErrors: pub.errors, PublishSeconds: pub.sent.Sub(pub.start).Seconds()}
	for _, n := range pub.acked {
		rep.Published += n
	}
	var merged mergedHistogram
	var lastRecv int64
	grace := cfg.Grace
	if all {
		// Every event of the fan-out to all is waited for, or the next
		// step would count its late deliveries and pay for their CPU.
		grace = max(grace, clusterAllGrace)
	}
	err = cl.broadcast(ctx, generatorCommand{Cmd: "end", Acked: acked, Grace: grace}, genReport, grace+generatorReplyTimeout,
		func(r generatorReply) error {
			g := r.Report
			rep.Expected += g.Expected
			rep.Received += g.Received
			rep.Lost += g.Lost
			rep.Gaps += g.Gaps
			rep.OutOfOrder += g.OutOfOrder
			rep.Unexpected += g.Unexpected
			rep.ConnectionsDropped += g.Dropped
			lastRecv = max(lastRecv, g.LastRecv)
			return merged.addWire(g.Latency)
		})
	if err != nil {
		return nil, err
	}
	res := &clusterResult{rep: rep, edgeCPU: endWindows(edgeCPU, t), natsCPU: endWindows(natsCPU, t)}
	rep.ServerCPUSeconds = res.edgeCPU + res.natsCPU
	if rep.Received > 0 && rep.ServerCPUSeconds > 0 {
		rep.CPUMicrosPerDelivery = rep.ServerCPUSeconds * 1e6 / float64(rep.Received)
	}
	l := merged.latency()
	rep.Latency = &l
	if span := time.Unix(0, lastRecv).Sub(pub.start); lastRecv > 0 && span > 0 {
		rep.DeliveriesPerSec = float64(rep.Received) / span.Seconds()
	}
	rep.Errors = t.list()
	st := sc.step(rep, cl.Servers, run, name)
	st.Passed = passed(rep)
	if !st.Passed && st.Problem == "" {
		st.Problem = fmt.Sprintf("p99 latency %.1fms, want under %s", st.P99, PassP99)
	}
	sc.emit(st)
	cfg.Logger.Info("cluster step", "target", cl.Target, "step", name, "rate", rate, "expected", rep.Expected,
		"delivered", rep.Received, "p50_ms", l.P50, "p99_ms", l.P99, "max_ms", l.Max, "deliveries_per_second", rep.DeliveriesPerSec,
		"edge_cpu_s", res.edgeCPU, "nats_cpu_s", res.natsCPU, "passed", st.Passed)
	return res, nil
}

// broadcast sends cmd to every generator, then waits for each one's reply
// of kind want and hands it to each (when not nil).
func (c *Cluster) broadcast(ctx context.Context, cmd generatorCommand, want string, timeout time.Duration, each func(generatorReply) error) error {
	for _, g := range c.gens {
		if err := g.send(cmd); err != nil {
			return err
		}
	}
	for k, g := range c.gens {
		r, err := g.await(ctx, want, timeout)
		if err == nil && each != nil {
			if r.Report == nil {
				err = fmt.Errorf("no report")
			} else {
				err = each(r)
			}
		}
		if err != nil {
			return fmt.Errorf("generator %d: %w", k, err)
		}
	}
	return nil
}

// cpuWindows starts measuring the CPU time of each of pids.
func cpuWindows(pids []int, t *tally) []*cpuWindow {
	ws := make([]*cpuWindow, len(pids))
	for i, pid := range pids {
		ws[i] = &cpuWindow{pid: pid}
		ws[i].begin(t)
	}
	return ws
}

// endWindows is the CPU seconds the windows' processes used, together.
func endWindows(ws []*cpuWindow, t *tally) float64 {
	var s float64
	for _, w := range ws {
		s += w.end(t)
	}
	return s
}
