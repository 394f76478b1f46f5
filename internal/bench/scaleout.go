package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// The scale-out scenario (issue 20): every client on one edge, then more
// edges start, and the edges rebalance themselves by closing connections
// with 4012, which the clients answer by reconnecting at once to an edge
// picked at random and resuming. It measures how long until every edge
// holds its share, how fast the clients reconnect meanwhile, and whether
// any client lost or received twice an event published during the move.

// Defaults of ScaleOutConfig.
const (
	DefaultScaleOutEdges     = 3
	DefaultScaleOutTolerance = 0.2
	DefaultScaleOutQuiet     = 5 * time.Second
	DefaultScaleOutTimeout   = 10 * time.Minute
)

// scaleOutSample is how often the scenario counts the clients on each edge.
const scaleOutSample = 100 * time.Millisecond

// ScaleOutConfig is what the scale-out measurement does.
type ScaleOutConfig struct {
	URL     string // the first edge's WebSocket URL, where every client connects first
	NATSURL string // where the events are published
	Prefix  string // NATS subject prefix, bus.DefaultPrefix when empty
	// AddEdge starts one more edge on the same NATS and returns it once it
	// listens; called Edges-1 times, one after the other.
	AddEdge func(ctx context.Context) (Edge, error)

	Conns     int
	Rooms     int     // client i follows room i mod Rooms
	Rate      float64 // events a second published over the rooms during the move
	Edges     int     // edges at the end (the first included); default 3
	Tolerance float64 // how far from its share an edge may be and count as balanced; default 0.2
	// Quiet is how long without a reconnect, once balanced, ends the
	// measurement: the rebalancing is over. Default 5s.
	Quiet time.Duration
	// Timeout bounds the connecting, the balancing and the wait for the
	// last deliveries, each. Default 10 minutes.
	Timeout time.Duration

	Logger *slog.Logger
}

// ScaleOutReport is the outcome of the scale-out measurement.
type ScaleOutReport struct {
	Conns     int     `json:"connections"`
	Edges     int     `json:"edges"`
	Tolerance float64 `json:"tolerance"`
	// BalancedSeconds is the time from the last new edge listening until
	// every edge first held its share within the tolerance (0: never, see
	// Problem); SettledSeconds until the last reconnect before Quiet.
	BalancedSeconds float64 `json:"balanced_seconds"`
	SettledSeconds  float64 `json:"settled_seconds"`
	// Reconnects are the clients' connections after their first, over the
	// whole move; the peak is the most within one second, the average over
	// the time from the new edges' start to the last reconnect.
	Reconnects        int64            `json:"reconnects"`
	ReconnectsPeak    float64          `json:"reconnects_per_second_peak"`
	ReconnectsAverage float64          `json:"reconnects_per_second_average"`
	Closes            map[string]int64 `json:"closes"` // connections ended, by close code ("none": no close frame)
	DialFailures      int64            `json:"dial_failures"`
	Refused           int64            `json:"subscribes_refused"`
	Final             []int            `json:"final"` // clients subscribed on each edge at the end
	Published         int64            `json:"published"`
	Expected          int64            `json:"deliveries_expected"`
	Delivered         int64            `json:"delivered"`
	Lost              int64            `json:"lost"`
	Repeated          int64            `json:"repeated"`
	Unrecovered       int64            `json:"unrecovered"`
	Problem           string           `json:"problem,omitempty"`
}

// scaleOut is one RunScaleOut's shared state: the edges clients may
// connect to and the counters the movers add to.
type scaleOut struct {
	urls atomic.Pointer[[]string] // the running edges' WebSocket URLs, by index

	reconnects atomic.Int64
	dialFailed atomic.Int64
	refused    atomic.Int64

	log *slog.Logger

	mu       sync.Mutex
	closes   map[string]int64 // guarded by mu
	unclosed int              // ends without a close frame logged, guarded by mu
}

// unclosedLogged bounds the ends without a close frame that are logged
// with their error, so a failing run says why without flooding its log.
const unclosedLogged = 5

// pick is an edge at random among those running, and its URL.
func (so *scaleOut) pick() (int, string) {
	urls := *so.urls.Load()
	i := rand.IntN(len(urls))
	return i, urls[i]
}

// addURL makes one more edge one the clients may be routed to.
func (so *scaleOut) addURL(url string) {
	urls := append(append([]string(nil), *so.urls.Load()...), url)
	so.urls.Store(&urls)
}

// closed counts a connection's end.
func (so *scaleOut) closed(code ws.StatusCode, err error) {
	key := "none"
	if code != 0 {
		key = strconv.Itoa(int(code))
	}
	so.mu.Lock()
	so.closes[key]++
	logIt := code == 0 && so.unclosed < unclosedLogged
	if logIt {
		so.unclosed++
	}
	so.mu.Unlock()
	if logIt {
		so.log.Info("a connection ended without a close frame", "err", err)
	}
}

func (c *ScaleOutConfig) withDefaults() {
	if c.Timeout == 0 {
		c.Timeout = DefaultScaleOutTimeout // before preloadDefaults, whose default is shorter
	}
	preloadDefaults(&c.Prefix, &c.Timeout, &c.Logger)
	if c.Edges == 0 {
		c.Edges = DefaultScaleOutEdges
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultScaleOutTolerance
	}
	if c.Quiet == 0 {
		c.Quiet = DefaultScaleOutQuiet
	}
}

func (c *ScaleOutConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Conns < 1 || c.Conns > MaxConns {
		bad("connections: want 1 to %d, got %d", MaxConns, c.Conns)
	}
	if c.Rooms < 1 || c.Rooms > c.Conns {
		bad("rooms: want 1 to the connections (%d), got %d", c.Conns, c.Rooms)
	}
	if !(c.Rate > 0) || c.Rate > 100_000 {
		bad("rate: want events per second > 0 and at most 100000, got %v", c.Rate)
	}
	if c.Edges < 2 || c.Edges > 16 {
		bad("edges: want 2 to 16, got %d", c.Edges)
	}
	if !(c.Tolerance > 0) || c.Tolerance >= 1 {
		bad("tolerance: want a fraction of the share above 0 and below 1, got %v", c.Tolerance)
	}
	if c.AddEdge == nil {
		bad("no way to start more edges")
	}
	return errors.Join(errs...)
}

// RunScaleOut connects cfg.Conns clients to the edge at cfg.URL, publishes
// cfg.Rate events a second, starts the other edges and measures until the
// clients are spread over all of them and no longer move (see
// ScaleOutReport). It returns an error when the run cannot be set up or ctx
// ends; what the run found wrong is the report's Problem.
func RunScaleOut(ctx context.Context, cfg ScaleOutConfig) (*ScaleOutReport, error) {
	cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("scale-out settings: %w", err)
	}
	log := cfg.Logger
	pub, err := newScalePublisher(cfg)
	if err != nil {
		return nil, err
	}
	defer pub.close()

	so := &scaleOut{log: cfg.Logger, closes: map[string]int64{}}
	so.urls.Store(&[]string{cfg.URL})
	movers := make([]*mover, cfg.Conns)
	mctx, stopMovers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		stopMovers()
		wg.Wait()
	}()
	first := make(chan struct{}, DefaultDialConcurrency)
	for i := range movers {
		m := &mover{room: RoomName(i % cfg.Rooms), idx: i % cfg.Rooms, so: so}
		m.edge.Store(-1)
		movers[i] = m
		wg.Go(func() { m.run(mctx, first) })
	}
	log.Info("connecting", "connections", cfg.Conns, "rooms", cfg.Rooms, "edge", cfg.URL)
	began := time.Now()
	if err := waitFor(ctx, cfg.Timeout, func() bool { return onEdges(movers, 1)[0] == cfg.Conns }); err != nil {
		return nil, fmt.Errorf("connect the clients: %d of %d subscribed: %w", onEdges(movers, 1)[0], cfg.Conns, err)
	}
	log.Info("subscribed", "connections", cfg.Conns, "seconds", time.Since(began).Seconds())

	pub.start(ctx)
	if err := waitFor(ctx, cfg.Timeout, func() bool { return delivered(movers) > 0 }); err != nil {
		return nil, fmt.Errorf("first events: %w", err)
	}
	rep := &ScaleOutReport{Conns: cfg.Conns, Edges: cfg.Edges, Tolerance: cfg.Tolerance}
	for range cfg.Edges - 1 {
		e, err := cfg.AddEdge(ctx)
		if err != nil {
			return nil, err
		}
		so.addURL(e.WSURL)
		log.Info("edge added", "url", e.WSURL)
	}
	measureBalance(ctx, cfg, movers, so, rep)

	published, acked := pub.stop()
	rep.Published = published
	log.Info("published", "events", published, "waiting for", "the last deliveries")
	_ = waitFor(ctx, cfg.Timeout, func() bool { return missing(movers, acked) == 0 })
	stopMovers()
	wg.Wait()
	summarizeScaleOut(rep, movers, acked, so)
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// measureBalance samples the clients on each edge until they are balanced
// and have been quiet for cfg.Quiet, or cfg.Timeout passes, and fills the
// report's times and reconnect rates.
func measureBalance(ctx context.Context, cfg ScaleOutConfig, movers []*mover, so *scaleOut, rep *ScaleOutReport) {
	start := time.Now()
	share := float64(cfg.Conns) / float64(cfg.Edges)
	lo, hi := share*(1-cfg.Tolerance), share*(1+cfg.Tolerance)
	// The reconnects at the last samples: the peak is over the second
	// between the oldest and the newest, timed, since ticks may come late.
	type mark struct {
		at time.Time
		n  int64
	}
	window := make([]mark, int(time.Second/scaleOutSample)+1)
	var lastMove time.Time
	last := so.reconnects.Load()
	tick := time.NewTicker(scaleOutSample)
	defer tick.Stop()
	for n := 0; ; n++ {
		now := time.Now()
		r := so.reconnects.Load()
		if r != last {
			last, lastMove = r, now
		}
		window[n%len(window)] = mark{now, r}
		if old := window[(n+1)%len(window)]; n >= len(window)-1 {
			rep.ReconnectsPeak = max(rep.ReconnectsPeak, float64(r-old.n)/max(now.Sub(old.at).Seconds(), 1))
		}
		counts := onEdges(movers, cfg.Edges)
		if rep.BalancedSeconds == 0 && within(counts, lo, hi) {
			rep.BalancedSeconds = now.Sub(start).Seconds()
			cfg.Logger.Info("balanced", "seconds", rep.BalancedSeconds, "edges", counts)
		}
		still := lastMove // since when no client moved
		if still.IsZero() {
			still = start
		}
		if rep.BalancedSeconds > 0 && now.Sub(still) > cfg.Quiet || now.Sub(start) > cfg.Timeout || ctx.Err() != nil {
			rep.Final = counts
			break
		}
		if n%10 == 0 {
			cfg.Logger.Info("moving", "edges", counts, "reconnects", r)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	rep.Reconnects = last
	if !lastMove.IsZero() {
		rep.SettledSeconds = lastMove.Sub(start).Seconds()
		rep.ReconnectsAverage = float64(last) / max(rep.SettledSeconds, scaleOutSample.Seconds())
	}
}

// onEdges counts the clients subscribed on each of the first n edges.
func onEdges(movers []*mover, n int) []int {
	counts := make([]int, n)
	for _, m := range movers {
		if e := int(m.edge.Load()); e >= 0 && e < n {
			counts[e]++
		}
	}
	return counts
}

// within reports whether every count is within [lo, hi].
func within(counts []int, lo, hi float64) bool {
	for _, c := range counts {
		if float64(c) < lo || float64(c) > hi {
			return false
		}
	}
	return true
}

// delivered is the events the clients received so far.
func delivered(movers []*mover) int64 {
	var n int64
	for _, m := range movers {
		n += int64(m.lastN.Load())
	}
	return n
}

// missing counts the clients that lack an acknowledged event of their room.
func missing(movers []*mover, acked []uint64) int {
	n := 0
	for _, m := range movers {
		if m.lastN.Load() < acked[m.idx] {
			n++
		}
	}
	return n
}

// summarizeScaleOut fills the report from the movers, which have ended.
func summarizeScaleOut(rep *ScaleOutReport, movers []*mover, acked []uint64, so *scaleOut) {
	for _, m := range movers {
		want, got := int64(acked[m.idx]), int64(m.lastN.Load())
		rep.Expected += want
		rep.Delivered += min(got, want)
		rep.Lost += max(0, want-got) + m.gaps.Load()
		rep.Repeated += m.repeats.Load()
		rep.Unrecovered += m.unrecovered.Load()
	}
	so.mu.Lock()
	rep.Closes = so.closes
	so.mu.Unlock()
	rep.DialFailures, rep.Refused = so.dialFailed.Load(), so.refused.Load()
	var problems []error
	if rep.BalancedSeconds == 0 {
		problems = append(problems, fmt.Errorf("not balanced within the timeout: %v on the edges", rep.Final))
	}
	if rep.Lost+rep.Repeated+rep.Unrecovered > 0 {
		problems = append(problems, fmt.Errorf("%d events lost, %d received twice or out of order, %d resumes not recovered", rep.Lost, rep.Repeated, rep.Unrecovered))
	}
	if err := errors.Join(problems...); err != nil {
		rep.Problem = err.Error()
	}
}

// waitFor polls cond until it holds, timeout passes or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if !time.Now().Before(deadline) {
			return fmt.Errorf("not within %s", timeout)
		}
		if !sleepUntil(ctx, time.Now().Add(scaleOutSample)) {
			return ctx.Err()
		}
	}
	return nil
}
