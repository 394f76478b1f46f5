package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The container ports of a NATS server of the cluster (client and
// monitoring; the route port 6222 stays on the private network).
const (
	natsClientPort  = "4222/tcp"
	natsMonitorPort = "8222/tcp"
)

// cluster is a deployment as docs/deployment.md draws
// it, in containers: three NATS servers running natsconf/cluster.conf (a
// JetStream cluster; the edges keep the stream at three replicas) and three
// roomcast edges logged in as user edge, on three Docker networks:
//
//	back       the private network: NATS routes and the edges' NATS
//	           connections, with the network aliases nats-0..2 (the names
//	           cluster.conf routes to) and edge-0..2. Internal: no way out.
//	natsPorts  only the NATS servers: their client and monitoring ports,
//	           published on 127.0.0.1 for the test's publisher and reader.
//	edgePorts  only the edges: their WebSocket and admin ports, published
//	           on 127.0.0.1 for the clients and the probes.
//
// Docker publishes a container's ports through the network of its default
// gateway, which an internal network never is: an edge's ports stay
// reachable while it is cut from back. And the NATS servers' addresses an
// edge learns from their INFO (they listen on every interface) lie on back
// or on natsPorts, which the edges are not on: a cut edge has no way to
// NATS at all.
type cluster struct {
	t                          *testing.T
	docker                     client.APIClient
	edgeImage, natsImage       string
	back, natsPorts, edgePorts *testcontainers.DockerNetwork
	pw                         passwords

	mu    sync.Mutex
	nats  [3]*member // guarded by mu: replaced when the store is wiped
	edges [3]*member
}

// passwords of natsconf/accounts.conf's users, fresh for each cluster.
type passwords struct{ publisher, edge, sys string }

// member is one container of the cluster.
type member struct {
	name string // nats-0, edge-1: its network alias on back
	ctr  *testcontainers.DockerContainer

	mu    sync.Mutex
	addrs map[string]string // guarded by mu: container port → 127.0.0.1:port, as of the last start
}

// addr is the loopback address a container port is published on now.
func (m *member) addr(port string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.addrs[port]
}

// newCluster starts the networks, the three NATS servers and the three
// edges, and returns once every edge is ready (which takes the stream) and
// the stream has all three replicas current. Everything is removed when
// the test ends, pass or fail.
func newCluster(ctx context.Context, t *testing.T, edgeImage, natsImage string) *cluster {
	t.Helper()
	c := &cluster{t: t, docker: shared.provider.Client(), edgeImage: edgeImage, natsImage: natsImage,
		pw: passwords{publisher: secret(), edge: secret(), sys: secret()}}
	for _, nw := range []struct {
		to   **testcontainers.DockerNetwork
		opts []tcnetwork.NetworkCustomizer
	}{
		{&c.back, []tcnetwork.NetworkCustomizer{tcnetwork.WithInternal()}},
		{&c.natsPorts, nil},
		{&c.edgePorts, nil},
	} {
		n, err := tcnetwork.New(ctx, nw.opts...)
		// Registered before the containers' cleanups, so it runs after
		// them: a network in use cannot be removed.
		testcontainers.CleanupNetwork(t, n)
		if err != nil {
			t.Fatalf("create network: %v", err)
		}
		*nw.to = n
	}
	if err := c.each(func(i int) error { return c.runNATS(ctx, i) }); err != nil {
		t.Fatal(err)
	}
	if err := c.each(func(i int) error { return c.runEdge(ctx, i) }); err != nil {
		t.Fatal(err)
	}
	return c
}

// secret is a random password that natsconf/accounts.conf's parser takes
// as a string (letters first: never a number).
func secret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "pw" + hex.EncodeToString(b)
}

// each runs f for 0, 1 and 2 at once and returns their errors.
func (c *cluster) each(f func(i int) error) error {
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { errs[i] = f(i) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runNATS creates and starts NATS server i (a new container, so an empty
// store) and returns once JetStream is enabled on it.
func (c *cluster) runNATS(ctx context.Context, i int) error {
	name := fmt.Sprintf("nats-%d", i)
	m, err := c.run(ctx, name, c.natsImage, []string{natsClientPort, natsMonitorPort},
		wait.ForHTTP("/healthz?js-enabled-only=true").WithPort(natsMonitorPort),
		testcontainers.WithEnv(map[string]string{
			"NATS_SERVER_NAME":            name,
			"ROOMCAST_PUBLISHER_PASSWORD": c.pw.publisher,
			"ROOMCAST_EDGE_PASSWORD":      c.pw.edge,
			"ROOMCAST_SYS_PASSWORD":       c.pw.sys,
		}),
		tcnetwork.WithNetwork(nil, c.natsPorts),
		tcnetwork.WithNetwork([]string{name}, c.back))
	c.mu.Lock()
	c.nats[i] = m
	c.mu.Unlock()
	return err
}

// wipe removes the three NATS servers, their stores with them, and starts
// three new ones under the same names: a cluster started empty.
func (c *cluster) wipe(ctx context.Context) error {
	err := c.each(func(i int) error {
		m := c.natsMember(i)
		err := testcontainers.TerminateContainer(m.ctr, testcontainers.StopTimeout(10*time.Second))
		m.ctr = nil // gone: nothing for the cleanup to remove
		return err
	})
	if err != nil {
		return fmt.Errorf("remove the NATS servers: %w", err)
	}
	return c.each(func(i int) error { return c.runNATS(ctx, i) })
}

// edgeNATSURLs is what every edge is given: all three servers, by the
// names cluster.conf's routes use.
const edgeNATSURLs = "nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222"

// runEdge creates and starts edge i, as docs/deployment.md deploys one on a NATS
// cluster, and returns once its /readyz says 200.
func (c *cluster) runEdge(ctx context.Context, i int) error {
	name := fmt.Sprintf("edge-%d", i)
	m, err := c.run(ctx, name, c.edgeImage, []string{wsPort, adminPort},
		wait.ForHTTP("/readyz").WithPort(adminPort),
		testcontainers.WithCmdArgs(
			"--nats", edgeNATSURLs, "--nats-user", "edge", "--stream-replicas", "3",
			"--allow-anonymous", "--server-name", name, "--drain-timeout", "3s"),
		testcontainers.WithEnv(map[string]string{"ROOMCAST_NATS_PASSWORD": c.pw.edge}),
		tcnetwork.WithNetwork(nil, c.edgePorts),
		tcnetwork.WithNetwork([]string{name}, c.back))
	c.mu.Lock()
	c.edges[i] = m
	c.mu.Unlock()
	return err
}

// run creates and starts a container with ports published on loopback,
// waiting for ready, and terminates it when the test ends (printing the
// end of its log first if the test failed).
func (c *cluster) run(ctx context.Context, name, image string, ports []string, ready *wait.HTTPStrategy,
	opts ...testcontainers.ContainerCustomizer) (*member, error) {
	opts = append(opts,
		testcontainers.WithLogger(tclog.NewNoopLogger()),
		testcontainers.WithExposedPorts(ports...),
		testcontainers.WithHostConfigModifier(publishOnLoopback(ports...)),
		testcontainers.WithWaitStrategyAndDeadline(90*time.Second,
			ready.WithForcedIPv4LocalHost().WithPollInterval(100*time.Millisecond)))
	ctr, err := testcontainers.Run(ctx, image, opts...)
	m := &member{name: name, ctr: ctr}
	c.t.Cleanup(func() { c.remove(m) })
	if err != nil {
		return m, fmt.Errorf("start %s: %w", name, err)
	}
	return m, c.refresh(ctx, m, ports)
}

// remove terminates a member's container, quickly: the cluster is thrown
// away, nothing needs a graceful stop. A container stopped by SIGSTOP is
// killed all the same. If the test failed, or ROOMCAST_INTEGRATION_LOGS=1,
// the end of the container's log is printed first.
func (c *cluster) remove(m *member) {
	if m.ctr == nil {
		return
	}
	if c.t.Failed() || os.Getenv("ROOMCAST_INTEGRATION_LOGS") == "1" {
		c.t.Logf("%s: end of its log:\n%s", m.name, logTail(m.ctr, 150))
	}
	if err := testcontainers.TerminateContainer(m.ctr, testcontainers.StopTimeout(time.Second)); err != nil {
		c.t.Errorf("terminate %s: %v", m.name, err)
	}
}

// logTail is the last n lines of a container's output.
func logTail(ctr *testcontainers.DockerContainer, n int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// refresh reads where the member's ports are published: anew at every
// start, since each start maps them to new host ports.
func (c *cluster) refresh(ctx context.Context, m *member, ports []string) error {
	info, err := m.ctr.Inspect(ctx)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", m.name, err)
	}
	addrs := make(map[string]string, len(ports))
	for _, p := range ports {
		bindings := info.NetworkSettings.Ports[network.MustParsePort(p)]
		if len(bindings) == 0 {
			return fmt.Errorf("%s: port %s is not published", m.name, p)
		}
		for _, b := range bindings {
			if !b.HostIP.IsLoopback() {
				return fmt.Errorf("%s: port %s is published on %v, want loopback only", m.name, p, b.HostIP)
			}
		}
		mapped, err := m.ctr.MappedPort(ctx, p)
		if err != nil {
			return fmt.Errorf("%s: mapped port %s: %w", m.name, p, err)
		}
		addrs[p] = netip.AddrPortFrom(loopback, mapped.Num()).String()
	}
	m.mu.Lock()
	m.addrs = addrs
	m.mu.Unlock()
	return nil
}

// start starts a stopped or killed member again (same container, same
// store) and waits for it to be ready.
func (c *cluster) start(ctx context.Context, m *member) error {
	if err := m.ctr.Start(ctx); err != nil {
		return fmt.Errorf("start %s again: %w", m.name, err)
	}
	ports := []string{natsClientPort, natsMonitorPort}
	if strings.HasPrefix(m.name, "edge") {
		ports = []string{wsPort, adminPort}
	}
	return c.refresh(ctx, m, ports)
}

// stop stops a member as `docker stop` does: SIGTERM, then SIGKILL after
// timeout. It returns the exit code.
func (c *cluster) stop(ctx context.Context, m *member, timeout time.Duration) (int, error) {
	if err := m.ctr.Stop(ctx, &timeout); err != nil {
		return -1, fmt.Errorf("stop %s: %w", m.name, err)
	}
	info, err := m.ctr.Inspect(ctx)
	if err != nil {
		return -1, err
	}
	return info.State.ExitCode, nil
}

// signal sends sig (SIGKILL, SIGSTOP, SIGCONT) to a member's process.
// After SIGKILL it waits until Docker sees the container exited.
func (c *cluster) signal(ctx context.Context, m *member, sig string) error {
	if _, err := c.docker.ContainerKill(ctx, m.ctr.GetContainerID(), client.ContainerKillOptions{Signal: sig}); err != nil {
		return fmt.Errorf("%s to %s: %w", sig, m.name, err)
	}
	if sig != "SIGKILL" {
		return nil
	}
	return waitUntil(ctx, 30*time.Second, m.name+" exited", func() error {
		st, err := m.ctr.State(ctx)
		switch {
		case err != nil:
			return err
		case st.Running:
			return errors.New("still running")
		}
		return nil
	})
}

// cut disconnects an edge from the private network: it loses NATS, and
// keeps its clients (its ports are on edgePorts).
func (c *cluster) cut(ctx context.Context, m *member) error {
	_, err := c.docker.NetworkDisconnect(ctx, c.back.ID, client.NetworkDisconnectOptions{Container: m.ctr.GetContainerID(), Force: true})
	return err
}

// join connects an edge to the private network again, under its alias.
func (c *cluster) join(ctx context.Context, m *member) error {
	_, err := c.docker.NetworkConnect(ctx, c.back.ID, client.NetworkConnectOptions{
		Container: m.ctr.GetContainerID(), EndpointConfig: &network.EndpointSettings{Aliases: []string{m.name}}})
	return err
}

// heal makes the cluster whole after whatever a scenario left (one that
// failed half-way, say): every process running and continued, every edge
// on the private network, and waits until the stream has all its replicas
// current and every edge is ready.
func (c *cluster) heal(ctx context.Context, r *streamReader) error {
	for i := range 3 {
		for _, m := range []*member{c.natsMember(i), c.edge(i)} {
			info, err := m.ctr.Inspect(ctx)
			if err != nil {
				return err
			}
			switch {
			case !info.State.Running:
				err = c.start(ctx, m)
			case strings.HasPrefix(m.name, "nats"):
				err = c.signal(ctx, m, "SIGCONT") // harmless if it was not stopped
			case info.NetworkSettings.Networks[c.back.Name] == nil:
				err = c.join(ctx, m)
			}
			if err != nil {
				return err
			}
		}
	}
	if err := waitUntil(ctx, time.Minute, "stream healthy", func() error { return r.healthy(ctx) }); err != nil {
		return err
	}
	return c.each(func(i int) error {
		return waitUntil(ctx, time.Minute, fmt.Sprintf("edge-%d ready", i), func() error { return c.ready(ctx, i) })
	})
}

// natsMember returns NATS server i as it is now.
func (c *cluster) natsMember(i int) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nats[i]
}

// edge returns edge i.
func (c *cluster) edge(i int) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.edges[i]
}

// natsByName returns the NATS server of that name.
func (c *cluster) natsByName(name string) (*member, error) {
	for i := range 3 {
		if m := c.natsMember(i); m.name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no NATS server %q", name)
}

// edgeURL is edge i's WebSocket URL now.
func (c *cluster) edgeURL(i int) string { return "ws://" + c.edge(i).addr(wsPort) + "/" }

// adminURL is edge i's admin URL now.
func (c *cluster) adminURL(i int) string { return "http://" + c.edge(i).addr(adminPort) }

// Dial is the test's NATS clients' dialer: they are given the servers by
// the names the edges use (nats://nats-0:4222) and reach each through the
// loopback port its client port is published on at the moment, which
// changes when the server restarts. It implements nats.CustomDialer.
func (c *cluster) Dial(network, address string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	m, err := c.natsByName(host)
	if err != nil {
		return nil, err
	}
	addr := m.addr(natsClientPort)
	if addr == "" {
		return nil, fmt.Errorf("%s is not running", host)
	}
	return (&net.Dialer{Timeout: 2 * time.Second}).Dial(network, addr)
}

// ready reports whether edge i's /readyz says 200, or why not.
func (c *cluster) ready(ctx context.Context, i int) error {
	code, body, err := get(ctx, c.adminURL(i)+"/readyz")
	switch {
	case err != nil:
		return err
	case code != 200:
		return fmt.Errorf("/readyz %d %s", code, strings.TrimSpace(body))
	}
	return nil
}

// natsClients returns, for each NATS server but those in skip (a stopped
// one cannot answer), the names of its client connections (/connz on its
// monitoring port).
func (c *cluster) natsClients(ctx context.Context, skip ...*member) (map[string][]string, error) {
	out := map[string][]string{}
	for i := range 3 {
		m := c.natsMember(i)
		if slices.Contains(skip, m) {
			continue
		}
		_, body, err := get(ctx, "http://"+m.addr(natsMonitorPort)+"/connz?limit=4096")
		if err != nil {
			return nil, fmt.Errorf("%s /connz: %w", m.name, err)
		}
		var connz struct {
			Connections []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		if err := json.Unmarshal([]byte(body), &connz); err != nil {
			return nil, fmt.Errorf("%s /connz: %w", m.name, err)
		}
		out[m.name] = []string{}
		for _, cn := range connz.Connections {
			out[m.name] = append(out[m.name], cn.Name)
		}
	}
	return out, nil
}

// waitUntil polls cond every 100 ms until it returns nil, and returns its
// last error, with what, if timeout passes first.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not within %v: %w", what, timeout, err)
		case <-tick.C:
		}
	}
}
