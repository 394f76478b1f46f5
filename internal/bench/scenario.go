package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"
)

// Scenarios of `roomcast bench --scenario`.
const (
	ScenarioIdle      = "idle"      // server RSS per idle subscribed connection
	ScenarioBroadcast = "broadcast" // one room, many subscribers: CPU per delivery, highest passing rate
	ScenarioRooms     = "rooms"     // many connections over many rooms: highest passing rate, p99 at a rate
	ScenarioResume    = "resume"    // replay speed, and many clients resuming at once (roomcast only)
	ScenarioStorm     = "storm"     // attackers replaying a long room: another room's resume and live latency (roomcast only)
	ScenarioScaleOut  = "scale-out" // one edge to three: time to balance, reconnects/s, nothing lost (roomcast only)
	ScenarioCluster   = "cluster"   // a whole cluster on this machine: NATS servers, edges, generator processes
)

// Scenarios lists the scenario names.
var Scenarios = []string{ScenarioIdle, ScenarioBroadcast, ScenarioRooms, ScenarioResume, ScenarioStorm, ScenarioScaleOut, ScenarioCluster}

// IdleSharedRooms is the room count of idle's shared-rooms measurement
// (the other has one room per connection).
const IdleSharedRooms = 100

// PassP99 is the p99 latency a load step must stay under to pass (besides
// delivering every event).
const PassP99 = 250 * time.Millisecond

// maxSearchSteps bounds the steps of one rate search: enough to double from
// 100 to 20,000 events/s and bisect twice.
const maxSearchSteps = 10

// ScenarioConfig is what a scenario measures. Zero fields take the
// scenario's defaults (see withDefaults).
type ScenarioConfig struct {
	Scenario string
	Targets  []string // of Targets, measured in this order in each run
	Runs     int      // each figure is the median over the runs

	Conns    int
	Rooms    int           // rooms scenario only: broadcast has one, idle measures both layouts
	Rate     float64       // events/s of the fixed-rate step (broadcast CPU, rooms p99), and where the search starts
	MaxRate  float64       // upper bound of the rate search; negative: no search
	Duration time.Duration // publishing per load step
	Grace    time.Duration // after a step, for deliveries in flight

	Events        int // resume: events in the replayed room; storm: in the attacked room
	ResumeClients int // resume: clients resuming at once
	ResumeBehind  int // resume: events each of them missed; storm: the resumer missed
	Attackers     int // storm: connections replaying the attacked room
	// Tolerance is scale-out's: how far from its share of the connections
	// an edge may be and count as balanced.
	Tolerance float64

	// Start starts a target's servers, fresh for each run (and each idle
	// layout); StartServers with the roomcast binary and Cores.Servers in
	// production.
	Start func(ctx context.Context, target string) (*Servers, error)
	// Shape is the cluster scenario's processes (Conns is its
	// connections); StartCluster starts them, StartCluster with the
	// roomcast binary in production.
	Shape        ClusterShape
	StartCluster func(ctx context.Context, target string, shape ClusterShape) (*Cluster, error)
	// Cores are the CPUs of each side: RunScenario pins its own process
	// (the load generator) to Cores.Clients; Start pins the servers to
	// Cores.Servers. The summary says which they were.
	Cores Cores

	Logger *slog.Logger // progress; nil discards
	OnStep func(Step)   // called after each step (the --json lines)
}

func (c ScenarioConfig) withDefaults() ScenarioConfig {
	type defaults struct {
		conns, rooms  int
		rate, maxRate float64
		behind        int
	}
	d := map[string]defaults{
		ScenarioIdle:      {conns: 1000},
		ScenarioBroadcast: {conns: 1000, rooms: 1, rate: 100, maxRate: 20_000},
		ScenarioRooms:     {conns: 10_000, rooms: 1000, rate: 3000, maxRate: 100_000},
		ScenarioResume:    {behind: 100},
		ScenarioStorm:     {rate: 50, behind: 300},
		ScenarioScaleOut:  {conns: 1000, rooms: 100, rate: 50},
		ScenarioCluster:   {conns: DefaultClusterConns, rate: 1000, maxRate: 50_000},
	}[c.Scenario]
	if len(c.Targets) == 0 {
		c.Targets = []string{TargetRoomcast, TargetNATS}
	}
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setFloat := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	setInt(&c.Runs, 3)
	setInt(&c.Conns, d.conns)
	setInt(&c.Rooms, d.rooms)
	setFloat(&c.Rate, d.rate)
	setFloat(&c.MaxRate, d.maxRate)
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.Grace == 0 {
		c.Grace = 3 * time.Second
	}
	setInt(&c.Events, 100_000)
	setInt(&c.ResumeClients, 1000)
	setInt(&c.ResumeBehind, max(d.behind, 1))
	setInt(&c.Attackers, 50)
	setFloat(&c.Tolerance, DefaultScaleOutTolerance)
	if c.Scenario == ScenarioCluster {
		c.Shape.Conns = c.Conns
		c.Shape.withDefaults()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every problem of c (after defaults) at once.
func (c *ScenarioConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(Scenarios, c.Scenario) {
		bad("scenario: want one of %v, got %q", Scenarios, c.Scenario)
	}
	for _, t := range c.Targets {
		if !slices.Contains(Targets, t) {
			bad("target: want one of %v, got %q", Targets, t)
		}
	}
	if err := c.Cores.Check(); err != nil {
		bad("cores: %w", err)
	}
	if c.Runs < 1 || c.Runs > 100 {
		bad("runs: want 1 to 100, got %d", c.Runs)
	}
	load := c.Scenario == ScenarioBroadcast || c.Scenario == ScenarioRooms || c.Scenario == ScenarioCluster
	if c.Scenario == ScenarioCluster {
		if err := c.Shape.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.StartCluster == nil {
			bad("no way to start the cluster")
		}
		if slices.Contains(c.Targets, TargetFloor) {
			bad("target: the cluster scenario measures roomcast and the reference, not the floor (a single process)")
		}
	} else if c.Scenario != ScenarioResume && c.Scenario != ScenarioStorm && (c.Conns < 1 || c.Conns > MaxConns) {
		bad("connections: want 1 to %d (one open file each), got %d", MaxConns, c.Conns)
	}
	if (c.Scenario == ScenarioRooms || c.Scenario == ScenarioScaleOut) && (c.Rooms < 1 || c.Rooms > c.Conns) {
		bad("rooms: want 1 to the connections (%d), got %d", c.Conns, c.Rooms)
	}
	if load && (!(c.Rate > 0) || math.IsInf(c.Rate, 0) || math.IsInf(c.MaxRate, 0) || math.IsNaN(c.MaxRate)) {
		bad("rate: want events per second > 0 (and a finite maximum), got %v and %v", c.Rate, c.MaxRate)
	}
	if c.Duration < 0 || c.Grace < 0 {
		bad("duration and grace: want ≥ 0, got %s and %s", c.Duration, c.Grace)
	}
	if c.Events < 1 || c.ResumeClients < 1 || c.ResumeClients > MaxConns || c.ResumeBehind < 1 {
		bad("resume: want events ≥ 1, 1 to %d clients, behind ≥ 1; got %d, %d, %d", MaxConns, c.Events, c.ResumeClients, c.ResumeBehind)
	}
	if c.Attackers < 1 || c.Attackers > MaxConns {
		bad("storm: want 1 to %d attackers, got %d", MaxConns, c.Attackers)
	}
	if c.Scenario == ScenarioStorm && (!(c.Rate > 0) || math.IsInf(c.Rate, 0) || c.Duration <= 0) {
		bad("storm: want a live rate > 0 and a duration > 0, got %v and %s", c.Rate, c.Duration)
	}
	if c.Scenario == ScenarioScaleOut && (!(c.Rate > 0) || math.IsInf(c.Rate, 0) || !(c.Tolerance > 0) || c.Tolerance >= 1) {
		bad("scale-out: want a rate > 0 and a tolerance above 0 and below 1, got %v and %v", c.Rate, c.Tolerance)
	}
	if c.Start == nil && c.Scenario != ScenarioCluster {
		bad("no way to start the servers")
	}
	return errors.Join(errs...)
}

// RunScenario measures cfg.Scenario on each target, cfg.Runs times, the
// targets taking turns within each run so slow drift of the machine affects
// both alike. It returns the summary (medians and ratios) and an error when
// a run could not be set up or ctx ended, with the summary so far.
func RunScenario(ctx context.Context, cfg ScenarioConfig) (*Summary, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("bench settings: %w", err)
	}
	files := cfg.Conns
	switch cfg.Scenario {
	case ScenarioResume:
		files = cfg.ResumeClients
	case ScenarioStorm:
		files = cfg.Attackers + 4 // the live reader, the resumer, NATS, metrics
	case ScenarioCluster:
		files = 0 // the generators, each its own process, hold the connections
	}
	if err := checkFiles(files); err != nil {
		return nil, err
	}
	unpin, err := PinSelf(cfg.Cores.Clients)
	if err != nil {
		return nil, fmt.Errorf("pin the load generator: %w", err)
	}
	defer unpin()
	sc := &scenario{cfg: &cfg, figs: &figures{}}
runs:
	for run := 1; run <= cfg.Runs; run++ {
		for _, target := range cfg.Targets {
			if err = sc.runTarget(ctx, run, target); err != nil {
				err = fmt.Errorf("%s run %d on %s: %w", cfg.Scenario, run, target, err)
				break runs
			}
		}
	}
	return sc.figs.summary(&cfg), err
}

// targetName is how messages name a target other than roomcast.
func targetName(target string) string {
	if target == TargetNATS {
		return "reference"
	}
	return target
}

// scenario is one RunScenario's state, used by one goroutine.
type scenario struct {
	cfg  *ScenarioConfig
	figs *figures
}

func (sc *scenario) runTarget(ctx context.Context, run int, target string) error {
	cfg := sc.cfg
	cfg.Logger.Info("scenario run", "scenario", cfg.Scenario, "target", target, "run", run)
	switch cfg.Scenario {
	case ScenarioCluster:
		return sc.cluster(ctx, run, target)
	case ScenarioIdle:
		return sc.idle(ctx, run, target)
	case ScenarioResume, ScenarioStorm, ScenarioScaleOut:
		if target != TargetRoomcast {
			figs := resumeFigures(cfg)
			switch cfg.Scenario {
			case ScenarioStorm:
				figs = stormFigures(cfg)
			case ScenarioScaleOut:
				figs = scaleOutFigures(cfg)
			}
			why := "the " + targetName(target) + " has no resume"
			for _, f := range figs {
				sc.figs.na(f, target, why)
			}
			sc.emit(Step{Scenario: cfg.Scenario, Target: target, Run: run, Step: cfg.Scenario, Problem: "n/a: " + why})
			return nil
		}
	}
	srv, err := cfg.Start(ctx, target)
	if err != nil {
		return err
	}
	defer srv.Close()
	switch cfg.Scenario {
	case ScenarioBroadcast:
		rep, err := sc.load(ctx, srv, run, "fixed-rate", cfg.Rate, cfg.Conns, 1)
		if err != nil {
			return err
		}
		sc.figs.add(figureSpec{fmt.Sprintf("server CPU per delivery at %g events/s", cfg.Rate), "µs", lower}, target, rep.CPUMicrosPerDelivery, rep.Received > 0 && rep.ServerCPUSeconds > 0)
		return sc.search(ctx, srv, run, cfg.Conns, 1)
	case ScenarioRooms:
		if err := sc.search(ctx, srv, run, cfg.Conns, cfg.Rooms); err != nil {
			return err
		}
		rep, err := sc.load(ctx, srv, run, "fixed-rate", cfg.Rate, cfg.Conns, cfg.Rooms)
		if err != nil {
			return err
		}
		// A p99 of the deliveries that arrived says little when some did not.
		ok := rep.Latency != nil && rep.Latency.Samples > 0 && rep.Problem() == nil
		var p99 float64
		if ok {
			p99 = rep.Latency.P99
		}
		sc.figs.add(figureSpec{fmt.Sprintf("p99 latency at %g events/s", cfg.Rate), "ms", lower}, target, p99, ok)
		return nil
	case ScenarioResume:
		return sc.resume(ctx, srv, run)
	case ScenarioStorm:
		return sc.storm(ctx, srv, run)
	case ScenarioScaleOut:
		return sc.scaleOut(ctx, srv, run)
	}
	return nil
}

// idle measures the server's RSS per idle subscribed connection, with one
// room per connection and with IdleSharedRooms rooms, each on fresh servers.
func (sc *scenario) idle(ctx context.Context, run int, target string) error {
	cfg := sc.cfg
	layouts := []int{cfg.Conns}
	if shared := min(IdleSharedRooms, cfg.Conns); shared != cfg.Conns {
		layouts = append(layouts, shared)
	}
	for _, rooms := range layouts {
		srv, err := cfg.Start(ctx, target)
		if err != nil {
			return err
		}
		rep, err := Run(ctx, sc.stepConfig(srv, 0, cfg.Conns, rooms))
		srv.Close()
		if err != nil {
			return err
		}
		st := sc.step(rep, srv, run, "idle")
		st.Passed = rep.Problem() == nil && rep.Idle != nil
		var perConn float64
		if rep.Idle != nil {
			perConn = rep.Idle.BytesPerConn
			st.RSSBytesPerConn = perConn
		}
		sc.emit(st)
		name := fmt.Sprintf("server RSS per idle connection, %d rooms", rooms)
		if rooms == cfg.Conns {
			name = "server RSS per idle connection, one room each"
		}
		sc.figs.add(figureSpec{name, "bytes", lower}, target, perConn, st.Passed)
	}
	return nil
}

// load runs one load step on srv and emits it.
func (sc *scenario) load(ctx context.Context, srv *Servers, run int, name string, rate float64, conns, rooms int) (*Report, error) {
	rep, err := Run(ctx, sc.stepConfig(srv, rate, conns, rooms))
	if err != nil {
		return nil, err
	}
	st := sc.step(rep, srv, run, name)
	st.Passed = passed(rep)
	if !st.Passed && st.Problem == "" {
		st.Problem = fmt.Sprintf("p99 latency %.1fms, want under %s", st.P99, PassP99)
	}
	sc.emit(st)
	return rep, nil
}

// passed says whether a load step delivered every event in order with its
// p99 latency under PassP99.
func passed(rep *Report) bool {
	return rep.Problem() == nil && rep.Latency != nil && rep.Latency.Samples > 0 &&
		rep.Latency.P99 < float64(PassP99)/float64(time.Millisecond)
}

// search records the highest passing rate of conns connections over rooms
// (searchRate from cfg.Rate up to cfg.MaxRate).
func (sc *scenario) search(ctx context.Context, srv *Servers, run, conns, rooms int) error {
	cfg := sc.cfg
	if cfg.MaxRate < 0 {
		return nil
	}
	best, atMax, err := searchRate(cfg.Rate, cfg.MaxRate, func(rate float64) (bool, error) {
		rep, err := sc.load(ctx, srv, run, "search", rate, conns, rooms)
		if err != nil {
			return false, err
		}
		return passed(rep), nil
	})
	if err != nil {
		return err
	}
	spec := figureSpec{"highest passing rate", "events/s", higher}
	sc.figs.add(spec, srv.Target, best, true)
	if atMax {
		sc.figs.result(spec, srv.Target).AtMax++ // the true figure may be higher
	}
	return nil
}

// searchRate finds the highest rate for which try passes: from start it
// doubles while steps pass (halves while they fail), up to limit, then
// bisects between the highest pass and the lowest failure until they are
// within 10%, in at most maxSearchSteps steps. atMax says that no step
// failed (the highest passing rate may be above limit); 0 means none passed.
func searchRate(start, limit float64, try func(rate float64) (bool, error)) (best float64, atMax bool, err error) {
	var lo, hi float64 // the highest passing rate and the lowest failing one; 0: none yet
	rate := min(start, limit)
	for range maxSearchSteps {
		ok, err := try(rate)
		if err != nil {
			return 0, false, err
		}
		if ok {
			lo = rate
		} else {
			hi = rate
		}
		switch {
		case hi == 0 && lo >= limit:
		case hi == 0:
			rate = min(2*rate, limit)
			continue
		case lo == 0:
			rate = math.Round(hi / 2)
			if rate >= 1 {
				continue
			}
		case hi-lo > 0.1*lo:
			rate = math.Round((lo + hi) / 2)
			continue
		}
		break
	}
	return lo, hi == 0, nil
}

// stepConfig is the Config of one step against srv.
func (sc *scenario) stepConfig(srv *Servers, rate float64, conns, rooms int) Config {
	proto := ProtocolRoomcast
	switch srv.Target {
	case TargetNATS:
		proto = ProtocolNATS
	case TargetFloor:
		proto = ProtocolFloor
	}
	return Config{
		URLs: []string{srv.WSURL}, NATSURL: srv.NATSURL, Protocol: proto, ServerPID: srv.PID,
		Conns: conns, Rooms: rooms, Rate: rate, Duration: sc.cfg.Duration, Grace: sc.cfg.Grace,
		Logger: sc.cfg.Logger.With("target", srv.Target),
	}
}

// step is the Step of a finished run; the caller sets Passed and figures.
func (sc *scenario) step(rep *Report, srv *Servers, run int, name string) Step {
	st := Step{
		Scenario: sc.cfg.Scenario, Target: srv.Target, Run: run, Step: name, Rate: rep.Rate,
		Connections: rep.Subscribed, Rooms: rep.Rooms,
		Expected: rep.Expected, Delivered: rep.Received, Lost: rep.Lost,
		CPUMicrosPerDelivery: rep.CPUMicrosPerDelivery,
	}
	if l := rep.Latency; l != nil {
		st.P50, st.P99 = l.P50, l.P99
	}
	if err := rep.Problem(); err != nil {
		st.Problem = err.Error()
	}
	return st
}

func (sc *scenario) emit(st Step) {
	if sc.cfg.OnStep != nil {
		sc.cfg.OnStep(st)
	}
}
