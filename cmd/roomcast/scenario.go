package main

import (
	"context"
	"flag"
	"slices"
	"strings"

	"github.com/roomcast/roomcast/internal/bench"
	"github.com/roomcast/roomcast/internal/config"
)

// scenarioFlags are bench's flags for the scenarios.
type scenarioFlags struct {
	scenario      *string
	targets       config.List
	runs          *int
	maxRate       *float64
	events        *int
	resumeClients *int
	resumeBehind  *int
	attackers     *int
	tolerance     *float64
	cluster       clusterFlags
	serverCores   *string
	clientCores   *string
}

const scenarioHelp = `run a scenario, starting the servers itself as child processes of this binary and
measuring them through /proc (Linux), against roomcast (an edge, the measured process, in front of a
NATS JetStream server) and the reference (a nats-server with a WebSocket listener, built from the same
nats-server module; its clients speak the NATS protocol over WebSocket) and, asked for, the floor (the
least a broadcaster can do per delivery, internal/floor, in front of a core NATS server); figures are
medians over --runs, the ratio is roomcast/reference, and with the floor each target's ratio to it too.
The servers and the load generator run on separate CPUs (--server-cores, --client-cores):
  idle       server RSS per idle subscribed connection, one room each and 100 shared rooms (--conns, default 1000)
  broadcast  --conns subscribers (default 1000) of one room: server CPU per delivery at --rate (default 100/s),
             (CPU time comes in 10ms ticks: give it steps of a few seconds), and the highest passing rate
             (every event delivered, p99 < 250ms), doubling from --rate up to --max-rate, then bisecting
  rooms      --conns connections (default 10000) over --rooms (default 1000): highest passing rate, p99 at --rate (default 3000/s)
  resume     replay speed to one client from a --events room (default 100000), and --resume-clients (1000)
             resuming at once --resume-behind (100) events behind: time until all are live. The reference has
             no resume (a JetStream ordered consumer over WebSocket would be one; not measured): n/a
  storm      --attackers (50) connections loop subscribe since 0 to a --events room (100000) / read 100 /
             unsubscribe, at most 10 rounds a second each; measured with and without them: the time of a resume
             --resume-behind (300) events behind, in another room, to its response (10 over --duration, p50 and
             max), the latency of a third room's events at --rate (50/s), and the stream requests per event the
             attackers were sent. The reference: n/a
  scale-out  --conns clients (default 1000) over --rooms (100) all on one edge, events published at --rate (50/s);
             two more edges start and the edges rebalance (4012); each client reconnects at once to an edge
             picked at random and resumes with since: time until each edge holds its share within --tolerance
             (0.2), until the last reconnect, reconnects/s (peak over 1 s, average), and any event lost or
             received twice. The reference: n/a
  cluster    a whole cluster on this machine: --nats-servers (3) NATS JetStream servers in one cluster (the stream
             with 3 replicas) and --edges (5) edges against as many nats-servers with WebSocket listeners in one
             cluster; --generators (5) child processes share --conns (default 95000) over 5 rooms of 5/19 of them
             and rooms of 10, each connection also in a room all follow: server RSS per connection (every server,
             and the edges alone), p50/p99/max latency of one event to all at 1/s, CPU per delivery at --rate
             (default 1000/s over the rooms), and the highest passing rate (up to --max-rate, default 50000)`

func (s *scenarioFlags) register(fs *flag.FlagSet) {
	s.scenario = fs.String("scenario", "", scenarioHelp)
	fs.Var(&s.targets, "target", "scenario targets: roomcast, nats, floor, both (roomcast and nats; the default) or all")
	s.runs = fs.Int("runs", 3, "scenario runs per target; each figure is their median")
	s.maxRate = fs.Float64("max-rate", 0, "scenario rate search: the highest rate tried (default 20000 broadcast, 100000 rooms); -1 skips the search")
	s.events = fs.Int("events", 100_000, "resume and storm scenarios: events stored in the replayed room")
	s.resumeClients = fs.Int("resume-clients", 1000, "resume scenario: clients resuming at once")
	s.resumeBehind = fs.Int("resume-behind", 0, "resume and storm scenarios: events each resuming client missed (default 100 resume, 300 storm)")
	s.attackers = fs.Int("attackers", 50, "storm scenario: connections replaying the attacked room")
	s.tolerance = fs.Float64("tolerance", bench.DefaultScaleOutTolerance, "scale-out scenario: how far from its share of the connections (a fraction) an edge may be and count as balanced")
	s.cluster.register(fs)
	s.serverCores = fs.String("server-cores", coresAuto, "scenarios: the CPUs of every server process, a list as taskset writes it (0-1,3); auto: the lower half of those this process may use, none: not pinned")
	s.clientCores = fs.String("client-cores", coresAuto, "scenarios: the CPUs of the bench itself (load generator, publisher); auto: the upper half, none: not pinned")
}

// Values of --server-cores and --client-cores besides CPU lists.
const (
	coresAuto = "auto"
	coresNone = "none"
)

// cores reads --server-cores and --client-cores into a split, refusing
// bad lists, sides that share a CPU and CPUs this process may not use.
func (s *scenarioFlags) cores() (bench.Cores, error) {
	auto := bench.SplitCores()
	var c bench.Cores
	for _, side := range []struct {
		flag, value string
		auto        []int
		cpus        *[]int
	}{{"server-cores", *s.serverCores, auto.Servers, &c.Servers}, {"client-cores", *s.clientCores, auto.Clients, &c.Clients}} {
		switch side.value {
		case coresAuto:
			*side.cpus = side.auto
		case coresNone:
		default:
			cpus, err := bench.ParseCPUList(side.value)
			if err != nil {
				return c, usagef("--%s: %v (or auto, none)", side.flag, err)
			}
			*side.cpus = cpus
		}
	}
	if err := c.Check(); err != nil {
		return c, usagef("--server-cores and --client-cores: %v", err)
	}
	return c, nil
}

// names are the flags that only a scenario uses.
func (s *scenarioFlags) names() []string {
	return append([]string{"target", "runs", "max-rate", "events", "resume-clients", "resume-behind", "attackers", "tolerance", "server-cores", "client-cores"}, s.cluster.names()...)
}

// notForScenarios are load-mode flags a scenario has no use for: it starts
// and measures its own servers.
var notForScenarios = []string{"url", "nats", "subject-prefix", "admin", "hold", "token", "protocol", "compression", "server-pid", "dial-concurrency", "dial-timeout", "max-in-flight", "tls-ca", "tls-server-name"}

// runScenario is `roomcast bench --scenario S`.
func runScenario(ctx context.Context, env *environment, f *benchFlags, set map[string]bool) error {
	for _, name := range notForScenarios {
		if set[name] {
			return usagef("--%s is for the load and idle modes: a scenario starts and measures its own servers", name)
		}
	}
	if !slices.Contains(bench.Scenarios, *f.scen.scenario) {
		return usagef("--scenario: want one of %s, got %q", strings.Join(bench.Scenarios, ", "), *f.scen.scenario)
	}
	cfg := bench.ScenarioConfig{Scenario: *f.scen.scenario, Runs: *f.scen.runs}
	for _, t := range f.scen.targets {
		var add []string
		switch t {
		case "both":
			add = []string{bench.TargetRoomcast, bench.TargetNATS}
		case "all":
			add = bench.Targets
		case bench.TargetRoomcast, bench.TargetNATS, bench.TargetFloor:
			add = []string{t}
		default:
			return usagef("--target: want roomcast, nats, floor, both or all, got %q", t)
		}
		for _, a := range add {
			if !slices.Contains(cfg.Targets, a) {
				cfg.Targets = append(cfg.Targets, a)
			}
		}
	}
	// Unset flags leave the scenario's own defaults.
	if set["conns"] {
		cfg.Conns = *f.conns
	}
	if set["rooms"] {
		cfg.Rooms = *f.rooms
	}
	if set["rate"] {
		cfg.Rate = *f.rate
	}
	if set["duration"] {
		cfg.Duration = *f.duration
	}
	if set["grace"] {
		cfg.Grace = *f.grace
	}
	cfg.MaxRate, cfg.Events, cfg.ResumeClients, cfg.Attackers = *f.scen.maxRate, *f.scen.events, *f.scen.resumeClients, *f.scen.attackers
	cfg.Tolerance = *f.scen.tolerance
	if set["resume-behind"] {
		cfg.ResumeBehind = *f.scen.resumeBehind
	}
	if err := checkScenarioFlags(cfg, set); err != nil {
		return err
	}
	cores, err := f.scen.cores()
	if err != nil {
		return err
	}
	cfg.Cores = cores
	exe, err := benchExecutable()
	if err != nil {
		return err
	}
	cfg.Start = func(ctx context.Context, target string) (*bench.Servers, error) {
		return bench.StartServers(ctx, exe, target, cfg.Cores.Servers)
	}
	cfg.Logger = config.NewLogger(env.stderr, "text", "info")
	if err := f.scen.cluster.configure(&cfg, exe, set); err != nil {
		return err
	}
	var printErr error
	if *f.asJSON {
		cfg.OnStep = func(st bench.Step) {
			if err := printJSON(env, st); err != nil && printErr == nil {
				printErr = err
			}
		}
	}
	sum, err := bench.RunScenario(ctx, cfg)
	if sum != nil && (len(sum.Figures) > 0 || err == nil) {
		var perr error
		if *f.asJSON {
			perr = printJSON(env, sum)
		} else {
			perr = sum.WriteTable(env.stdout)
		}
		if printErr == nil {
			printErr = perr
		}
	}
	if err != nil {
		return err
	}
	return printErr
}

// checkScenarioFlags refuses values no scenario can use, as usage errors
// (RunScenario checks them again, after its defaults).
func checkScenarioFlags(cfg bench.ScenarioConfig, set map[string]bool) error {
	switch {
	case cfg.Runs < 1 || cfg.Runs > 100:
		return usagef("--runs: want 1 to 100, got %d", cfg.Runs)
	case set["conns"] && cfg.Scenario != bench.ScenarioCluster && (cfg.Conns < 1 || cfg.Conns > bench.MaxConns):
		return usagef("--conns: want 1 to %d (each connection is an open file; a process may hold 20,000), got %d", bench.MaxConns, cfg.Conns)
	case set["rooms"] && cfg.Rooms < 1:
		return usagef("--rooms must be at least 1, got %d", cfg.Rooms)
	case set["rooms"] && cfg.Scenario != bench.ScenarioRooms && cfg.Scenario != bench.ScenarioScaleOut:
		return usagef("--rooms is for the rooms and scale-out scenarios: broadcast uses one room, idle measures one room each and %d shared rooms", bench.IdleSharedRooms)
	case set["rooms"] && cfg.Scenario == bench.ScenarioScaleOut && set["conns"] && cfg.Rooms > cfg.Conns:
		return usagef("--rooms: want at most --conns (%d), got %d", cfg.Conns, cfg.Rooms)
	case !(cfg.Tolerance > 0) || cfg.Tolerance >= 1:
		return usagef("--tolerance: want a fraction above 0 and below 1, got %v", cfg.Tolerance)
	case set["rate"] && !(cfg.Rate > 0):
		return usagef("--rate: a scenario needs events per second > 0, got %v", cfg.Rate)
	case cfg.MaxRate != -1 && cfg.MaxRate < 0:
		return usagef("--max-rate: want > 0, or -1 to skip the search, got %v", cfg.MaxRate)
	case set["duration"] && cfg.Duration <= 0, set["grace"] && cfg.Grace < 0:
		return usagef("--duration must be positive and --grace ≥ 0")
	case cfg.Events < 1 || cfg.ResumeClients < 1 || cfg.ResumeClients > bench.MaxConns || set["resume-behind"] && cfg.ResumeBehind < 1:
		return usagef("--events and --resume-behind must be at least 1, --resume-clients 1 to %d", bench.MaxConns)
	case cfg.Attackers < 1 || cfg.Attackers > bench.MaxConns:
		return usagef("--attackers: want 1 to %d, got %d", bench.MaxConns, cfg.Attackers)
	}
	return nil
}
