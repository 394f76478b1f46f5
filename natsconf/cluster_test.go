package natsconf_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	neturl "net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natsembed"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// tls/single-tls.conf serves clients over TLS only: a roomcast node with
// --nats-tls-ca creates its stream through it and a worker stores events.
func TestSingleTLS(t *testing.T) {
	const edgePassword = "5e0d9b3c7a1f2468"
	setEnv(t)
	t.Setenv(edgeEnv, edgePassword)
	t.Setenv(publisherEnv, publisherHash)
	dir, certs := copyConfigs(t)
	ns := startServer(t, filepath.Join(dir, "tls", "single-tls.conf"))
	caFile := filepath.Join(certs, "ca.pem")
	url := "tls://" + ns.Addr().String()

	// The server's greeting tells clients TLS is required (nats.go then
	// upgrades even a nats:// URL, so a client cannot show it).
	raw, err := net.DialTimeout("tcp", ns.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	info, err := bufio.NewReader(raw).ReadString('\n')
	raw.Close()
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("greeting %q (%v), want TLS required", info, err)
	}
	servertest.Start(t, nil, func(c *config.Serve) {
		c.NATS = config.List{url}
		c.NATSAuth.User, c.NATSAuth.Password = "edge", edgePassword
		c.NATSAuth.TLSCA = caFile
	})
	pub, _ := connect(t, url, "publisher", publisherPassword, nats.RootCAs(caFile))
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "roomcast.rooms.pool.p1", []byte(`{"event":"e","data":{}}`)); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
}

// cluster.conf and tls/cluster-tls.conf form clusters (whose routes, with
// TLS, verify each other's certificates), from which a roomcast node with a
// stream of three replicas serves a room as the edge user.
func TestClusters(t *testing.T) {
	for _, file := range []string{"cluster.conf", "tls/cluster-tls.conf"} {
		t.Run(file, func(t *testing.T) { testCluster(t, file, confFiles[file].tls) })
	}
}

func testCluster(t *testing.T, file string, useTLS bool) {
	const edgePassword = "b7d2e9f04c1a6358"
	setEnv(t)
	t.Setenv(edgeEnv, edgePassword)
	t.Setenv(publisherEnv, publisherHash)
	dir, certs := copyConfigs(t)
	caFile := filepath.Join(certs, "ca.pem")
	servers := startCluster(t, filepath.Join(dir, file))
	var urls []string
	var tlsOpts []nats.Option
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	if useTLS {
		for i := range urls {
			urls[i] = strings.Replace(urls[i], "nats://", "tls://", 1)
		}
		tlsOpts = append(tlsOpts, nats.RootCAs(caFile))
	}

	nodeLog := &servertest.SyncBuffer{}
	node := servertest.StartLogged(t, nil, func(c *config.Serve) {
		c.NATS = urls
		c.NATSAuth.User, c.NATSAuth.Password = "edge", edgePassword
		if useTLS {
			c.NATSAuth.TLSCA = caFile
		}
		c.StreamReplicas = 3
	}, slog.New(slog.NewTextHandler(nodeLog, &slog.HandlerOptions{Level: slog.LevelWarn})))
	const roomName = "pool:p1"
	ws := dialRoom(t, servertest.WSURL(node), roomName, nil)

	// The worker publishes to another server than the first.
	pub, _ := connect(t, urls[2], "publisher", publisherPassword, tlsOpts...)
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, "roomcast.rooms.pool.p1", []byte(`{"event":"e","data":{}}`))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := readEvent(t, ws); got.Seq != ack.Sequence {
		t.Fatalf("the node's client got %+v, want seq %d", got, ack.Sequence)
	}
	since := uint64(0)
	if got := readEvent(t, dialRoom(t, servertest.WSURL(node), roomName, &since)); got.Seq != ack.Sequence {
		t.Fatalf("replayed %+v, want seq %d", got, ack.Sequence)
	}
	edge, _ := connect(t, urls[1], "edge", edgePassword, append(tlsOpts, nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix))...)
	ejs, err := jetstream.New(edge)
	if err != nil {
		t.Fatal(err)
	}
	// Asked again when unanswered, as a client does: a stream info
	// request meets no stream leader while the stream elects one (under a
	// loaded CI run, the first ask once went unanswered for 30 s).
	natstest.WaitFor(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := ejs.Stream(ctx, bus.DefaultStream)
		if err != nil {
			return fmt.Errorf("stream info as edge: %w", err)
		}
		if info := st.CachedInfo(); info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
			return fmt.Errorf("stream cluster %+v, want a leader and two replicas", info.Cluster)
		}
		return nil
	})
	if s := nodeLog.String(); strings.Contains(strings.ToLower(s), "permission") || strings.Contains(s, "NATS error") {
		t.Errorf("the node hit NATS errors:\n%s", s)
	}
}

// startCluster runs three servers of a cluster configuration file, named
// nats-0..2 through NATS_SERVER_NAME, on free loopback ports (the routes
// rewritten to them), and waits for JetStream's meta leader.
func startCluster(t *testing.T, file string) []*server.Server {
	t.Helper()
	const n = 3
	var routes []*neturl.URL
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, &neturl.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		t.Setenv(serverNameEnv, fmt.Sprintf("nats-%d", i))
		opts, err := server.ProcessConfigFile(file)
		if err != nil {
			t.Fatal(err)
		}
		opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", ports[i]
		opts.Routes = routes
		opts.StoreDir = t.TempDir()
		opts.NoSigs, opts.NoLog = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("%s: %v", opts.ServerName, err)
		}
		servers[i] = s
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		go s.Start() // a clustered JetStream server is ready once its peers are up
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("%s not ready", s.Name())
		}
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		leader := false
		for _, s := range servers {
			if s.NumRoutes() < n-1 {
				return fmt.Errorf("%s has %d routes", s.Name(), s.NumRoutes())
			}
			leader = leader || s.JetStreamIsLeader()
		}
		if !leader {
			return errors.New("no JetStream meta leader")
		}
		return nil
	})
	return servers
}
