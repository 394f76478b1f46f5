// Package buildtest builds this module's programs for tests that run them
// as processes of their own (containers, nodes killed with SIGKILL, the
// Python client's tests): one way to find the module, build a static
// binary and keep `go test`'s cache honest about it.
package buildtest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// ModuleRoot is the directory of go.mod above the working directory (a
// test runs in its package's directory).
func ModuleRoot() (string, error) {
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

// Sources are what a binary of this module is built from, relative to
// its root; Build tracks them.
var Sources = []string{"go.mod", "go.sum", "cmd", "internal", "clients"}

// Build builds the main package pkg (as `go build` names it, "./cmd/roomcast")
// of the module at root as a static Linux binary at out, the way
// `task build-static` does: every caller shares the build cache. It first
// tracks Sources and the extra paths under root the test also depends on
// (see Track).
func Build(ctx context.Context, root, pkg, out string, extra ...string) error {
	if err := Track(root, append(append([]string(nil), Sources...), extra...)...); err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is needed to build %s: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-buildvcs=auto", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Track stats every file at or below paths (relative to root), so that
// `go test` caches the calling test's result only while they are
// unchanged: its cache key covers the files the test process itself
// opens, not what a `go build`, python3 or browser it starts reads.
func Track(root string, paths ...string) error {
	for _, p := range paths {
		err := filepath.WalkDir(filepath.Join(root, p), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err // directories are read, so added files count too
			}
			_, err = os.Stat(path)
			return err
		})
		if err != nil {
			return fmt.Errorf("list sources: %w", err)
		}
	}
	return nil
}
