package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The cluster scenario (issue 23) runs a whole cluster on this machine:
// for roomcast, NATS JetStream servers in one cluster (the stream with up
// to 3 replicas) and edges, edge i on NATS server i mod NATS; for the
// reference, as many nats-servers with WebSocket listeners in one cluster
// as roomcast has edges. The same generator processes connect to either.

// Defaults of ClusterShape.
const (
	DefaultClusterNATS       = 3
	DefaultClusterEdges      = 5
	DefaultClusterGenerators = 5
	DefaultClusterConns      = 95_000
)

// ClusterShape is the processes of the cluster scenario.
type ClusterShape struct {
	NATS       int `json:"nats_servers"` // roomcast's NATS servers; the stream's replicas are up to 3 of them
	Edges      int `json:"edges"`        // roomcast's edges, and the reference's nats-servers
	Generators int `json:"generators"`   // load generator processes; generator k connects to edge k mod Edges
	Conns      int `json:"connections"`  // over all generators
}

func (s *ClusterShape) withDefaults() {
	for _, f := range []struct {
		v *int
		d int
	}{{&s.NATS, DefaultClusterNATS}, {&s.Edges, DefaultClusterEdges}, {&s.Generators, DefaultClusterGenerators}, {&s.Conns, DefaultClusterConns}} {
		if *f.v == 0 {
			*f.v = f.d
		}
	}
}

// Validate reports every problem of s (after defaults) at once.
func (s *ClusterShape) Validate() error {
	var errs []error
	if s.NATS < 1 || s.NATS > 5 || s.Edges < 1 || s.Edges > 16 || s.Generators < 1 || s.Generators > 16 {
		errs = append(errs, fmt.Errorf("cluster: want 1 to 5 NATS servers, 1 to 16 edges and generators, got %d, %d, %d", s.NATS, s.Edges, s.Generators))
	}
	if s.Conns < s.Generators || s.Conns > s.Generators*MaxConns {
		errs = append(errs, fmt.Errorf("cluster: want %d to %d connections (at most %d per generator), got %d", s.Generators, s.Generators*MaxConns, MaxConns, s.Conns))
	}
	return errors.Join(errs...)
}

// Cluster is a target's servers and the generators connected to them.
type Cluster struct {
	*Servers // every server process; Target is the target's
	Layout   ClusterLayout
	Edges    []int // pids of the edges (the reference: its nats-servers)
	NATS     []int // pids of roomcast's NATS servers (the reference: none)
	// Subscribed and Failed count the generators' connections.
	Subscribed, Failed int
	gens               []*generatorProc
}

// Close ends the generators, then the servers.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, g := range c.gens {
		wg.Go(g.close)
	}
	wg.Wait()
	c.gens = nil
	c.Servers.Close()
}

// protocol is what the target's clients speak.
func (c *Cluster) protocol() string {
	if c.Target == TargetNATS {
		return ProtocolNATS
	}
	return ProtocolRoomcast
}

// StartCluster starts target's servers from exe pinned to cores.Servers,
// then shape.Generators generators pinned to cores.Clients, and returns
// once every generator has connected (some connections may have failed:
// Failed).
func StartCluster(ctx context.Context, exe, target string, shape ClusterShape, cores Cores) (*Cluster, error) {
	shape.withDefaults()
	if err := shape.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{Servers: &Servers{Target: target, cpus: cores.Servers}, Layout: NewClusterLayout(shape.Conns)}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	var wsURLs []string
	switch target {
	case TargetNATS:
		ready, pids, err := c.startNATSCluster(ctx, exe, shape.Edges, func(int) []string { return []string{"--websocket"} })
		if err != nil {
			return nil, err
		}
		for _, r := range ready {
			wsURLs = append(wsURLs, r.WSURL)
		}
		c.NATSURL, c.Edges = ready[0].NATSURL, pids
	case TargetRoomcast:
		urls, err := c.startRoomcast(ctx, exe, shape)
		if err != nil {
			return nil, err
		}
		wsURLs = urls
	default:
		return nil, fmt.Errorf("unknown target %q", target)
	}
	c.WSURL, c.PID = wsURLs[0], c.Edges[0]
	if err := c.startGenerators(ctx, exe, cores.Clients, shape, wsURLs); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// startRoomcast starts the NATS JetStream cluster and the edges, and
// returns the edges' WebSocket URLs.
func (c *Cluster) startRoomcast(ctx context.Context, exe string, shape ClusterShape) ([]string, error) {
	dir, err := os.MkdirTemp("", "roomcast-bench-")
	if err != nil {
		return nil, fmt.Errorf("JetStream storage: %w", err)
	}
	c.dir = dir
	ready, pids, err := c.startNATSCluster(ctx, exe, shape.NATS, func(i int) []string {
		return []string{"--jetstream", filepath.Join(dir, "n"+strconv.Itoa(i))}
	})
	if err != nil {
		return nil, err
	}
	c.NATSURL, c.NATS = ready[0].NATSURL, pids
	replicas := strconv.Itoa(min(3, shape.NATS))
	var urls []string
	for i := range shape.Edges { // one after the other: the first creates the stream
		// No rebalancing: each generator holds its connections on its edge,
		// balanced once all are connected, but not while they connect.
		e, err := c.startEdgeOn(ctx, exe, ready[i%len(ready)].NATSURL, "--stream-replicas", replicas, "--rebalance=false")
		if err != nil {
			return nil, err
		}
		urls = append(urls, e.WSURL)
		c.Edges = append(c.Edges, e.PID)
		if i == 0 {
			c.AdminURL = e.AdminURL
		}
	}
	return urls, nil
}

// startNATSCluster starts n `bench-nats-server` children routed to each
// other (one alone when n is 1), all at once: a clustered JetStream server
// is ready only once its peers are up. extra are server i's own flags.
func (c *Cluster) startNATSCluster(ctx context.Context, exe string, n int, extra func(i int) []string) ([]NATSServerReady, []int, error) {
	routes, err := freeRoutes(n)
	if err != nil {
		return nil, nil, err
	}
	ready := make([]NATSServerReady, n)
	children := make([]*child, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		args := append([]string{"bench-nats-server", "--name", "n" + strconv.Itoa(i)}, extra(i)...)
		if n > 1 {
			args = append(args, "--cluster", "bench", "--cluster-listen", strings.TrimPrefix(routes[i], "nats://"),
				"--routes", strings.Join(routes, ","))
		}
		wg.Go(func() {
			children[i], errs[i] = startChild(ctx, exe, c.cpus, args, func(line []byte) bool {
				return json.Unmarshal(line, &ready[i]) == nil && ready[i].NATSURL != ""
			})
		})
	}
	wg.Wait()
	pids := make([]int, 0, n)
	for _, ch := range children {
		if ch != nil {
			c.children = append(c.children, ch)
			pids = append(pids, ch.cmd.Process.Pid)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("start the NATS cluster: %w", err)
	}
	return ready, pids, nil
}

// freeRoutes is n loopback route URLs on ports free a moment ago.
func freeRoutes(n int) ([]string, error) {
	routes := make([]string, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster port: %w", err)
		}
		routes[i] = "nats://" + ln.Addr().String()
		defer ln.Close() // held until all are picked, so no two are the same
	}
	return routes, nil
}

// clusterDialTimeout bounds a generator's connect and subscribes: longer
// than a single bench's, since 95,000 connect to servers sharing a core.
const clusterDialTimeout = time.Minute

// startGenerators starts the generators, generator k on wsURLs[k mod
// len], and waits until each has connected its share.
func (c *Cluster) startGenerators(ctx context.Context, exe string, cpus []int, shape ClusterShape, wsURLs []string) error {
	for k := range shape.Generators {
		g, err := startGenerator(ctx, exe, cpus, GeneratorSetup{
			Protocol: c.protocol(), URL: wsURLs[k%len(wsURLs)], Index: k, Generators: shape.Generators, Layout: c.Layout,
			DialTimeout: clusterDialTimeout,
		})
		if err != nil {
			return err
		}
		c.gens = append(c.gens, g)
	}
	for k, g := range c.gens {
		rep, err := g.await(ctx, genReady, generatorConnectTimeout)
		if err != nil {
			return fmt.Errorf("generator %d: %w", k, err)
		}
		c.Subscribed += rep.Subscribed
		c.Failed += rep.Failed
		if rep.Failed > 0 && len(rep.Errors) > 0 {
			return fmt.Errorf("generator %d: %d connections failed, first: %s", k, rep.Failed, rep.Errors[0].Example)
		}
	}
	return nil
}
