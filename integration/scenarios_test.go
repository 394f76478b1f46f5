package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scenarios are issue 12's and issue 20's scale-out (9), in the order
// TestCluster runs them: those that leave the cluster as they found it
// first, then the cluster restart, then the wiped store.
var scenarios = []scenario{
	{name: "1-fan-out", fault: fanOut},
	{name: "2-edge-sigkill", fault: edgeKilled, after: rate},
	{name: "3-rolling-restart", fault: rollingRestart, after: rate},
	{name: "4-nats-sigkill", fault: natsKilled, after: rate},
	{name: "5-edge-cut-off", fault: edgeCutOff, after: rate},
	{name: "7-nats-sigstop", fault: natsPaused},
	{name: "9-scale-out", fault: scaleOut, after: rate, followers: scaleOutFollowers},
	{name: "6-cluster-restart", fault: clusterRestart, after: rate},
	{name: "8-store-wiped", fault: storeWiped, after: 2 * rate, reset: true},
}

// must fails the test on an error.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// 1. Events published once reach the followers on all three edges, each
// staying where it connected first.
func fanOut(ctx context.Context, t *testing.T, r *run) {
	r.stored(ctx, t, 2*rate)
	for j, f := range r.followers {
		if st := f.stats(); st.conns != 1 || f.edgeNow() != j%3 {
			t.Errorf("%s: %d connections, on edge %d now; want one, to edge %d", f.name, st.conns, f.edgeNow(), j%3)
		}
	}
}

// 2. An edge is killed (SIGKILL) mid-stream: its followers reconnect to the
// next edge and resume there. It is started again for the next scenarios.
func edgeKilled(ctx context.Context, t *testing.T, r *run) {
	victim := r.c.edge(1)
	moved := r.on(1)
	if len(moved) == 0 {
		t.Fatal("no follower on edge-1")
	}
	must(t, r.c.signal(ctx, victim, "SIGKILL"))
	must(t, waitUntil(ctx, 30*time.Second, "edge-1's followers resumed elsewhere", func() error {
		for _, f := range moved {
			if err := f.following(); err != nil {
				return err
			}
			if e := f.edgeNow(); e == 1 {
				return fmt.Errorf("%s still on edge-1", f.name)
			}
		}
		return nil
	}))
	r.stored(ctx, t, rate)
	must(t, r.c.start(ctx, victim))
}

// 3. A rolling restart under continuous publishing: each edge in turn is
// stopped as Kubernetes does (SIGTERM: it drains, closing its clients with
// 1001, and exits with 0), and started again once its clients resumed on
// the others.
func rollingRestart(ctx context.Context, t *testing.T, r *run) {
	for i := range 3 {
		m := r.c.edge(i)
		code, err := r.c.stop(ctx, m, 20*time.Second)
		must(t, err)
		if code != 0 {
			t.Errorf("%s exited with %d after SIGTERM, want 0 (a clean drain)", m.name, code)
		}
		r.allFollowing(ctx, t, 30*time.Second)
		r.stored(ctx, t, rate/2)
		must(t, r.c.start(ctx, m))
	}
}

// 4. The stream leader's NATS server is killed (SIGKILL) while publishing
// goes on: the other two elect a leader and store on; the server is
// started again with its store and catches up.
func natsKilled(ctx context.Context, t *testing.T, r *run) {
	m := r.streamLeader(ctx, t)
	defer r.logEdges(ctx, t, r.edgeMetrics(ctx))
	if clients, err := r.c.natsClients(ctx); err == nil {
		t.Logf("clients of %s: %q", m.name, clients[m.name])
	}
	must(t, r.c.signal(ctx, m, "SIGKILL"))
	r.stored(ctx, t, 2*rate)
	must(t, r.c.start(ctx, m))
	r.healthy(ctx, t)
}

// 5. An edge is cut off from the private network: its /readyz goes false
// (the stream is unreachable) while it keeps its clients, and publishing
// goes on until NATS has given up on the edge's connection (its write
// deadline passed with events for the edge unsent): the events published
// meanwhile are gone from its live feed. Once connected again the edge
// reconnects, becomes ready and backfills what its clients missed, without
// them having to reconnect.
func edgeCutOff(ctx context.Context, t *testing.T, r *run) {
	const i = 2
	m := r.c.edge(i)
	kept := r.on(i)
	conns := map[*follower]int{}
	for _, f := range kept {
		conns[f] = f.stats().conns
	}
	before := edgeMetrics(ctx, r.c, i)
	began := time.Now()
	must(t, r.c.cut(ctx, m))
	joined := false
	defer func() {
		if !joined {
			_ = r.c.join(ctx, m)
		}
	}()
	var reason string
	must(t, waitUntil(ctx, 30*time.Second, "edge-2 not ready once cut off", func() error {
		err := r.c.ready(ctx, i)
		if err == nil {
			return errors.New("/readyz still 200")
		}
		reason = err.Error()
		return nil
	}))
	t.Logf("edge-2 cut off, not ready after %v: %s", time.Since(began).Round(time.Millisecond), reason)
	must(t, waitUntil(ctx, 90*time.Second, "NATS dropped edge-2's connection", func() error {
		clients, err := r.c.natsClients(ctx)
		if err != nil {
			return err
		}
		for server, names := range clients {
			if slices.Contains(names, "roomcast edge-2") {
				return fmt.Errorf("%s still lists it", server)
			}
		}
		return nil
	}))
	t.Logf("NATS dropped edge-2's connection %v after the cut", time.Since(began).Round(time.Millisecond))
	must(t, r.c.join(ctx, m))
	joined = true
	rejoined := time.Now()
	must(t, waitUntil(ctx, time.Minute, "edge-2 ready again", func() error { return r.c.ready(ctx, i) }))
	t.Logf("edge-2 ready again %v after rejoining", time.Since(rejoined).Round(time.Millisecond))
	r.stored(ctx, t, rate/2)
	for _, f := range kept {
		if st := f.stats(); st.conns != conns[f] {
			t.Errorf("%s was on edge-2 and reconnected %d times: the edge should have kept it", f.name, st.conns-conns[f])
		}
	}
	after := edgeMetrics(ctx, r.c, i)
	t.Logf("edge-2 over the cut: %s", metricsDelta(before, after))
	if after["roomcast_backfilled_events_total"] <= before["roomcast_backfilled_events_total"] {
		t.Error("edge-2 backfilled nothing, yet it missed the events published while NATS had dropped it")
	}
}

// 7. The NATS server most edges are connected to (the stream leader among
// equals) is stopped (SIGSTOP) while publishing goes on, for longer than
// the route write deadline, and until its edges have left it for the other
// servers; then it is continued, and publishing stops. Events published
// around the pause are the last of their rooms: no later event reveals a
// gap, the edges must find what they lack by themselves.
func natsPaused(ctx context.Context, t *testing.T, r *run) {
	m, edges := r.busiestNATS(ctx, t)
	defer r.logEdges(ctx, t, r.edgeMetrics(ctx))
	must(t, r.c.signal(ctx, m, "SIGSTOP"))
	stopped := time.Now()
	continued := false
	defer func() {
		if !continued {
			_ = r.c.signal(context.Background(), m, "SIGCONT")
		}
	}()
	// An edge notices a silent server by its unanswered pings (within
	// 15 s) and moves to another server.
	must(t, waitUntil(ctx, time.Minute, "the stopped server's edges moved to the others and ready", func() error {
		clients, err := r.c.natsClients(ctx, m)
		if err != nil {
			return err
		}
		for _, e := range edges {
			on := false
			for _, names := range clients {
				on = on || slices.Contains(names, "roomcast "+e)
			}
			if !on {
				return fmt.Errorf("%s is on no running server", e)
			}
			i, _ := strconv.Atoi(strings.TrimPrefix(e, "edge-"))
			if err := r.c.ready(ctx, i); err != nil {
				return fmt.Errorf("%s: %w", e, err)
			}
		}
		return nil
	}))
	t.Logf("edges %v left %s and are ready %v after it stopped", edges, m.name, time.Since(stopped).Round(time.Millisecond))
	// A wait on time itself: the pause must outlast cluster.conf's
	// write_deadline (10 s), which routes share with clients. (nats-server
	// 2.15 keeps a route whose writes pass their deadline and retries, so
	// whether the others drop their routes to the stopped server is up to
	// their pings.)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(15*time.Second - time.Since(stopped)):
	}
	must(t, r.c.signal(ctx, m, "SIGCONT"))
	continued = true
	must(t, r.pub.Stop())
	r.healthy(ctx, t)
}

// 6. The whole NATS cluster is stopped and started again, each server with
// its file store: the stream keeps its history (the same stream, every
// message; the check reads every room back from it), the edges keep their
// followers and serve them again. Then every follower's connection fails:
// each resumes with since on the next edge; and a new follower reads every
// room from its first event, stored before the restart.
func clusterRestart(ctx context.Context, t *testing.T, r *run) {
	before, err := r.reader.info(ctx)
	must(t, err)
	defer r.logEdges(ctx, t, r.edgeMetrics(ctx))
	must(t, r.c.each(func(i int) error {
		m := r.c.natsMember(i)
		code, err := r.c.stop(ctx, m, 10*time.Second)
		if err == nil && code != 0 {
			t.Logf("%s exited with %d after SIGTERM", m.name, code)
		}
		return err
	}))
	must(t, r.c.each(func(i int) error { return r.c.start(ctx, r.c.natsMember(i)) }))
	r.healthy(ctx, t)
	after, err := r.reader.info(ctx)
	must(t, err)
	if after.State.FirstSeq != before.State.FirstSeq || after.State.Msgs < before.State.Msgs ||
		after.State.LastSeq < before.State.LastSeq || !after.Created.Equal(before.Created) {
		t.Errorf("the stream before the restart: created %v, first %d, last %d, %d messages; after: %v, %d, %d, %d",
			before.Created, before.State.FirstSeq, before.State.LastSeq, before.State.Msgs,
			after.Created, after.State.FirstSeq, after.State.LastSeq, after.State.Msgs)
	}
	r.allFollowing(ctx, t, time.Minute)
	r.stored(ctx, t, rate/2)
	conns := map[*follower]int{}
	for _, f := range r.followers {
		conns[f] = f.stats().conns
		f.drop()
	}
	must(t, waitUntil(ctx, time.Minute, "every follower resumed on another connection", func() error {
		for f, n := range conns {
			if f.stats().conns == n {
				return fmt.Errorf("%s has not reconnected", f.name)
			}
			if err := f.following(); err != nil {
				return err
			}
		}
		return nil
	}))
	r.addFollower(ctx, t, "follower-late", 0, true)
	r.allFollowing(ctx, t, time.Minute)
}

// 8. The NATS store is wiped: three new servers start empty. The edges
// create the stream again (past every sequence the old one used), close
// their clients with 4010, the followers subscribe again, and the events
// published afterwards reach them.
func storeWiped(ctx context.Context, t *testing.T, r *run) {
	before, err := r.reader.info(ctx)
	must(t, err)
	must(t, r.c.wipe(ctx))
	r.healthy(ctx, t)
	after, err := r.reader.info(ctx)
	must(t, err)
	if after.Config.FirstSeq <= before.State.LastSeq {
		t.Errorf("the new stream starts at %d, not past the old one's last sequence %d", after.Config.FirstSeq, before.State.LastSeq)
	}
	r.minSeq = after.Config.FirstSeq
	must(t, waitUntil(ctx, time.Minute, "every follower told (4010) and subscribed again", func() error {
		for _, f := range r.followers {
			if st := f.stats(); st.resets == 0 {
				return fmt.Errorf("%s has not been closed with 4010", f.name)
			}
			if err := f.following(); err != nil {
				return err
			}
		}
		return nil
	}))
}

// streamLeader is the NATS server leading the stream now.
func (r *run) streamLeader(ctx context.Context, t *testing.T) *member {
	t.Helper()
	name, err := r.reader.leader(ctx)
	must(t, err)
	m, err := r.c.natsByName(name)
	must(t, err)
	t.Logf("stream leader: %s", name)
	return m
}

// busiestNATS is the NATS server with the most edges connected to it (the
// stream leader if it is one of them), and those edges.
func (r *run) busiestNATS(ctx context.Context, t *testing.T) (*member, []string) {
	t.Helper()
	leader, err := r.reader.leader(ctx)
	must(t, err)
	clients, err := r.c.natsClients(ctx)
	must(t, err)
	edges := map[string][]string{}
	best := leader
	for server, names := range clients {
		for _, n := range names {
			if e, ok := strings.CutPrefix(n, "roomcast "); ok {
				edges[server] = append(edges[server], e)
			}
		}
	}
	for server := range clients {
		if len(edges[server]) > len(edges[best]) {
			best = server
		}
	}
	t.Logf("edges by NATS server: %v; stream leader %s; stopping %s", edges, leader, best)
	m, err := r.c.natsByName(best)
	must(t, err)
	return m, edges[best]
}

// healthy waits until the stream has a leader and both other replicas
// current.
func (r *run) healthy(ctx context.Context, t *testing.T) {
	t.Helper()
	began := time.Now()
	must(t, waitUntil(ctx, 90*time.Second, "stream healthy", func() error { return r.reader.healthy(ctx) }))
	t.Logf("stream healthy %v later", time.Since(began).Round(time.Millisecond))
}

// edgeMetrics reads the counters of edge i that say how it caught up.
func edgeMetrics(ctx context.Context, c *cluster, i int) map[string]float64 {
	return readMetrics(ctx, c, i, "roomcast_live_gaps_total", "roomcast_backfilled_events_total",
		"roomcast_nats_reconnects_total", "roomcast_replayed_events_total")
}

// readMetrics reads the unlabelled (but for server) series names of edge
// i's /metrics; those it cannot read are missing.
func readMetrics(ctx context.Context, c *cluster, i int, names ...string) map[string]float64 {
	out := map[string]float64{}
	_, body, err := get(ctx, c.adminURL(i)+"/metrics")
	if err != nil {
		return out
	}
	for line := range strings.SplitSeq(body, "\n") {
		for _, name := range names {
			// name{server="edge-2"} 12
			if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, " ")) {
				fields := strings.Fields(rest)
				out[name], _ = strconv.ParseFloat(fields[len(fields)-1], 64)
			}
		}
	}
	return out
}

// edgeMetrics reads every edge's counters.
func (r *run) edgeMetrics(ctx context.Context) [3]map[string]float64 {
	var out [3]map[string]float64
	for i := range 3 {
		out[i] = edgeMetrics(ctx, r.c, i)
	}
	return out
}

// logEdges logs how each edge's counters moved since before.
func (r *run) logEdges(ctx context.Context, t *testing.T, before [3]map[string]float64) {
	after := r.edgeMetrics(ctx)
	for i := range 3 {
		t.Logf("edge-%d: %s", i, metricsDelta(before[i], after[i]))
	}
}

// metricsDelta says how each counter moved.
func metricsDelta(before, after map[string]float64) string {
	var parts []string
	for _, name := range []string{"roomcast_live_gaps_total", "roomcast_backfilled_events_total", "roomcast_nats_reconnects_total"} {
		parts = append(parts, fmt.Sprintf("%s +%g", strings.TrimPrefix(name, "roomcast_"), after[name]-before[name]))
	}
	return strings.Join(parts, ", ")
}
