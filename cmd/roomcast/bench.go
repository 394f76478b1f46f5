package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/roomcast/roomcast/internal/bench"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/config"
)

// adminTokenEnv holds the edge's admin token (--admin-token-file) for
// bench's memory readings; a secret, so never a flag.
const adminTokenEnv = "ROOMCAST_ADMIN_TOKEN"

// benchFlags are the flags of `roomcast bench`: the load and idle modes
// against running servers, and the scenarios (scenario.go).
type benchFlags struct {
	urls        config.List
	natsURL     *string
	prefix      *string
	conns       *int
	rooms       *int
	rate        *float64
	duration    *time.Duration
	grace       *time.Duration
	admin       *string
	hold        *time.Duration
	dialConc    *int
	dialTimeout *time.Duration
	inFlight    *int
	token       *string
	protocol    *string
	compression *bool
	tlsCA       *string
	tlsName     *string
	serverPID   *int
	asJSON      *bool
	natsAuth    *config.NATSAuth // security of the NATS connection, as serve's
	scen        scenarioFlags
}

func runBench(ctx context.Context, env *environment, args []string) error {
	// `roomcast bench broadcast [flags]`: a leading scenario name, which the
	// flag package would otherwise take for the end of the flags.
	var scenarioArg string
	if len(args) > 0 && slices.Contains(bench.Scenarios, args[0]) {
		scenarioArg, args = args[0], args[1:]
	}
	fs := newFlagSet(env, "bench", "\n       roomcast bench SCENARIO [flags]   (idle, broadcast, rooms, resume, storm, scale-out or cluster; see --scenario)")
	f := &benchFlags{}
	fs.Var(&f.urls, "url", "edge WebSocket URL; repeat for several edges, used round robin (default "+bench.DefaultURL+")")
	f.natsURL = fs.String("nats", bench.DefaultNATSURL, "NATS URL events are published to")
	f.prefix = fs.String("subject-prefix", bus.DefaultPrefix, "NATS subject prefix")
	f.conns = fs.Int("conns", bench.DefaultConns, fmt.Sprintf("WebSocket connections, each subscribed to one room (at most %d; scenarios have their own default)", bench.MaxConns))
	f.rooms = fs.Int("rooms", bench.DefaultRooms, "rooms bench:r0 .. bench:rN-1, connections spread round robin (scenario rooms: default 1000)")
	f.rate = fs.Float64("rate", 100, "events per second over all rooms; 0 measures idle connections instead (scenarios: the fixed rate, default 100 for broadcast, 3000 for rooms)")
	f.duration = fs.Duration("duration", bench.DefaultDuration, "how long to publish (scenarios: per step, default 5s)")
	f.grace = fs.Duration("grace", bench.DefaultGrace, "how long to wait after publishing for deliveries in flight (scenarios: default 3s)")
	f.admin = fs.String("admin", "", "admin base URL of the edge (http://127.0.0.1:9090): with --rate 0, measure its memory per idle connection (its bearer token, if it asks for one, in "+adminTokenEnv+")")
	f.hold = fs.Duration("hold", 0, "with --rate 0, keep the connections open this long after measuring")
	f.dialConc = fs.Int("dial-concurrency", bench.DefaultDialConcurrency, "connections being opened at once")
	f.dialTimeout = fs.Duration("dial-timeout", bench.DefaultDialTimeout, "to connect and be subscribed, per connection")
	f.inFlight = fs.Int("max-in-flight", bench.DefaultMaxInFlight, "published events waiting for their acknowledgement")
	f.token = fs.String("token", "", "JWT for the edges (or ROOMCAST_TOKEN)")
	f.protocol = fs.String("protocol", bench.ProtocolRoomcast, "what --url speaks: roomcast, or nats (a nats-server's WebSocket listener; events published with core NATS to bench.r<i>)")
	f.compression = fs.Bool("compression", false, "the clients offer permessage-deflate (an edge started with --compression accepts it)")
	f.tlsCA = fs.String("tls-ca", "", "PEM CA bundle to trust for wss:// URLs (default: the system's)")
	f.tlsName = fs.String("tls-server-name", "", "name to verify the edges' certificates against, when the URL's host is another")
	f.serverPID = fs.Int("server-pid", 0, "pid of the server behind --url on this machine: report its CPU per delivery (load) or RSS per idle connection (--rate 0) from /proc")
	f.asJSON = fs.Bool("json", false, "print the report as one JSON object (scenarios: one JSON line per step, then a summary line)")
	f.scen.register(fs)
	f.natsAuth = config.RegisterNATSAuth(fs)
	if err := parseFlags(fs, env, args, nil); err != nil {
		return err
	}
	if err := f.natsAuth.Load(env.getenv); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if scenarioArg != "" {
		if set["scenario"] && *f.scen.scenario != scenarioArg {
			return usagef("scenario %q and --scenario %q disagree", scenarioArg, *f.scen.scenario)
		}
		*f.scen.scenario = scenarioArg
	}
	if *f.scen.scenario != "" {
		return runScenario(ctx, env, f, set)
	}
	for _, name := range f.scen.names() {
		if set[name] {
			return usagef("--%s needs --scenario", name)
		}
	}
	return runLoad(ctx, env, f)
}

// runLoad is bench's load or idle mode against running servers.
func runLoad(ctx context.Context, env *environment, f *benchFlags) error {
	switch {
	case *f.conns > bench.MaxConns:
		return usagef("--conns %d: at most %d, each connection is an open file and a process may hold 20,000 (the edge needs as many)", *f.conns, bench.MaxConns)
	case *f.conns < 1:
		return usagef("--conns must be at least 1, got %d", *f.conns)
	case *f.rooms < 1:
		return usagef("--rooms must be at least 1, got %d", *f.rooms)
	case *f.rate < 0:
		return usagef("--rate must be ≥ 0, got %v", *f.rate)
	case *f.rate > 0 && *f.duration <= 0:
		return usagef("--duration must be positive, got %s", *f.duration)
	case *f.grace < 0 || *f.hold < 0 || *f.dialTimeout <= 0:
		return usagef("--grace and --hold must be ≥ 0, --dial-timeout positive")
	case *f.dialConc < 1 || *f.inFlight < 1:
		return usagef("--dial-concurrency and --max-in-flight must be at least 1")
	case *f.protocol != bench.ProtocolRoomcast && *f.protocol != bench.ProtocolNATS:
		return usagef("--protocol: want roomcast or nats, got %q", *f.protocol)
	case *f.serverPID < 0:
		return usagef("--server-pid must be a process id, got %d", *f.serverPID)
	}
	urls := f.urls
	if len(urls) == 0 {
		urls = config.List{bench.DefaultURL}
	}

	natsOpts, err := f.natsAuth.Options()
	if err != nil {
		return usageError{err}
	}
	tlsConfig, err := clientTLS(*f.tlsCA, *f.tlsName)
	if err != nil {
		return usageError{err}
	}
	log := config.NewLogger(env.stderr, "text", "info") // progress; the report goes to standard output
	rep, err := bench.Run(ctx, bench.Config{
		URLs: urls, NATSURL: *f.natsURL, NATSOptions: natsOpts, Prefix: *f.prefix, Token: *f.token, AdminURL: *f.admin, AdminToken: env.getenv(adminTokenEnv),
		Conns: *f.conns, Rooms: *f.rooms, Rate: *f.rate, Duration: *f.duration, Grace: *f.grace, Hold: *f.hold,
		DialConcurrency: *f.dialConc, DialTimeout: *f.dialTimeout, MaxInFlight: *f.inFlight,
		Protocol: *f.protocol, Compression: *f.compression, TLS: tlsConfig, ServerPID: *f.serverPID,
		Logger: log,
	})
	if rep != nil {
		if perr := printReport(env, rep, *f.asJSON); perr != nil {
			return perr
		}
	}
	if err != nil {
		return err
	}
	return rep.Problem()
}

func printReport(env *environment, rep *bench.Report, asJSON bool) error {
	if !asJSON {
		return rep.WriteText(env.stdout)
	}
	return printJSON(env, rep)
}

// printJSON prints v as one line of JSON.
func printJSON(env *environment, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = fmt.Fprintf(env.stdout, "%s\n", b)
	return err
}

// runNATSServer is the hidden `roomcast bench-nats-server`: the NATS server
// a scenario starts as a child process, the reference or the one behind the
// roomcast edge.
func runNATSServer(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "bench-nats-server", "")
	wsOn := fs.Bool("websocket", false, "add a WebSocket listener (no TLS) on a free loopback port")
	store := fs.String("jetstream", "", "enable JetStream with its storage in this directory")
	name := fs.String("name", "", "the server's name")
	cluster := fs.String("cluster", "", "join this cluster (with --cluster-listen and --routes)")
	clusterListen := fs.String("cluster-listen", "", "host:port of the cluster listener")
	var routes config.List
	fs.Var(&routes, "routes", "route URLs of the cluster's members, comma-separated")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	return bench.RunNATSServer(ctx, bench.NATSServerOptions{WebSocket: *wsOn, StoreDir: *store,
		Name: *name, Cluster: *cluster, ClusterListen: *clusterListen, Routes: routes}, env.stdout)
}

// runFloorServer is the hidden `roomcast bench-floor-server`: the floor
// target a scenario starts as a child process (internal/floor), on the core
// NATS server the scenario started before it.
func runFloorServer(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "bench-floor-server", "")
	natsURL := fs.String("nats", bench.DefaultNATSURL, "the NATS server events are published to")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	return bench.RunFloorServer(ctx, *natsURL, env.stdout)
}

// benchExecutable is the roomcast binary the scenarios start the servers
// from: this one.
func benchExecutable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the roomcast binary to start the servers: %w", err)
	}
	return exe, nil
}
