package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/cluster"
	"github.com/roomcast/roomcast/internal/connz"
	"github.com/roomcast/roomcast/internal/natstest"
)

// interval is the tests' status interval: short, so expiry takes a
// fraction of a second, long enough for a busy machine to keep up.
const interval = 100 * time.Millisecond

const prefix = "roomcast"

// start joins a node named name with conns connections to the cluster
// over nc; Close on cleanup.
func start(t *testing.T, nc *nats.Conn, name string, conns int) *cluster.Node {
	t.Helper()
	n, err := cluster.Start(cluster.Options{
		Conn: nc, Prefix: prefix, Name: name, Interval: interval,
		Local: func() cluster.Status { return cluster.Status{Ready: true, Connections: conns} },
		Slowest: func(k int) []connz.Conn {
			return []connz.Conn{{ID: 1, Remote: "127.0.0.1:1", User: name, Lag: conns}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return n
}

// names are the names of the nodes n knows, in its order.
func names(n *cluster.Node) string {
	var out []string
	for _, st := range n.Peers() {
		out = append(out, st.Name)
	}
	return strings.Join(out, ",")
}

// Three nodes, each connected to a different server of a NATS cluster,
// see each other with their figures, sorted by name.
func TestNodesSeeEachOtherAcrossACluster(t *testing.T) {
	c := natstest.RunClusterWith(t, 3, nil)
	var nodes []*cluster.Node
	for i, s := range c.Servers {
		nodes = append(nodes, start(t, natstest.Connect(t, s.ClientURL()), fmt.Sprintf("edge-%d", i), 10*(i+1)))
	}
	for _, n := range nodes {
		natstest.WaitFor(t, 10*time.Second, func() error {
			if got := names(n); got != "edge-0,edge-1,edge-2" {
				return fmt.Errorf("node %s knows %q", n.ID(), got)
			}
			return nil
		})
		for i, st := range n.Peers() {
			if st.Connections != 10*(i+1) || !st.Ready || st.ID != nodes[i].ID() || st.At.IsZero() {
				t.Fatalf("node %s sees %+v as %s", n.ID(), st, st.Name)
			}
		}
	}
}

// A node that stops is forgotten by the others after Expiry intervals;
// the others stay.
func TestStoppedNodeIsForgotten(t *testing.T) {
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	a := start(t, nc, "a", 1)
	start(t, nc, "b", 2)
	c := start(t, natstest.Connect(t, ns.ClientURL()), "c", 3)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := names(a); got != "a,b,c" {
			return fmt.Errorf("a knows %q", got)
		}
		return nil
	})
	c.Close()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := names(a); got != "a,b" {
			return fmt.Errorf("a knows %q after c stopped", got)
		}
		return nil
	})
	// The others keep hearing from b: it stays past several expiries.
	deadline := time.Now().Add(2 * cluster.Expiry * interval)
	for time.Now().Before(deadline) {
		if got := names(a); got != "a,b" {
			t.Fatalf("a knows %q, want a,b", got)
		}
		time.Sleep(interval / 2)
	}
}

// Malformed statuses are refused: they add no node and change none, even
// one that names a known node's id.
func TestMalformedStatusIsRefused(t *testing.T) {
	ns := natstest.RunServer(t)
	nc := natstest.Connect(t, ns.ClientURL())
	a := start(t, nc, "a", 1)
	b := start(t, natstest.Connect(t, ns.ClientURL()), "b", 2)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := names(a); got != "a,b" {
			return fmt.Errorf("a knows %q", got)
		}
		return nil
	})
	b.Close() // b's own statuses must not mend what the forgeries break

	forger := natstest.Connect(t, ns.ClientURL())
	huge := fmt.Sprintf(`{"id":"huge","name":"huge","connections":1,"reason":%q}`, strings.Repeat("x", 5000))
	for _, bad := range []string{
		`not json`,
		`{"name":"noid","connections":1}`,
		`{"id":"neg","name":"neg","connections":-1}`,
		`{"id":"negrooms","name":"negrooms","rooms":-1}`,
		`{"id":"neglag","name":"neglag","lagging":-1}`,
		`{"id":"negrate","name":"negrate","events_per_second":-1}`,
		`{"id":"negshed","name":"negshed","shed":-1}`,
		`{"id":"` + b.ID() + `","name":"b","connections":-5}`,
		`{"id":"` + b.ID() + `","name":"b","connections":"many"}`,
		huge,
	} {
		if err := forger.Publish(prefix+".cluster.status", []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	// A good status after them: once a has it, it has handled them all
	// (one subscription handles its messages in order).
	good, _ := json.Marshal(cluster.Status{ID: "sentinel", Name: "sentinel", Connections: 7})
	if err := forger.Publish(prefix+".cluster.status", good); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := names(a); got != "a,b,sentinel" {
			return fmt.Errorf("a knows %q, want a,b,sentinel", got)
		}
		return nil
	})
	for _, st := range a.Peers() {
		if st.Name == "b" && (st.Connections != 2 || st.ID != b.ID()) {
			t.Fatalf("b's entry was changed by a forgery: %+v", st)
		}
	}
}

// A summary request whose reply subject is outside the cluster's reply
// prefix gets no answer: a request cannot make a node publish anywhere
// else. One inside it is answered.
func TestSummaryRepliesOnlyInsideThePrefix(t *testing.T) {
	ns := natstest.RunServer(t)
	start(t, natstest.Connect(t, ns.ClientURL()), "a", 1)
	nc := natstest.Connect(t, ns.ClientURL())
	outside, err := nc.SubscribeSync(">")
	if err != nil {
		t.Fatal(err)
	}
	for _, reply := range []string{"_INBOX.x", "roomcast.live.pool.p1", "roomcast.cluster.status", "roomcast.cluster.replyx"} {
		if err := nc.PublishRequest(prefix+".cluster.summary", reply, nil); err != nil {
			t.Fatal(err)
		}
	}
	const good = prefix + ".cluster.reply.test"
	if err := nc.PublishRequest(prefix+".cluster.summary", good, nil); err != nil {
		t.Fatal(err)
	}
	// Everything the node publishes reaches ">" in order: by the answer
	// to the good request, any answer to the others would have come.
	var answered bool
	deadline := time.Now().Add(10 * time.Second) // statuses keep NextMsg from timing out
	for !answered {
		if time.Now().After(deadline) {
			t.Fatalf("no answer on %s within 10 s", good)
		}
		m, err := outside.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("no answer on %s: %v", good, err)
		}
		switch m.Subject {
		case prefix + ".cluster.summary":
			// our own requests
		case prefix + ".cluster.status":
			if m.Reply != "" || !strings.Contains(string(m.Data), `"name":"a"`) {
				t.Fatalf("a message on the status subject that is no status: %s", m.Data)
			}
		case good:
			var s cluster.Summary
			if err := json.Unmarshal(m.Data, &s); err != nil || s.Name != "a" || len(s.Slowest) != 1 {
				t.Fatalf("answer %s: %v", m.Data, err)
			}
			answered = true
		default:
			t.Fatalf("the node published on %s (%s)", m.Subject, m.Data)
		}
	}
}

// Gather returns as soon as every known node has answered, long before
// its wait; when one never answers, it waits out the wait and returns the
// others'.
func TestGatherReturnsEarlyAndWithWhatCame(t *testing.T) {
	ns := natstest.RunServer(t)
	a := start(t, natstest.Connect(t, ns.ClientURL()), "a", 1)
	start(t, natstest.Connect(t, ns.ClientURL()), "b", 2)
	start(t, natstest.Connect(t, ns.ClientURL()), "c", 3)
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := names(a); got != "a,b,c" {
			return fmt.Errorf("a knows %q", got)
		}
		return nil
	})
	const long = 20 * time.Second
	began := time.Now()
	got, err := a.Gather(context.Background(), long)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took >= long/2 {
		t.Fatalf("Gather with every node answering took %s of its %s", took, long)
	}
	if s := summaryNames(got); s != "a,b,c" {
		t.Fatalf("gathered %s", s)
	}
	for i, s := range got {
		if s.Connections != i+1 || len(s.Slowest) != 1 || s.Slowest[0].User != s.Name {
			t.Fatalf("summary %+v", s)
		}
	}

	// A silent node: it publishes statuses (so a knows it) but never
	// answers a summary request, as a node stuck in a long pause would.
	silent := natstest.Connect(t, ns.ClientURL())
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	beat, _ := json.Marshal(cluster.Status{ID: "silent", Name: "silent", Ready: true})
	go func() { // owned by this test: stop ends it
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			_ = silent.Publish(prefix+".cluster.status", beat)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := names(a); got != "a,b,c,silent" {
			return fmt.Errorf("a knows %q", got)
		}
		return nil
	})
	const wait = 300 * time.Millisecond
	began = time.Now()
	got, err = a.Gather(context.Background(), wait)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < wait {
		t.Fatalf("Gather returned after %s, before its wait of %s, without the silent node", took, wait)
	}
	if s := summaryNames(got); s != "a,b,c" {
		t.Fatalf("gathered %s without the silent node", s)
	}
}

func summaryNames(ss []cluster.Summary) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return strings.Join(out, ",")
}
