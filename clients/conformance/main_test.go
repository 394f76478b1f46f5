// Package conformance_test runs one set of scenarios against the three
// client libraries (README.md): real nodes, as processes of their own, on
// a real NATS server, and a runner per library that reports what the
// library handed its application.
package conformance_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/buildtest"
)

// Set by TestMain for every test of the package.
var (
	repoRoot   string // the module's root: the runners' files are under it
	nodeBinary string // roomcast, built for this run
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if repoRoot, err = buildtest.ModuleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "roomcast-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	nodeBinary = filepath.Join(dir, "roomcast")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	// Built as the container tests build it, sharing the build cache.
	err = buildtest.Build(ctx, repoRoot, "./cmd/roomcast", nodeBinary)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 1
	}
	defer stopBrowser()
	return m.Run()
}

// required fails the test under CI=true, where every runner must run, and
// skips it elsewhere, saying what is missing.
func required(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (CI=true makes this a failure)")
}
