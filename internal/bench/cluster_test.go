package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/servertest"
)

func TestClusterLayout(t *testing.T) {
	l := NewClusterLayout(95_000)
	if l.Rooms() != 7005 || l.All() != 7005 || l.Members(0) != 5000 || l.Members(4) != 5000 || l.Members(5) != 10 || l.Members(l.All()) != 95_000 {
		t.Fatalf("layout %+v: %d rooms, members %d, %d, %d; want 7005 rooms, 5 of 5000 and 7000 of 10",
			l, l.Rooms(), l.Members(0), l.Members(5), l.Members(l.All()))
	}
	for _, conns := range []int{5, 30, 401, 95_000} {
		l := NewClusterLayout(conns)
		counts := make([]int, l.Rooms())
		for g := range conns {
			counts[l.Room(g)]++
		}
		total := 0
		for i, n := range counts {
			if n != l.Members(i) {
				t.Errorf("%d connections: room %d has %d members, Members says %d", conns, i, n, l.Members(i))
			}
			total += n
		}
		if total != conns {
			t.Errorf("%d connections: %d in the rooms", conns, total)
		}
	}
	// A small room's members are consecutive connections: on 5 generators
	// (and so 5 edges) each holds two of them.
	onGen := map[int]int{}
	for g := range 95_000 {
		if l.Room(g) == 6 {
			onGen[g%5]++
		}
	}
	if len(onGen) != 5 {
		t.Errorf("room 6 on generators %v, want all 5", onGen)
	}
	if share(95_000, 0, 5) != 19_000 || share(7, 0, 2) != 4 || share(7, 1, 2) != 3 {
		t.Errorf("shares: %d, %d, %d", share(95_000, 0, 5), share(7, 0, 2), share(7, 1, 2))
	}
}

// TestPublishOrder: every room once a round, the big rooms spread evenly.
func TestPublishOrder(t *testing.T) {
	for _, conns := range []int{5, 30, 401, 95_000} {
		l := NewClusterLayout(conns)
		order := l.PublishOrder()
		if !slices.Equal(slices.Sorted(slices.Values(order)), seqInts(l.Rooms())) {
			t.Fatalf("%d connections: order %v is not a permutation of the %d rooms", conns, order, l.Rooms())
		}
	}
	order := NewClusterLayout(95_000).PublishOrder()
	for big := range 5 {
		if at := slices.Index(order, big); at != big*1401 {
			t.Errorf("big room %d at %d of the round, want %d (evenly spread)", big, at, big*1401)
		}
	}
}

// seqInts is 0, 1, ..., n-1.
func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestHistogramOverTheWire(t *testing.T) {
	var a, b histogram
	for i := range int64(1000) {
		a.record(i * int64(time.Microsecond))
		b.record(i * int64(time.Millisecond))
	}
	var direct, wired mergedHistogram
	direct.add(&a)
	direct.add(&b)
	for _, h := range []*histogram{&a, &b} {
		var one mergedHistogram
		one.add(h)
		js, err := json.Marshal(toWire(&one))
		if err != nil {
			t.Fatal(err)
		}
		var w wireHist
		if err := json.Unmarshal(js, &w); err != nil {
			t.Fatal(err)
		}
		if err := wired.addWire(w); err != nil {
			t.Fatal(err)
		}
	}
	if direct.latency() != wired.latency() {
		t.Errorf("merged over the wire %+v, directly %+v", wired.latency(), direct.latency())
	}
	if err := wired.addWire(wireHist{Buckets: [][2]uint64{{numBuckets, 1}}}); err == nil {
		t.Error("a bucket out of range was taken")
	}
}

// genPipe is a generator run in this process, driven over pipes.
type genPipe struct {
	in    *io.PipeWriter
	lines *bufio.Scanner
	done  chan error
}

func startGenPipe(ctx context.Context, t *testing.T, setup GeneratorSetup) *genPipe {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	g := &genPipe{in: inW, lines: bufio.NewScanner(outR), done: make(chan error, 1)}
	g.lines.Buffer(nil, maxGeneratorLine)
	go func() {
		err := RunGenerator(ctx, inR, outW)
		_ = outW.CloseWithError(io.EOF)
		g.done <- err
	}()
	t.Cleanup(func() {
		_ = inW.Close()
		if err := <-g.done; err != nil {
			t.Errorf("generator: %v", err)
		}
	})
	g.next(t, genStarted) // the pipes hold nothing: read before writing
	g.send(t, setup)
	return g
}

func (g *genPipe) send(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := g.in.Write(append(b, '\n')); err != nil {
		t.Fatal(err)
	}
}

func (g *genPipe) next(t *testing.T, want string) generatorReply {
	t.Helper()
	for g.lines.Scan() {
		var r generatorReply
		if err := json.Unmarshal(g.lines.Bytes(), &r); err != nil {
			t.Fatalf("reply %q: %v", g.lines.Text(), err)
		}
		if r.Gen == genStarted && want != genStarted {
			continue
		}
		if r.Gen != want {
			t.Fatalf("reply %+v, want %s", r, want)
		}
		return r
	}
	t.Fatalf("no %s reply: %v", want, g.lines.Err())
	return generatorReply{}
}

// Two generators in this process share 30 connections to an edge, each
// following its room and the shared one; two steps of events to every
// room arrive whole, the second counted from zero again.
func TestGeneratorsCountSteps(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv := startNode(t)
	layout := NewClusterLayout(30)
	var gens []*genPipe
	for k := range 2 {
		gens = append(gens, startGenPipe(ctx, t, GeneratorSetup{Protocol: ProtocolRoomcast, URL: servertest.WSURL(srv),
			Index: k, Generators: 2, Layout: layout}))
	}
	subscribed := 0
	for _, g := range gens {
		subscribed += g.next(t, genReady).Subscribed
	}
	if subscribed != 30 {
		t.Fatalf("%d subscribed, want 30", subscribed)
	}
	rooms := layout.Rooms() + 1 // the shared room too
	for step := range 2 {
		for _, g := range gens {
			g.send(t, generatorCommand{Cmd: "begin"})
			g.next(t, genBegun)
		}
		cfg := Config{NATSURL: srv.NATSURL(), Rooms: rooms, Rate: float64(3 * rooms), Duration: time.Second}.withDefaults()
		p, err := newPublisher(&cfg, &tally{})
		if err != nil {
			t.Fatal(err)
		}
		res := p.run(ctx)
		p.close()
		var got GeneratorReport
		for _, g := range gens {
			g.send(t, generatorCommand{Cmd: "end", Acked: res.acked, Grace: 20 * time.Second})
			r := g.next(t, genReport).Report
			got.Expected += r.Expected
			got.Received += r.Received
			got.Lost += r.Lost + r.Gaps + r.OutOfOrder + r.Unexpected + int64(r.Dropped)
			got.Latency.N += r.Latency.N
		}
		// 3 events to each room: 3 to each connection's own, 3 to the shared.
		if got.Expected != 3*2*30 || got.Received != got.Expected || got.Lost != 0 || got.Latency.N != uint64(got.Received) {
			t.Errorf("step %d: %+v, want 180 expected and received, none lost or out of order", step, got)
		}
	}
}
