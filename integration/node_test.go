package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The container ports of a node, as the image exposes them.
const (
	wsPort    = "8690/tcp"
	adminPort = "9090/tcp"
	natsPort  = "4222/tcp"
)

// loopback is the only host address container ports are published on.
var loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// node is one roomcast edge node running in a container, with the URLs of
// its ports as mapped on the host's loopback interface.
type node struct {
	ctr      *testcontainers.DockerContainer
	wsURL    string // ws://127.0.0.1:port/
	adminURL string // http://127.0.0.1:port
	natsURL  string // nats://127.0.0.1:port
}

// startNode starts `roomcast serve` with args in a container of image and
// returns once /readyz answers 200 through the mapped admin port. The
// container is terminated (stopped and removed) when the test ends, pass or
// fail; if the test failed, its log is printed first.
func startNode(ctx context.Context, t *testing.T, image string, env map[string]string, args ...string) *node {
	t.Helper()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithLogger(tclog.TestLogger(t)),
		testcontainers.WithEnv(env),
		testcontainers.WithCmdArgs(args...),
		testcontainers.WithExposedPorts(wsPort, adminPort, natsPort),
		testcontainers.WithHostConfigModifier(publishOnLoopback(wsPort, adminPort, natsPort)),
		testcontainers.WithWaitStrategyAndDeadline(90*time.Second,
			wait.ForHTTP("/readyz").WithPort(adminPort).WithForcedIPv4LocalHost().
				WithPollInterval(100*time.Millisecond)),
	)
	t.Cleanup(func() {
		if ctr == nil {
			return
		}
		if t.Failed() {
			dumpLogs(t, ctr)
		}
		if err := testcontainers.TerminateContainer(ctr); err != nil {
			t.Errorf("terminate container %s: %v", ctr.GetContainerID(), err)
		}
	})
	if err != nil {
		t.Fatalf("start roomcast container: %v", err)
	}
	n := &node{ctr: ctr}
	n.wsURL = "ws://" + hostAddr(ctx, t, ctr, wsPort) + "/"
	n.adminURL = "http://" + hostAddr(ctx, t, ctr, adminPort)
	n.natsURL = "nats://" + hostAddr(ctx, t, ctr, natsPort)
	return n
}

// publishOnLoopback binds each port to a free port of 127.0.0.1 only
// (Docker's default is every interface of the host).
func publishOnLoopback(ports ...string) func(*container.HostConfig) {
	return func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		for _, p := range ports {
			hc.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: loopback, HostPort: "0"}}
		}
	}
}

// hostAddr returns "127.0.0.1:port" for a container port, after checking
// that Docker published it on loopback and nowhere else.
func hostAddr(ctx context.Context, t *testing.T, ctr *testcontainers.DockerContainer, port string) string {
	t.Helper()
	info, err := ctr.Inspect(ctx)
	if err != nil {
		t.Fatalf("inspect container: %v", err)
	}
	bindings := info.NetworkSettings.Ports[network.MustParsePort(port)]
	if len(bindings) == 0 {
		t.Fatalf("port %s is not published: %v", port, info.NetworkSettings.Ports)
	}
	for _, b := range bindings {
		if !b.HostIP.IsLoopback() {
			t.Fatalf("port %s is published on %v, want loopback only", port, b.HostIP)
		}
	}
	mapped, err := ctr.MappedPort(ctx, port)
	if err != nil {
		t.Fatalf("mapped port of %s: %v", port, err)
	}
	return netip.AddrPortFrom(loopback, mapped.Num()).String()
}

// dumpLogs prints the container's output into the test log.
func dumpLogs(t *testing.T, ctr *testcontainers.DockerContainer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := ctr.Logs(ctx)
	if err != nil {
		t.Logf("container logs: %v", err)
		return
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	t.Logf("container %s logs:\n%s", ctr.GetContainerID(), b)
}

// httpClient talks to the admin port; loopback only, so no proxy.
var httpClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

// get fetches url and returns its status and body.
func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b), err
}

// eventually polls cond every 100 ms until it returns nil or timeout
// passes, then fails the test with cond's last error.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := waitUntil(context.Background(), timeout, what, cond); err != nil {
		t.Fatal(err)
	}
}

// hasLine reports whether text has a line equal to line, as a condition
// for eventually.
func hasLine(text, line string) error {
	for l := range strings.SplitSeq(text, "\n") {
		if strings.TrimSpace(l) == line {
			return nil
		}
	}
	return fmt.Errorf("no line %q", line)
}
