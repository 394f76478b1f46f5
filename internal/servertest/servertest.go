// Package servertest starts real roomcast nodes for tests: free loopback
// ports, storage under t.TempDir(), a short drain, shut down by t.Cleanup.
package servertest

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
)

// Logger discards logs unless ROOMCAST_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("ROOMCAST_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Config returns serve's defaults on free loopback ports.
func Config(t testing.TB) *config.Serve {
	cfg := config.RegisterServe(flag.NewFlagSet("serve", flag.ContinueOnError))
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.NATSListen = "127.0.0.1:-1"
	cfg.DataDir = t.TempDir()
	cfg.DrainTimeout = 3 * time.Second
	return cfg
}

// Start starts a node; with ns it connects to that NATS server, otherwise
// it embeds its own. edit may change the settings first.
func Start(t testing.TB, ns *natsserver.Server, edit func(*config.Serve)) *server.Server {
	t.Helper()
	return StartLogged(t, ns, edit, Logger())
}

// StartLogged is Start with the node's logger, for tests that read its log.
func StartLogged(t testing.TB, ns *natsserver.Server, edit func(*config.Serve), log *slog.Logger) *server.Server {
	t.Helper()
	cfg := Config(t)
	if ns != nil {
		cfg.NATS = config.List{ns.ClientURL()}
	}
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// WSURL is the node's WebSocket URL.
func WSURL(srv *server.Server) string { return "ws://" + srv.WSAddr() + "/ws" }

// SyncBuffer is a bytes.Buffer that a logger or a command may write while a
// test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TakenAddrs holds n loopback ports open until the test ends and returns
// their addresses: for tests of what a node or `check --free` says about
// ports another process holds.
func TakenAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		addrs[i] = ln.Addr().String()
	}
	return addrs
}
