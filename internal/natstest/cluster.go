package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/natsembed"
)

// Cluster is an in-process NATS cluster with JetStream.
type Cluster struct {
	Servers []*server.Server
}

// RunCluster starts n JetStream servers routed to each other on free
// loopback ports and waits until JetStream has a meta leader. A start that
// fails is tried once more on other ports: a port found free may be taken
// by another test before its server listens, and then the others wait for
// a peer that never comes.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return RunClusterWith(t, n, nil)
}

// RunClusterWith is RunCluster with each server's options changed by edit
// first (how it syncs, say).
func RunClusterWith(t testing.TB, n int, edit func(*natsembed.Options)) *Cluster {
	t.Helper()
	servers, err := startCluster(t, n, edit)
	if err != nil {
		t.Logf("start cluster: %v; trying again on other ports", err)
		if servers, err = startCluster(t, n, edit); err != nil {
			t.Fatalf("start cluster: %v", err)
		}
	}
	c := &Cluster{Servers: servers}
	for _, s := range servers {
		t.Cleanup(s.Shutdown)
	}
	c.waitForMetaLeader(t)
	return c
}

// startCluster starts n routed servers together (a clustered JetStream
// server is ready only once its peers are up); when one fails, it shuts
// down the others.
func startCluster(t testing.TB, n int, edit func(*natsembed.Options)) ([]*server.Server, error) {
	routePorts := make([]int, n)
	routes := make([]string, n)
	for i := range n {
		routePorts[i] = freePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
	}
	servers := make([]*server.Server, n)
	errs := make(chan error, n)
	for i := range n {
		o := natsembed.Options{
			Listen:        "127.0.0.1:-1",
			DataDir:       t.TempDir(),
			ServerName:    fmt.Sprintf("n%d", i),
			Logger:        Quiet,
			ClusterName:   "roomcast-test",
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", routePorts[i]),
			Routes:        routes,
			ReadyTimeout:  30 * time.Second,
		}
		if edit != nil {
			edit(&o)
		}
		go func() {
			s, err := natsembed.Start(o)
			servers[i] = s
			if err != nil {
				err = fmt.Errorf("%s (cluster port %d): %w", o.ServerName, routePorts[i], err)
			}
			errs <- err
		}()
	}
	var failed []error
	for range n {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		for _, s := range servers {
			if s != nil {
				s.Shutdown()
			}
		}
		return nil, errors.Join(failed...)
	}
	return servers, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URLs is every node's client URL, comma-separated, as --nats takes them.
func (c *Cluster) URLs() string {
	var urls []string
	for _, s := range c.Servers {
		urls = append(urls, s.ClientURL())
	}
	return strings.Join(urls, ",")
}

// ServerFor returns the running node whose client URL is url.
func (c *Cluster) ServerFor(url string) *server.Server {
	for _, s := range c.Servers {
		if s.ClientURL() == url {
			return s
		}
	}
	return nil
}

func (c *Cluster) waitForMetaLeader(t testing.TB) {
	t.Helper()
	nc := Connect(t, c.URLs())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, func() error {
		for _, s := range c.Servers {
			if s.NumRoutes() < len(c.Servers)-1 {
				return fmt.Errorf("%s has %d routes", s.Name(), s.NumRoutes())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err
	})
	nc.Close()
}
