package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// A load generator of the cluster scenario is a child process of the bench
// (`roomcast bench-generator`), so that each holds at most 20,000 open
// files: it connects its share of the connections to one edge (or
// reference server), subscribes each to its room of the layout and to the
// room all share, and then answers the parent over a line protocol, JSON
// lines on its standard input and output:
//
//	parent: GeneratorSetup                 child: {"gen":"started"} at once, {"gen":"ready",...} once subscribed
//	parent: {"cmd":"begin"}                child: {"gen":"begun"} (a step's counts start from zero)
//	parent: {"cmd":"end","acked":[...]}    child: {"gen":"report","report":{...}} (after the deliveries, or the grace)
//
// The end of its standard input closes the connections and ends it. It
// writes nothing else on its standard output or error: both reach the
// parent through one pipe, and a log line could cut a reply in two.

// GeneratorSetup is the first line a generator reads.
type GeneratorSetup struct {
	Protocol        string        `json:"protocol"` // ProtocolRoomcast or ProtocolNATS
	URL             string        `json:"url"`      // the edge, or reference server, every connection goes to
	Index           int           `json:"index"`    // this generator's; it holds connections Index, Index+Generators, ...
	Generators      int           `json:"generators"`
	Layout          ClusterLayout `json:"layout"`
	DialConcurrency int           `json:"dial_concurrency,omitempty"`
	DialTimeout     time.Duration `json:"dial_timeout,omitempty"`
}

// generatorCommand is a line the parent sends after the setup.
type generatorCommand struct {
	Cmd string `json:"cmd"` // begin or end
	// Acked is, at the end of a step, the events acknowledged per room
	// index, All's included (0 for rooms not published to).
	Acked []int64       `json:"acked,omitempty"`
	Grace time.Duration `json:"grace,omitempty"` // the most to wait for deliveries
}

// Replies of a generator.
const (
	genStarted = "started"
	genReady   = "ready"
	genBegun   = "begun"
	genReport  = "report"
)

// generatorReply is a line a generator writes.
type generatorReply struct {
	Gen        string           `json:"gen"`
	Subscribed int              `json:"subscribed,omitempty"`
	Failed     int              `json:"failed,omitempty"`
	Errors     []ErrorCount     `json:"errors,omitempty"`
	Report     *GeneratorReport `json:"report,omitempty"`
	Problem    string           `json:"problem,omitempty"` // the command could not be carried out
}

// GeneratorReport is one generator's counts of a step.
type GeneratorReport struct {
	Expected   int64    `json:"expected"`
	Received   int64    `json:"received"`
	Lost       int64    `json:"lost"`
	Gaps       int64    `json:"gaps"`
	OutOfOrder int64    `json:"out_of_order"`
	Unexpected int64    `json:"unexpected"`
	Dropped    int      `json:"dropped"`   // connections whose reader ended early
	LastRecv   int64    `json:"last_recv"` // unix ns of the last delivery
	Latency    wireHist `json:"latency"`
}

// maxGeneratorLine bounds a protocol line (the acked counts of every room).
const maxGeneratorLine = 16 << 20

// RunGenerator is a generator: it reads its setup and commands from in and
// replies on out until in ends (or ctx does).
func RunGenerator(ctx context.Context, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out) // one Write per line
	reply := func(r generatorReply) error {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("generator: reply: %w", err)
		}
		return nil
	}
	if err := reply(generatorReply{Gen: genStarted}); err != nil {
		return err
	}
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 64<<10), maxGeneratorLine)
	if !lines.Scan() {
		return fmt.Errorf("generator: no setup: %w", errors.Join(lines.Err(), io.ErrUnexpectedEOF))
	}
	var setup GeneratorSetup
	if err := json.Unmarshal(lines.Bytes(), &setup); err != nil {
		return fmt.Errorf("generator: setup: %w", err)
	}
	g, err := connectGenerator(ctx, setup)
	if err != nil {
		return err
	}
	defer g.stop()
	if err := reply(generatorReply{Gen: genReady, Subscribed: len(g.live), Failed: g.failed, Errors: g.tally.list()}); err != nil {
		return err
	}
	for lines.Scan() {
		var cmd generatorCommand
		if err := json.Unmarshal(lines.Bytes(), &cmd); err != nil {
			return fmt.Errorf("generator: command: %w", err)
		}
		var r generatorReply
		switch cmd.Cmd {
		case "begin":
			g.take()
			r.Gen = genBegun
		case "end":
			r.Gen, r.Report = genReport, g.end(ctx, cmd)
		default:
			r.Problem = fmt.Sprintf("unknown command %q", cmd.Cmd)
		}
		if err := reply(r); err != nil {
			return err
		}
	}
	return lines.Err()
}

// generator is a generator's connections.
type generator struct {
	live    []*receiver
	failed  int
	tally   *tally
	readers sync.WaitGroup
	stopRd  context.CancelFunc
}

// connectGenerator opens and subscribes the setup's share of connections.
func connectGenerator(ctx context.Context, s GeneratorSetup) (*generator, error) {
	if s.Generators < 1 || s.Index < 0 || s.Index >= s.Generators || s.Layout.Conns < 1 || s.Layout.SmallSize < 1 || s.Layout.BigSize < 1 {
		return nil, fmt.Errorf("generator: bad setup %+v", s)
	}
	cfg := Config{
		URLs: []string{s.URL}, Protocol: s.Protocol, Rooms: s.Layout.Rooms() + 1,
		Conns: share(s.Layout.Conns, s.Index, s.Generators), DialConcurrency: s.DialConcurrency, DialTimeout: s.DialTimeout,
	}.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("generator settings: %w", err)
	}
	if err := checkFiles(cfg.Conns); err != nil {
		return nil, err
	}
	g := &generator{tally: &tally{}}
	readCtx, stop := context.WithCancel(context.Background()) // ended by stop: the readers outlive a command
	g.stopRd = stop
	d := &dialer{cfg: &cfg, tally: g.tally, readers: &g.readers, readCtx: readCtx,
		roomsOf: func(j int) []int {
			return []int{s.Layout.Room(s.Index + j*s.Generators), s.Layout.All()}
		}}
	recvs := d.connectAll(ctx)
	retryFailed(ctx, d, recvs)
	for _, r := range recvs {
		if r == nil {
			g.failed++
			continue
		}
		g.live = append(g.live, r)
	}
	return g, nil
}

// maxRetried bounds the connections retried after a first pass: a few
// refused on a machine busy with 95,000 of them are tried again, one at a
// time; many mean something else is wrong.
const maxRetried = 200

// retryFailed connects again, up to 3 times each, the connections that
// failed (nil in recvs), when there are at most maxRetried.
func retryFailed(ctx context.Context, d *dialer, recvs []*receiver) {
	var failed []int
	for i, r := range recvs {
		if r == nil {
			failed = append(failed, i)
		}
	}
	if len(failed) > maxRetried {
		return
	}
	for _, i := range failed {
		for range 3 {
			if ctx.Err() != nil {
				return
			}
			if r, _, err := d.connect(ctx, i); err == nil {
				recvs[i] = r
				d.startReader(r)
				break
			}
		}
	}
}

// stop closes the connections and waits for their readers.
func (g *generator) stop() {
	g.stopRd()
	g.readers.Wait()
}

// take ends a step: it returns the step's counts of every room followed,
// and starts the next from zero.
func (g *generator) take() []*receiver {
	out := make([]*receiver, 0, 2*len(g.live))
	for _, r := range g.live {
		r.mu.Lock()
		out = append(out, r.takeLocked())
		if r.also != nil {
			out = append(out, r.also.takeLocked())
		}
		r.mu.Unlock()
	}
	return out
}

// takeLocked is take for one room of a connection, under the
// connection's lock: the counts so far, and a fresh start (the
// publisher's counter n starts from 1 again each step).
func (r *receiver) takeLocked() *receiver {
	s := &receiver{index: r.index, room: r.room, name: r.name, hist: r.hist,
		gaps: r.gaps, outOfOrder: r.outOfOrder, unexpected: r.unexpected, lastRecv: r.lastRecv, err: r.err}
	s.received.Store(r.received.Load())
	r.hist = histogram{}
	r.gaps, r.outOfOrder, r.unexpected, r.lastRecv, r.lastN = 0, 0, 0, 0, 0
	r.received.Store(0)
	return s
}

// end waits (at most the grace) until every connection has the events
// acknowledged for its rooms, then takes the step's counts.
func (g *generator) end(ctx context.Context, cmd generatorCommand) *GeneratorReport {
	acked := cmd.Acked
	rooms := make([]*receiver, 0, 2*len(g.live))
	for _, r := range g.live {
		rooms = append(rooms, r)
		if r.also != nil {
			rooms = append(rooms, r.also)
		}
	}
	for _, r := range rooms {
		if r.room >= len(acked) {
			acked = append(acked, make([]int64, r.room+1-len(acked))...)
		}
	}
	waitDeliveries(ctx, rooms, acked, cmd.Grace)
	var rep Report
	merged, last := countReceivers(&rep, g.take(), acked)
	return &GeneratorReport{
		Expected: rep.Expected, Received: rep.Received, Lost: rep.Lost, Gaps: rep.Gaps,
		OutOfOrder: rep.OutOfOrder, Unexpected: rep.Unexpected, Dropped: rep.ConnectionsDropped,
		LastRecv: last, Latency: toWire(merged),
	}
}

// wireHist is a merged histogram as a generator sends it: the non-empty
// buckets as [index, count] pairs.
type wireHist struct {
	Buckets [][2]uint64 `json:"buckets"`
	N       uint64      `json:"n"`
	Sum     float64     `json:"sum"`
	Max     int64       `json:"max"`
}

func toWire(m *mergedHistogram) wireHist {
	w := wireHist{N: m.n, Sum: m.sum, Max: m.max, Buckets: [][2]uint64{}}
	for i, c := range m.counts {
		if c > 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return w
}

// addWire adds a generator's histogram to m; bucket indexes out of range
// are an error (a generator of another build).
func (m *mergedHistogram) addWire(w wireHist) error {
	for _, b := range w.Buckets {
		if b[0] >= numBuckets {
			return fmt.Errorf("latency bucket %d out of range", b[0])
		}
		m.counts[b[0]] += b[1]
	}
	m.n += w.N
	m.sum += w.Sum
	m.max = max(m.max, w.Max)
	return nil
}
