package server_test

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
)

// The NATS server an edge is connected to stops answering without closing
// the connection (a frozen process, a host or a network gone silent; the
// integration tests' SIGSTOP): the edge notices by its unanswered pings,
// moves to another server of the cluster, and delivers again within
// seconds. With nats.go's default pings (every 2 minutes, stale after two
// unanswered) it sat on the dead connection for 6 minutes, not ready and
// its clients without events, while the rest of the cluster was fine.
func TestFrozenNATSServerIsLeft(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node JetStream cluster; skipped with -short")
	}
	cluster := natstest.RunCluster(t, 3)
	// The edge reaches the first server through a proxy that can go
	// silent, and learns the others from the cluster.
	p := startBlackhole(t, cluster.Servers[0].Addr().String())
	edge := startNode(t, nil, func(c *config.Serve) {
		c.NATS = config.List{"nats://" + p.addr()}
		c.StreamReplicas = 3
	})
	c := dial(t, edge)
	const room = "pool:ha" // publishWithRetry's
	subscribeWhenAvailable(t, c, room)
	js := clusterPublisher(t, []string{cluster.Servers[1].ClientURL(), cluster.Servers[2].ClientURL()})

	p.silence()
	silenced := time.Now()
	if err := publishWithRetry(js, room, 0); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(45 * time.Second))
	if err != nil {
		t.Fatalf("no event within 45 s of the edge's NATS server going silent: %v", err)
	}
	if n := counterOf(t, m); n != 0 {
		t.Fatalf("event with counter %d, want 0", n)
	}
	t.Logf("the event reached the client %v after the server went silent", time.Since(silenced).Round(time.Millisecond))
	waitReady(t, edge.AdminAddr(), http.StatusOK)
	if edge.NATSConn().ConnectedAddr() == p.addr() {
		t.Fatal("the edge is still connected through the silent proxy")
	}
}

// blackhole is a TCP proxy that, once silenced, forwards nothing more in
// either direction and answers no new connection, closing none: what a
// client sees of a server that froze or a network that dropped it.
type blackhole struct {
	ln     net.Listener
	target string
	quiet  chan struct{} // closed by silence
	done   chan struct{} // closed at the end of the test

	mu    sync.Mutex
	conns []net.Conn // guarded by mu
}

func startBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackhole{ln: ln, target: target, quiet: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		close(p.done)
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	go p.accept()
	return p
}

func (p *blackhole) addr() string { return p.ln.Addr().String() }

// silence stops all forwarding.
func (p *blackhole) silence() { close(p.quiet) }

func (p *blackhole) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// pipe copies from src to dst until silenced, then swallows what src
// sends, so the sender's writes never block and nothing ever arrives.
func (p *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.quiet:
			default:
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			<-p.done // a silent network passes no close either
			return
		}
	}
}
