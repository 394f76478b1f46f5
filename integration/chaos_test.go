package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/roomcast/roomcast/internal/testartifact"
)

// The load of every scenario: a publisher storing rate events a second in
// turn to rooms rooms, and followers following half the rooms each, two
// starting on each edge, so every room has members on every edge.
const (
	rate      = 100
	roomCount = 12
	followers = 6
)

// TestCluster runs the scenarios of issue 12 on one deployment of three
// NATS servers and three edges in containers: the ones that leave the
// cluster whole first, then the cluster restart, then the wiped store.
// Each scenario publishes to rooms of its own and checks, for every
// follower and room, that what the follower received is what the stream
// holds from the follower's start: no gap, no duplicate, in order. The
// report at the end (go test -v) says what each scenario published,
// delivered and resumed.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the cluster of containers and its failures take minutes")
	}
	edgeImage := requireImage(t)
	natsImage := requireNATSImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	began := time.Now()
	h := &harness{c: newCluster(ctx, t, edgeImage, natsImage)}
	var err error
	if h.nc, err = workerConn(h.c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.nc.Close)
	if h.js, err = jetstream.New(h.nc); err != nil {
		t.Fatal(err)
	}
	if h.reader, err = newStreamReader(h.c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.reader.Close)
	t.Logf("3 NATS servers and 3 edges ready in %v", time.Since(began).Round(time.Millisecond))

	var rows []*reportRow
	defer func() {
		// Kept as an artifact too, which .ci/run prints: t.Log shows
		// only with -v or on failure.
		rep := report(rows)
		t.Log(rep)
		testartifact.Write(t, "integration-report.txt", []byte(rep))
	}()
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			t.Fatalf("out of time before scenario %s", sc.name)
		}
		row := &reportRow{name: sc.name}
		rows = append(rows, row)
		t.Run(sc.name, func(t *testing.T) {
			row.ran = true
			h.run(ctx, t, sc, row)
		})
	}
}

// harness is the cluster and the test's own NATS clients: the publisher's
// connection and the stream reader.
type harness struct {
	c      *cluster
	nc     *nats.Conn
	js     jetstream.JetStream
	reader *streamReader
}

// scenario is one failure under load.
type scenario struct {
	name string
	// fault does the damage while the publisher and followers run, and
	// returns once the cluster is whole again.
	fault func(ctx context.Context, t *testing.T, r *run)
	// after is how many events are published once the fault is over,
	// before publishing stops.
	after int
	// reset: the stream is recreated (the store wiped). Followers are
	// checked from their subscribe after the 4010, the publisher's acks
	// from the new stream's first sequence.
	reset bool
	// followers started, round robin over the edges; 0: followers.
	followers int
}

// run is one scenario in progress.
type run struct {
	*harness
	pub       *publisher
	followers []*follower
	rooms     []string
	minSeq    uint64 // the first sequence of the stream the checks read (after a reset)
}

// stored waits until n more events are stored, failing the test if they
// are not within a minute.
func (r *run) stored(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	if err := r.pub.waitStored(ctx, time.Minute, n); err != nil {
		t.Fatal(err)
	}
}

// on returns the followers connected to edge i now.
func (r *run) on(i int) []*follower {
	var out []*follower
	for _, f := range r.followers {
		if f.edgeNow() == i {
			out = append(out, f)
		}
	}
	return out
}

// addFollower starts one more follower, of every room, checked with the
// others.
func (r *run) addFollower(ctx context.Context, t *testing.T, name string, first int, fromStart bool) *follower {
	f := startFollower(ctx, r.c, name, r.rooms, first, fromStart)
	t.Cleanup(f.Stop)
	r.followers = append(r.followers, f)
	return f
}

// allFollowing waits until every follower is subscribed to all its rooms.
func (r *run) allFollowing(ctx context.Context, t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := waitUntil(ctx, timeout, "every follower subscribed", r.following); err != nil {
		t.Fatal(err)
	}
}

// following reports whether every follower is subscribed to all its
// rooms, or why not.
func (r *run) following() error {
	for _, f := range r.followers {
		if err := f.following(); err != nil {
			return err
		}
	}
	return nil
}

// run runs one scenario and fills its line of the report.
func (h *harness) run(ctx context.Context, t *testing.T, sc scenario, row *reportRow) {
	began := time.Now()
	r := &run{harness: h}
	defer func() {
		row.took, row.failed = time.Since(began), t.Failed()
		r.count(row)
	}()
	if err := h.c.heal(ctx, h.reader); err != nil {
		t.Fatalf("the cluster is not whole before the scenario: %v", err)
	}

	for i := range roomCount {
		r.rooms = append(r.rooms, fmt.Sprintf("pool:s%s-r%02d", sc.name[:1], i))
	}
	n := sc.followers
	if n == 0 {
		n = followers
	}
	for j := range n {
		var rooms []string
		for i, room := range r.rooms {
			if (i+j)%2 == 0 {
				rooms = append(rooms, room)
			}
		}
		f := startFollower(ctx, h.c, fmt.Sprintf("follower-%d", j), rooms, j%3, false)
		t.Cleanup(f.Stop)
		r.followers = append(r.followers, f)
	}
	r.allFollowing(ctx, t, 30*time.Second)
	r.pub = startPublisher(ctx, h.js, r.rooms, rate)
	t.Cleanup(func() { _ = r.pub.Stop() })
	r.stored(ctx, t, rate) // a second of events before the fault

	sc.fault(ctx, t, r)
	if sc.after > 0 {
		r.stored(ctx, t, sc.after)
	}
	if err := r.pub.Stop(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	h.check(ctx, t, r, sc)
}

// check reads the stream's truth, waits for the followers to receive it,
// and compares.
func (h *harness) check(ctx context.Context, t *testing.T, r *run, sc scenario) {
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	truth, err := h.reader.rooms(rctx, r.rooms)
	cancel()
	if err != nil {
		t.Fatalf("read the stream: %v", err)
	}
	var problems []string
	for _, room := range r.rooms {
		problems = append(problems, r.pub.checkStored(room, truth[room], r.minSeq, !sc.reset)...)
	}
	caughtUp := waitUntil(ctx, time.Minute, "followers received every event", func() error {
		var errs []error
		for _, f := range r.followers {
			errs = append(errs, f.caughtUp(truth))
		}
		return errors.Join(errs...)
	})
	if caughtUp != nil {
		problems = append(problems, caughtUp.Error())
	}
	for _, f := range r.followers {
		f.Stop()
		problems = append(problems, f.check(truth)...)
		if st := f.stats(); !sc.reset && st.resets > 0 {
			problems = append(problems, fmt.Sprintf("%s: closed %d times with 4010 without a reset", f.name, st.resets))
		}
	}
	for i, p := range problems {
		if i == 30 {
			t.Errorf("... and %d more problems", len(problems)-i)
			break
		}
		t.Error(p)
	}
}

// count adds up the scenario's publisher and followers into its row.
func (r *run) count(row *reportRow) {
	if r.pub != nil {
		row.published, row.retries, row.duplicates = r.pub.counts()
	}
	for _, f := range r.followers {
		st := f.stats()
		row.delivered += st.received
		row.resumes += st.resumes
		row.replayed += st.replayed
		row.reconnects += st.conns - 1
		row.resets += st.resets
		row.rebalanced += st.rebalanced
	}
}

// reportRow is a scenario's line of the report.
type reportRow struct {
	name                           string
	published, retries, duplicates int
	delivered, resumes, replayed   int
	reconnects, resets, rebalanced int
	took                           time.Duration
	ran, failed                    bool
}

// report is the table TestCluster logs at the end.
func report(rows []*reportRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "report: %d events/s to %d rooms; %d followers of %d rooms each, 2 starting on each edge (6: and one of every room from its first event; 9: %d followers)\n",
		rate, roomCount, followers, roomCount/2, scaleOutFollowers)
	fmt.Fprintf(&b, "%-22s %9s %8s %5s %9s %7s %8s %10s %5s %5s %7s  %s\n",
		"scenario", "published", "retried", "dups", "delivered", "resumes", "replayed", "reconnects", "4010s", "4012s", "time", "result")
	for _, r := range rows {
		if !r.ran {
			continue // not selected by -run
		}
		result := "ok"
		if r.failed {
			result = "FAILED"
		}
		fmt.Fprintf(&b, "%-22s %9d %8d %5d %9d %7d %8d %10d %5d %5d %7s  %s\n", r.name, r.published, r.retries, r.duplicates,
			r.delivered, r.resumes, r.replayed, r.reconnects, r.resets, r.rebalanced, r.took.Round(100*time.Millisecond), result)
	}
	return b.String()
}
