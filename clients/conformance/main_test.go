// Package conformance_test runs one set of scenarios against the three
// client libraries (README.md): real nodes, as processes of their own, on
// a real NATS server, and a runner per library that reports what the
// library handed its application.
package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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
	if repoRoot, err = moduleRoot(); err != nil {
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
	err = buildNode(ctx, nodeBinary)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 1
	}
	defer stopBrowser()
	return m.Run()
}

// buildNode builds roomcast at out with the flags the container tests use
// (integration/), so that the two share the build cache.
func buildNode(ctx context.Context, out string) error {
	if err := trackSources(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-buildvcs=auto", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/roomcast")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/roomcast: %w\n%s", err, b)
	}
	return nil
}

// trackSources stats what the node and the runners are made of, so that
// `go test` caches this package's result only while it is unchanged: its
// cache key covers the files the test process touches, not what the
// `go build`, python3 or the browser it starts read.
func trackSources() error {
	for _, d := range []string{"cmd", "internal", "clients"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, d), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			_, err = os.Stat(path)
			return err
		})
		if err != nil {
			return err
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if _, err := os.Stat(filepath.Join(repoRoot, f)); err != nil {
			return err
		}
	}
	return nil
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// required fails the test under CI=true, where every runner must run, and
// skips it elsewhere, saying what is missing.
func required(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (CI=true makes this a failure)")
}
