package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
)

// A data directory that cannot be used stops serve at once with a message
// that names it, instead of a wait and a question about the port.
func TestUnusableDataDirFailsByName(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config(t)
	cfg.DataDir = filepath.Join(file, "sub") // under a file: not even root can create it
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	srv, err := server.Start(ctx, cfg, servertest.Logger())
	if err == nil {
		srv.Shutdown()
		t.Fatal("serve started on a data directory under a file")
	}
	if !strings.Contains(err.Error(), cfg.DataDir) || strings.Contains(err.Error(), "free") {
		t.Fatalf("error %q does not name %s (or blames the port)", err, cfg.DataDir)
	}
}
