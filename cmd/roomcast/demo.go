package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/demo"
	"github.com/roomcast/roomcast/internal/events"
	"github.com/roomcast/roomcast/internal/lograte"
)

func runDemo(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "demo", "")
	natsURL := fs.String("nats", nats.DefaultURL, "NATS URLs, comma-separated (serve's embedded NATS listens on "+nats.DefaultURL+")")
	prefix := fs.String("subject-prefix", bus.DefaultPrefix, "NATS subject prefix")
	var cfg demo.Config
	fs.IntVar(&cfg.Pools, "pools", demo.DefaultPools, "pools p1..pN, rooms pool:p1..")
	fs.IntVar(&cfg.Workers, "workers", demo.DefaultWorkers, "workers per pool at the start")
	fs.IntVar(&cfg.Workflows, "workflows", demo.DefaultWorkflows, "workflows running at once, rooms workflow:w1..")
	fs.Float64Var(&cfg.Rate, "rate", demo.DefaultRate, "events per second over everything")
	fs.IntVar(&cfg.Events, "events", 0, "stop after this many events (0: until interrupted)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	auth := config.RegisterNATSAuth(fs)
	if err := parseFlags(fs, env, args, nil); err != nil {
		return err
	}
	if err := auth.Load(env.getenv); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if cfg.Pools == 0 || cfg.Workers == 0 || cfg.Rate == 0 {
		return usagef("--pools, --workers and --rate must be positive")
	}
	if *duration < 0 {
		return usagef("--duration: want 0 (no end) or more, got %s", *duration)
	}
	// The demo must ride out a node's restart: it reconnects for ever,
	// and Retrying keeps each event's publish going (docs/protocol.md 6.7).
	b, closeBus, err := publishingBus(*natsURL, *prefix, "roomcast demo", 10*time.Second, auth,
		nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer closeBus()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	fmt.Fprintf(env.stderr, "publishing a simulated pool system to %s at %v events/s: rooms pool:p1..p%d, workflow:w1..; watch with `roomcast tail pool:p1` or the dashboard\n",
		*natsURL, cfg.Rate, cfg.Pools)
	store := events.NewRetrying(b, demoRetryLog(env))
	var stats demo.Stats
	err = demo.Run(ctx, cfg, events.NewPublisher(store), &stats)
	printDemoStats(env, &stats, store.Stats())
	return err
}

// demoRetryLog says on stderr when publishing fails and is retried (at
// most a line every 5 s, with the retries held back), and when it works
// again.
func demoRetryLog(env *environment) events.RetryOptions {
	limit := lograte.New(5*time.Second, nil)
	return events.RetryOptions{
		OnRetry: func(err error, wait time.Duration) {
			ok, skipped := limit.Allow()
			if !ok {
				return
			}
			held := ""
			if skipped > 0 {
				held = fmt.Sprintf(" (%d retries since the last line)", skipped)
			}
			fmt.Fprintf(env.stderr, "demo: publish failed, retrying in %s%s: %v\n", wait, held, err)
		},
		OnRecovered: func(retries int, after time.Duration) {
			fmt.Fprintf(env.stderr, "demo: publishing again, after %d retries over %s\n", retries, after.Round(time.Millisecond))
		},
	}
}

// printDemoStats prints how many events of each kind were published,
// and what publishing retried and gave up.
func printDemoStats(env *environment, stats *demo.Stats, retry events.RetryStats) {
	counts := stats.Counts()
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(env.stdout, "%-26s %d\n", name, counts[name])
	}
	fmt.Fprintf(env.stdout, "%-26s %d\n", "retried publishes", retry.Retries)
	fmt.Fprintf(env.stdout, "%-26s %d\n", "stored after retries", retry.Recovered)
	fmt.Fprintf(env.stdout, "%-26s %d\n", "given up", stats.GaveUp())
}
