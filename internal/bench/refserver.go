package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/floor"
)

// NATSServerOptions configure the NATS server a scenario starts as a child
// process (`roomcast bench-nats-server`): the reference target (with a
// WebSocket listener) or the NATS JetStream server behind the roomcast edge.
type NATSServerOptions struct {
	WebSocket bool   // a WebSocket listener without TLS on a free loopback port
	StoreDir  string // JetStream storage; empty: no JetStream
	// Name is the server's name (unique in a cluster); empty: a generated one.
	Name string
	// Cluster is the cluster's name; with ClusterListen (host:port) and
	// Routes (nats://host:port of every member, itself included) the
	// server joins a cluster. Empty: a server of its own.
	Cluster       string
	ClusterListen string
	Routes        []string
}

// NATSServerReady is the line the server prints on standard output, as
// JSON, once it accepts clients.
type NATSServerReady struct {
	NATSURL string `json:"nats_url"`
	WSURL   string `json:"ws_url,omitempty"`
}

// readyTimeout bounds the start of a server the bench runs.
const readyTimeout = 20 * time.Second

// RunNATSServer runs a nats-server built from the module in go.mod on free
// loopback ports until ctx ends, announcing its URLs on out.
func RunNATSServer(ctx context.Context, o NATSServerOptions, out io.Writer) error {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true}
	if o.WebSocket {
		opts.Websocket = server.WebsocketOpts{Host: "127.0.0.1", Port: -1, NoTLS: true}
	}
	if o.StoreDir != "" {
		opts.JetStream, opts.StoreDir = true, o.StoreDir
	}
	opts.ServerName = o.Name
	if o.Cluster != "" {
		if err := clusterOptions(opts, o); err != nil {
			return err
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("NATS server: %w", err)
	}
	go s.Start()
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()
	if !s.ReadyForConnections(readyTimeout) {
		return errors.New("NATS server not ready within " + readyTimeout.String())
	}
	ready := NATSServerReady{NATSURL: s.ClientURL()}
	if o.WebSocket {
		ports := s.PortsInfo(readyTimeout)
		if ports == nil || len(ports.WebSocket) == 0 {
			return errors.New("NATS server: no WebSocket listener")
		}
		ready.WSURL = ports.WebSocket[0]
	}
	return announceUntil(ctx, out, "NATS server", ready)
}

// announceUntil prints ready on out as one JSON line, the line the bench
// waits for from a server it started, and waits until ctx ends.
func announceUntil(ctx context.Context, out io.Writer, what string, ready any) error {
	b, err := json.Marshal(ready)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
		return fmt.Errorf("%s: announce: %w", what, err)
	}
	<-ctx.Done()
	return nil
}

// FloorServerReady is the line `roomcast bench-floor-server` prints on
// standard output, as JSON, once it accepts clients.
type FloorServerReady struct {
	WSURL string `json:"ws_url"`
}

// RunFloorServer runs a floor server (internal/floor) on the NATS server
// at natsURL until ctx ends, announcing its URL on out.
func RunFloorServer(ctx context.Context, natsURL string, out io.Writer) error {
	s, err := floor.Start(floor.Options{NATSURL: natsURL})
	if err != nil {
		return err
	}
	defer s.Close()
	return announceUntil(ctx, out, "floor", FloorServerReady{WSURL: s.WSURL()})
}

// clusterOptions routes opts to the other members of o's cluster.
func clusterOptions(opts *server.Options, o NATSServerOptions) error {
	host, port, err := net.SplitHostPort(o.ClusterListen)
	if err != nil {
		return fmt.Errorf("NATS server: cluster listen %q: %w", o.ClusterListen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("NATS server: cluster port %q: %w", port, err)
	}
	opts.Cluster = server.ClusterOpts{Name: o.Cluster, Host: host, Port: p}
	opts.Routes = server.RoutesFromStr(strings.Join(o.Routes, ","))
	return nil
}
