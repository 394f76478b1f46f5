package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/roomcast/roomcast/internal/bench"
	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/config"
)

func runBench(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "bench", "")
	var urls config.List
	fs.Var(&urls, "url", "edge WebSocket URL; repeat for several edges, used round robin (default "+bench.DefaultURL+")")
	natsURL := fs.String("nats", bench.DefaultNATSURL, "NATS URL events are published to")
	prefix := fs.String("subject-prefix", bus.DefaultPrefix, "NATS subject prefix")
	conns := fs.Int("conns", bench.DefaultConns, fmt.Sprintf("WebSocket connections, each subscribed to one room (at most %d)", bench.MaxConns))
	rooms := fs.Int("rooms", bench.DefaultRooms, "rooms bench:r0 .. bench:rN-1, connections spread round robin")
	rate := fs.Float64("rate", 100, "events per second over all rooms; 0 measures idle connections instead")
	duration := fs.Duration("duration", bench.DefaultDuration, "how long to publish")
	grace := fs.Duration("grace", bench.DefaultGrace, "how long to wait after publishing for deliveries in flight")
	admin := fs.String("admin", "", "admin base URL of the edge (http://127.0.0.1:9090): with --rate 0, measure its memory per idle connection")
	hold := fs.Duration("hold", 0, "with --rate 0, keep the connections open this long after measuring")
	dialConc := fs.Int("dial-concurrency", bench.DefaultDialConcurrency, "connections being opened at once")
	dialTimeout := fs.Duration("dial-timeout", bench.DefaultDialTimeout, "to connect and be subscribed, per connection")
	inFlight := fs.Int("max-in-flight", bench.DefaultMaxInFlight, "published events waiting for their acknowledgement")
	token := fs.String("token", "", "JWT for the edges (or ROOMCAST_TOKEN)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := parseFlags(fs, env, args, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	switch {
	case *conns > bench.MaxConns:
		return usagef("--conns %d: at most %d, each connection is an open file and a process may hold 20,000 (the edge needs as many)", *conns, bench.MaxConns)
	case *conns < 1:
		return usagef("--conns must be at least 1, got %d", *conns)
	case *rooms < 1:
		return usagef("--rooms must be at least 1, got %d", *rooms)
	case *rate < 0:
		return usagef("--rate must be ≥ 0, got %v", *rate)
	case *rate > 0 && *duration <= 0:
		return usagef("--duration must be positive, got %s", *duration)
	case *grace < 0 || *hold < 0 || *dialTimeout <= 0:
		return usagef("--grace and --hold must be ≥ 0, --dial-timeout positive")
	case *dialConc < 1 || *inFlight < 1:
		return usagef("--dial-concurrency and --max-in-flight must be at least 1")
	}
	if len(urls) == 0 {
		urls = config.List{bench.DefaultURL}
	}

	log := config.NewLogger(env.stderr, "text", "info") // progress; the report goes to standard output
	rep, err := bench.Run(ctx, bench.Config{
		URLs: urls, NATSURL: *natsURL, Prefix: *prefix, Token: *token, AdminURL: *admin,
		Conns: *conns, Rooms: *rooms, Rate: *rate, Duration: *duration, Grace: *grace, Hold: *hold,
		DialConcurrency: *dialConc, DialTimeout: *dialTimeout, MaxInFlight: *inFlight,
		Logger: log,
	})
	if rep != nil {
		if perr := printReport(env, rep, *asJSON); perr != nil {
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
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	_, err = fmt.Fprintf(env.stdout, "%s\n", b)
	return err
}
