// Package bench is the load generator behind `roomcast bench`.
//
// A run opens Conns WebSocket connections to the edges (round robin over
// URLs), subscribes connection i to room bench:r<i mod Rooms>, and then
// either
//
//   - load mode (Rate > 0): publishes Rate events per second for Duration
//     through NATS JetStream, as workers do, spread over the rooms; every
//     connection's reader records the latency of each event (its receive
//     time minus the sent_ns the publisher put in it), counts the events and
//     checks their order (seq never going backwards, the per-room counter n
//     without gaps); after the publishing and a grace period for deliveries
//     still in flight it reports deliveries expected and received, their rate,
//     latency percentiles and errors; or
//   - idle mode (Rate 0): measures, from the edge's /metrics, how much
//     resident memory each idle subscribed connection costs the edge, then
//     holds the connections for Hold.
//
// Run reports setup failures as errors and the outcome of the run in a
// Report, whose Problem says whether deliveries were lost. With Protocol
// nats, the same run goes to a nats-server's WebSocket listener (the
// reference); with ServerPID, the server's CPU and memory are read from /proc.
//
// RunScenario builds the scenarios of `roomcast bench --scenario` from runs:
// it starts roomcast, the reference and the floor (internal/floor) as child
// processes on CPUs of their own, runs each scenario's steps on each and
// summarises medians and their ratios.
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/bus"

	"github.com/nats-io/nats.go"
)

// Defaults of Config (Rate has none: zero means idle mode).
const (
	DefaultURL             = "ws://127.0.0.1:8690"
	DefaultNATSURL         = "nats://127.0.0.1:4222"
	DefaultConns           = 100
	DefaultRooms           = 10
	DefaultDuration        = 10 * time.Second
	DefaultGrace           = 5 * time.Second
	DefaultDialConcurrency = 64
	DefaultDialTimeout     = 10 * time.Second
	DefaultMaxInFlight     = 256
)

// MaxConns is the most connections one run opens: each is an open file, and
// the machines roomcast is benchmarked on allow 20,000 per process.
const MaxConns = 19000

// reservedFiles are the open files a run needs besides its connections:
// NATS, the admin scrapes, standard streams, the runtime.
const reservedFiles = 100

// maxEvents bounds the events of one run.
const maxEvents = 100_000_000

// Protocols a run's clients speak.
const (
	ProtocolRoomcast = "roomcast" // roomcast's JSON protocol; events published through JetStream
	ProtocolNATS     = "nats"     // NATS over WebSocket to a nats-server; events published with core NATS
	ProtocolFloor    = "floor"    // roomcast's protocol to a floor server; events published with core NATS to the rooms' subjects
)

// Modes of a run.
const (
	ModeLoad = "load"
	ModeIdle = "idle"
)

// Config is what a run does. Zero fields take the defaults above, except
// Rate (0: idle mode), Hold, AdminURL and Token.
type Config struct {
	URLs    []string // edge WebSocket URLs, used round robin
	NATSURL string   // where events are published (load mode)
	// NATSOptions secure the NATS connection (user, credentials, TLS),
	// as serve's --nats-* settings make them.
	NATSOptions []nats.Option
	Prefix      string // NATS subject prefix, bus.DefaultPrefix when empty
	Token       string // a JWT sent as Authorization: Bearer, when the edges require one
	AdminURL    string // admin base URL of one of the edges, for idle mode's memory measurement
	AdminToken  string // its bearer token, when the edge has --admin-token-file

	Conns    int
	Rooms    int
	Rate     float64       // events per second over all rooms; 0: idle mode
	Duration time.Duration // how long to publish
	Grace    time.Duration // how long to wait after publishing for deliveries in flight
	Hold     time.Duration // idle mode: how long to keep the connections after measuring

	DialConcurrency int           // connections being opened at once
	DialTimeout     time.Duration // to connect, upgrade and be subscribed, per connection
	MaxInFlight     int           // published events waiting for their acknowledgement

	// Protocol is ProtocolRoomcast (the default), ProtocolNATS, the
	// reference: URLs are then a nats-server's WebSocket listener and
	// NATSURL its client port, or ProtocolFloor (internal/floor: roomcast
	// clients, events published with core NATS).
	Protocol string
	// Compression has the roomcast clients offer permessage-deflate.
	Compression bool
	// TLS is the clients' TLS settings for wss:// URLs (the CA to trust,
	// the name to verify); nil: the system's roots and the URL's host.
	TLS *tls.Config
	// ServerPID, when set, is the server process measured through /proc:
	// its CPU time while publishing and delivering (load mode), or its
	// resident memory per idle connection (idle mode, instead of AdminURL).
	ServerPID int

	Logger *slog.Logger // progress; nil discards
}

// RoomName is the name of bench room i.
func RoomName(i int) string { return "bench:r" + strconv.Itoa(i) }

func (c Config) withDefaults() Config {
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
	}
	setString := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	setString(&c.NATSURL, DefaultNATSURL)
	setString(&c.Prefix, bus.DefaultPrefix)
	setString(&c.Protocol, ProtocolRoomcast)
	setInt(&c.Conns, DefaultConns)
	setInt(&c.Rooms, DefaultRooms)
	setInt(&c.DialConcurrency, DefaultDialConcurrency)
	setInt(&c.MaxInFlight, DefaultMaxInFlight)
	setDur(&c.Duration, DefaultDuration)
	setDur(&c.Grace, DefaultGrace)
	setDur(&c.DialTimeout, DefaultDialTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every problem of c (after defaults) at once.
func (c *Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, u := range c.URLs {
		if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			bad("edge URL %q: want ws:// or wss://", u)
		}
	}
	if c.Protocol != ProtocolRoomcast && c.Protocol != ProtocolNATS && c.Protocol != ProtocolFloor {
		bad("protocol: want %s, %s or %s, got %q", ProtocolRoomcast, ProtocolNATS, ProtocolFloor, c.Protocol)
	}
	if c.ServerPID < 0 {
		bad("server pid: want > 0, got %d", c.ServerPID)
	}
	if err := bus.CheckPrefix(c.Prefix); err != nil {
		bad("subject prefix: %w", err)
	}
	if c.Conns < 1 || c.Conns > MaxConns {
		bad("connections: want 1 to %d (one open file each), got %d", MaxConns, c.Conns)
	}
	if c.Rooms < 1 {
		bad("rooms: want at least 1, got %d", c.Rooms)
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		bad("rate: want events per second ≥ 0, got %v", c.Rate)
	}
	if c.Rate > 0 && c.Duration <= 0 {
		bad("duration: want > 0 with a rate, got %s", c.Duration)
	}
	if c.Rate > 0 && c.Rate*c.Duration.Seconds() > maxEvents {
		bad("rate × duration: at most %d events per run", maxEvents)
	}
	for name, d := range map[string]time.Duration{"grace": c.Grace, "hold": c.Hold, "dial timeout": c.DialTimeout} {
		if d < 0 {
			bad("%s: want ≥ 0, got %s", name, d)
		}
	}
	if c.DialConcurrency < 1 || c.MaxInFlight < 1 {
		bad("dial concurrency and in-flight publishes: want ≥ 1, got %d and %d", c.DialConcurrency, c.MaxInFlight)
	}
	return errors.Join(errs...)
}

// events is how many events load mode publishes.
func (c *Config) events() int64 {
	return max(1, int64(math.Round(c.Rate*c.Duration.Seconds())))
}

// checkFiles refuses a run the process's open-file limit cannot hold.
func checkFiles(conns int) error {
	limit, ok := openFileLimit()
	if !ok {
		return nil
	}
	if need := uint64(conns) + reservedFiles; need > limit {
		return fmt.Errorf("%d connections need about %d open files, but this process may open %d: "+
			"raise the limit (ulimit -n) or use fewer connections", conns, need, limit)
	}
	return nil
}

// Run performs one bench run. It returns an error when the run cannot start
// (bad settings, NATS or the admin endpoint unreachable) or is interrupted
// by ctx (with the report so far); otherwise the report, whose Problem says
// whether the run found deliveries lost or anything else wrong.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("bench settings: %w", err)
	}
	if err := checkFiles(cfg.Conns); err != nil {
		return nil, err
	}
	log := cfg.Logger
	rep := &Report{Mode: ModeIdle, URLs: cfg.URLs, Connections: cfg.Conns, Rooms: cfg.Rooms}
	t := &tally{}

	// Reach NATS and the admin endpoint before opening thousands of sockets.
	var pub *publisher
	if cfg.Rate > 0 {
		rep.Mode, rep.Rate, rep.DurationSeconds = ModeLoad, cfg.Rate, cfg.Duration.Seconds()
		p, err := newPublisher(&cfg, t)
		if err != nil {
			return nil, err
		}
		defer p.close()
		pub = p
	}
	var adm *admin
	var before sample
	var procBefore int64
	if cfg.Rate == 0 && cfg.ServerPID > 0 {
		rss, err := settledRSS(ctx, cfg.ServerPID)
		if err != nil {
			return nil, fmt.Errorf("idle measurement: %w", err)
		}
		procBefore = rss
		log.Info("server before connecting", "pid", cfg.ServerPID, "rss_bytes", rss)
	} else if cfg.Rate == 0 && cfg.AdminURL != "" {
		adm = newAdmin(cfg.AdminURL, cfg.AdminToken)
		s, err := adm.scrape(ctx)
		if err != nil {
			return nil, fmt.Errorf("idle measurement: %w", err)
		}
		before = s
		log.Info("edge before connecting", "rss_bytes", s.rss, "websocket_connections", s.conns)
	}

	readCtx, stopReaders := context.WithCancel(ctx)
	var readers sync.WaitGroup
	stop := func() {
		stopReaders()
		readers.Wait()
	}
	defer stop()

	var header http.Header
	if cfg.Token != "" {
		header = http.Header{"Authorization": {"Bearer " + cfg.Token}}
	}
	log.Info("connecting", "connections", cfg.Conns, "rooms", cfg.Rooms, "edges", len(cfg.URLs), "concurrency", cfg.DialConcurrency)
	start := time.Now()
	d := &dialer{cfg: &cfg, header: header, tally: t, readers: &readers, readCtx: readCtx}
	var live []*receiver
	for _, r := range d.connectAll(ctx) {
		if r != nil {
			live = append(live, r)
		}
	}
	rep.DialSeconds = time.Since(start).Seconds()
	rep.Subscribed, rep.DialFailed = len(live), cfg.Conns-len(live)
	log.Info("subscribed", "connections", len(live), "failed", rep.DialFailed, "seconds", rep.DialSeconds)

	var acked []int64
	var pubStart time.Time
	switch {
	case ctx.Err() != nil || len(live) == 0:
	case pub != nil:
		log.Info("publishing", "rate", cfg.Rate, "duration", cfg.Duration, "events", cfg.events())
		cpu := cpuWindow{pid: cfg.ServerPID}
		cpu.begin(t)
		res := pub.run(ctx)
		acked, pubStart = res.acked, res.start
		for _, n := range acked {
			rep.Published += n
		}
		rep.PublishErrors, rep.PublishSeconds = res.errors, res.sent.Sub(res.start).Seconds()
		log.Info("published", "events", rep.Published, "errors", res.errors, "seconds", rep.PublishSeconds)
		waitDeliveries(ctx, live, acked, cfg.Grace)
		rep.ServerCPUSeconds = cpu.end(t)
	default:
		if cfg.ServerPID > 0 {
			idle, err := measureIdleProc(ctx, log, cfg.ServerPID, procBefore, len(live))
			if err != nil {
				t.add("admin", err)
			}
			rep.Idle = idle
		} else if adm != nil {
			idle, err := adm.measureIdle(ctx, log, before, onEachEdge(live, len(cfg.URLs)))
			if err != nil {
				t.add("admin", err)
			}
			rep.Idle = idle
		}
		if cfg.Hold > 0 {
			log.Info("holding the connections", "for", cfg.Hold)
			sleepUntil(ctx, time.Now().Add(cfg.Hold))
		}
	}

	stop()
	summarize(rep, live, acked, pubStart)
	rep.Errors = t.list()
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("interrupted: %w", err)
	}
	return rep, nil
}

// onEachEdge is how many of the live connections the edge with the fewest
// has: the growth idle mode waits for on the measured edge, which is one of
// them (round robin over the URLs, connection i went to URL i mod n).
func onEachEdge(live []*receiver, edges int) int {
	if edges <= 1 {
		return len(live)
	}
	counts := make([]int, edges)
	for _, r := range live {
		counts[r.index%edges]++
	}
	return slices.Min(counts)
}

// deliveryPoll is how often the wait for deliveries checks the counts.
const deliveryPoll = 20 * time.Millisecond

// waitDeliveries waits until every connection has received the events
// acknowledged for its room, for at most grace (or until ctx ends).
func waitDeliveries(ctx context.Context, live []*receiver, acked []int64, grace time.Duration) {
	deadline := time.Now().Add(grace)
	for {
		missing := 0
		for _, r := range live {
			if r.received.Load() < acked[r.room] {
				missing++
			}
		}
		if missing == 0 || !time.Now().Before(deadline) || !sleepUntil(ctx, time.Now().Add(deliveryPoll)) {
			return
		}
	}
}

// summarize fills rep from the connections, whose readers have ended.
// acked is nil in idle mode.
func summarize(rep *Report, live []*receiver, acked []int64, pubStart time.Time) {
	merged, lastRecv := countReceivers(rep, live, acked)
	if acked == nil {
		return
	}
	if rep.ServerCPUSeconds > 0 && rep.Received > 0 {
		rep.CPUMicrosPerDelivery = rep.ServerCPUSeconds * 1e6 / float64(rep.Received)
	}
	l := merged.latency()
	rep.Latency = &l
	if span := time.Unix(0, lastRecv).Sub(pubStart); lastRecv > 0 && span > 0 {
		rep.DeliveriesPerSec = float64(rep.Received) / span.Seconds()
	}
}

// countReceivers adds the receivers' counts to rep (deliveries expected
// from acked, unless nil) and returns their merged latencies and the time
// of the last delivery (unix ns).
func countReceivers(rep *Report, live []*receiver, acked []int64) (merged *mergedHistogram, lastRecv int64) {
	merged = &mergedHistogram{}
	for _, r := range live {
		got := r.received.Load()
		if acked != nil {
			want := acked[r.room]
			rep.Expected += want
			rep.Lost += max(0, want-got)
		}
		rep.Received += got
		rep.Gaps += r.gaps
		rep.OutOfOrder += r.outOfOrder
		rep.Unexpected += r.unexpected
		if r.err != nil {
			rep.ConnectionsDropped++
		}
		merged.add(&r.hist)
		lastRecv = max(lastRecv, r.lastRecv)
	}
	return merged, lastRecv
}
