package conformance_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// nodeWait bounds a node's start and stop: two busy cores, a race-built
// test process and a browser beside it.
const nodeWait = 45 * time.Second

// node is one `roomcast serve` process on fixed loopback ports, so that a
// restarted node is found where the old one was.
type node struct {
	t      testing.TB
	name   string
	listen string // the WebSocket address
	admin  string // the admin address: /readyz, /metrics
	args   []string
	log    *os.File // the process's output, shown when the test fails

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// startNode starts a node on natsURL with extra serve flags, and waits
// until it is ready.
func startNode(t testing.TB, name, natsURL string, extra ...string) *node {
	t.Helper()
	return startNodeAt(t, name, natsURL, true, extra...)
}

// startNodeAt is startNode that, without run, only chooses the node's
// addresses: restart starts it.
func startNodeAt(t testing.TB, name, natsURL string, run bool, extra ...string) *node {
	t.Helper()
	log, err := os.Create(filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, name: name, listen: freeAddr(t), admin: freeAddr(t), log: log}
	n.args = append([]string{"serve", "--listen", n.listen, "--admin-listen", n.admin,
		"--nats", natsURL, "--drain-timeout", "3s"}, extra...)
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			n.dumpLog()
		}
		_ = log.Close()
	})
	if run {
		n.start()
	}
	return n
}

// URL is the node's WebSocket URL at path ("" or "/ws").
func (n *node) URL(path string) string { return "ws://" + n.listen + path }

// start runs the process and waits for /readyz.
func (n *node) start() {
	n.t.Helper()
	fmt.Fprintf(n.log, "--- start %s\n", strings.Join(n.args, " "))
	n.cmd = exec.Command(nodeBinary, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start node %s: %v", n.name, err)
	}
	done := make(chan struct{})
	n.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(n.cmd)
	natstest.WaitFor(n.t, nodeWait, func() error {
		select {
		case <-done:
			return fmt.Errorf("node %s exited at start (its log follows the failure)", n.name)
		default:
		}
		resp, err := http.Get("http://" + n.admin + "/readyz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("node %s: /readyz %d", n.name, resp.StatusCode)
		}
		return nil
	})
}

// stop ends the node as Kubernetes does: SIGTERM (a drain: its clients
// are told server.draining, then closed with 1001), then the wait.
func (n *node) stop() { n.signal(syscall.SIGTERM) }

// kill ends the node with SIGKILL: no drain, no close frames.
func (n *node) kill() { n.signal(syscall.SIGKILL) }

func (n *node) signal(sig syscall.Signal) {
	n.t.Helper()
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(nodeWait):
		_ = n.cmd.Process.Kill()
		n.t.Fatalf("node %s did not exit within %s of %v", n.name, nodeWait, sig)
	}
}

// restart starts the stopped or killed node again, on the same ports.
func (n *node) restart() {
	n.t.Helper()
	n.start()
}

func (n *node) dumpLog() {
	b, err := os.ReadFile(n.log.Name())
	if err != nil {
		return
	}
	const keep = 8 << 10
	if len(b) > keep {
		b = b[len(b)-keep:]
	}
	n.t.Logf("node %s, the end of its log:\n%s", n.name, b)
}

// metric sums the samples of the node's /metrics named name whose labels
// include every one of labels (servertest.Metric).
func (n *node) metric(name string, labels ...string) (float64, error) {
	return servertest.Metric(n.admin, name, labels...)
}

// freeAddr is a loopback address with a port free now.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// natsFor starts the NATS server a scenario's nodes share: it outlives
// their restarts and kills, keeping the stream.
func natsFor(t testing.TB) *server.Server {
	t.Helper()
	return natstest.RunServer(t)
}

// secretFile writes an HMAC secret for --jwt-secret-file.
func secretFile(t testing.TB, secret []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwt-secret")
	if err := os.WriteFile(p, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
