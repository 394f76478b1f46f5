package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServerOptions configure the NATS server a scenario starts as a child
// process (`roomcast bench-nats-server`): the reference target (with a
// WebSocket listener) or the NATS JetStream server behind the roomcast edge.
type NATSServerOptions struct {
	WebSocket bool   // a WebSocket listener without TLS on a free loopback port
	StoreDir  string // JetStream storage; empty: no JetStream
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
	b, err := json.Marshal(ready)
	if err != nil {
		return fmt.Errorf("NATS server: %w", err)
	}
	if _, err := fmt.Fprintf(out, "%s\n", b); err != nil {
		return fmt.Errorf("NATS server: announce: %w", err)
	}
	<-ctx.Done()
	return nil
}
