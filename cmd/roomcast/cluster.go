package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/roomcast/roomcast/internal/bench"
)

// clusterFlags are bench's flags for the cluster scenario.
type clusterFlags struct {
	natsServers *int
	edges       *int
	generators  *int
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	c.natsServers = fs.Int("nats-servers", bench.DefaultClusterNATS, "cluster scenario: roomcast's NATS JetStream servers in one cluster (the stream has up to 3 replicas)")
	c.edges = fs.Int("edges", bench.DefaultClusterEdges, "cluster scenario: roomcast edges, edge i on NATS server i mod --nats-servers; the reference runs as many nats-servers in one cluster")
	c.generators = fs.Int("generators", bench.DefaultClusterGenerators, fmt.Sprintf("cluster scenario: load generator processes sharing --conns (at most %d each), generator k on edge k mod --edges", bench.MaxConns))
}

// names are the flags only the cluster scenario uses.
func (c *clusterFlags) names() []string { return []string{"nats-servers", "edges", "generators"} }

// configure sets the cluster scenario's shape and how it starts, from exe:
// the generators on cfg.Cores.Clients, beside the bench itself, and the
// servers on cfg.Cores.Servers.
func (c *clusterFlags) configure(cfg *bench.ScenarioConfig, exe string, set map[string]bool) error {
	if cfg.Scenario != bench.ScenarioCluster {
		for _, name := range c.names() {
			if set[name] {
				return usagef("--%s is for the cluster scenario", name)
			}
		}
		return nil
	}
	cfg.Shape = bench.ClusterShape{NATS: *c.natsServers, Edges: *c.edges, Generators: *c.generators, Conns: cfg.Conns}
	conns := cfg.Conns
	if conns == 0 {
		conns = bench.DefaultClusterConns
	}
	shape := cfg.Shape
	shape.Conns = conns
	if err := shape.Validate(); err != nil {
		return usageError{err}
	}
	cores := cfg.Cores
	cfg.StartCluster = func(ctx context.Context, target string, shape bench.ClusterShape) (*bench.Cluster, error) {
		return bench.StartCluster(ctx, exe, target, shape, cores)
	}
	cfg.Logger.Info("cluster scenario", "cores", cores.String(), "nats_servers", shape.NATS, "edges", shape.Edges,
		"generators", shape.Generators, "connections", conns)
	return nil
}

// runGenerator is the hidden `roomcast bench-generator`: a load generator
// of the cluster scenario, which a bench starts as a child process and
// drives through its standard input and output.
func runGenerator(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "bench-generator", "")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	return bench.RunGenerator(ctx, env.stdin, env.stdout)
}
