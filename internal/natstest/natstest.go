// Package natstest starts real NATS servers for tests: embedded single nodes
// and in-process clusters on free loopback ports, stored under t.TempDir(),
// shut down by t.Cleanup.
package natstest

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/natsembed"
)

// Quiet is a logger that discards, for servers whose log is noise in tests.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// RunServer starts a JetStream-enabled server on a free loopback port.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	return RunServerAt(t, "127.0.0.1:-1", t.TempDir())
}

// Restart shuts s down and starts a server on the same address and
// storage, as a restarted NATS process would be.
func Restart(t testing.TB, s *server.Server) *server.Server {
	t.Helper()
	return RestartWith(t, s, nil)
}

// RestartWith is Restart with the new server's options changed by edit
// (a new certificate, say), as a reconfigured NATS process would be.
func RestartWith(t testing.TB, s *server.Server, edit func(*server.Options)) *server.Server {
	t.Helper()
	addr := s.Addr().String()
	dir := s.JetStreamConfig().StoreDir
	s.Shutdown()
	s.WaitForShutdown()
	return runServer(t, addr, dir, edit)
}

// RunServerAt starts a JetStream-enabled server on listen with its storage
// in dir.
func RunServerAt(t testing.TB, listen, dir string) *server.Server {
	t.Helper()
	return runServer(t, listen, dir, nil)
}

// RunServerWith starts a JetStream-enabled server on a free loopback port
// after edit has changed its options (authorization, TLS).
func RunServerWith(t testing.TB, edit func(*server.Options)) *server.Server {
	t.Helper()
	return runServer(t, "127.0.0.1:-1", t.TempDir(), edit)
}

func runServer(t testing.TB, listen, dir string, edit func(*server.Options)) *server.Server {
	t.Helper()
	s, err := natsembed.Start(natsembed.Options{
		Listen:     listen,
		DataDir:    dir,
		ServerName: "test",
		Logger:     Quiet,
		Configure:  edit,
	})
	if err != nil {
		t.Fatalf("start NATS: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect opens a client connection to s over loopback TCP, closed on cleanup.
func Connect(t testing.TB, urls string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		t.Fatalf("connect NATS %s: %v", urls, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitFor polls cond every few milliseconds until it returns nil or the
// timeout passes, then fails the test with cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("condition not met within %s: %v", timeout, err)
}
