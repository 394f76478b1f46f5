package roomcast_test

import (
	"context"
	"flag"
	"io"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
)

// exampleNode is a roomcast node on loopback with its own NATS, for the
// example, which has no *testing.T for servertest.
type exampleNode struct {
	url string
	srv *server.Server
	dir string
	nc  *nats.Conn
	js  jetstream.JetStream
}

func startExampleNode() *exampleNode {
	dir, err := os.MkdirTemp("", "roomcast-example")
	if err != nil {
		log.Fatal(err)
	}
	cfg := config.RegisterServe(flag.NewFlagSet("serve", flag.ContinueOnError))
	cfg.Listen, cfg.AdminListen, cfg.NATSListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:-1", dir
	cfg.DrainTimeout = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	nc, err := nats.Connect(srv.NATSURL())
	if err != nil {
		log.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	return &exampleNode{url: "ws://" + srv.WSAddr() + "/ws", srv: srv, dir: dir, nc: nc, js: js}
}

// publish stores an event as a pool worker does.
func (n *exampleNode) publish(subject, payload string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.js.Publish(ctx, subject, []byte(payload)); err != nil {
		log.Fatal(err)
	}
}

func (n *exampleNode) stop() {
	n.nc.Close()
	n.srv.Shutdown()
	_ = os.RemoveAll(n.dir)
}
