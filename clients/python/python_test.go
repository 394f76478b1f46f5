// Package python_test runs the Python client library's pytest suite
// (clients/python/tests) as part of `go test ./...`, which .ci/run runs.
package python_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/buildtest"
)

// python is Debian's interpreter, which has python3-websockets and
// python3-pytest (.ci/run installs them); the python3 of a pyenv on PATH
// usually has neither.
const python = "/usr/bin/python3"

// requirePython returns the interpreter when it can import websockets and
// pytest; without them the test is skipped, or fails under CI=true (CI must
// not pass by skipping the library's tests).
func requirePython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(python, "-c", "import websockets, pytest").CombinedOutput()
	if err == nil {
		return python
	}
	msg := "needs " + python + " with websockets and pytest (apt-get install python3-websockets python3-pytest)"
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: %v\n%s", msg, err, out)
	}
	t.Skipf("%s; CI=true makes this a failure: %v", msg, err)
	return ""
}

// roomcastBinary builds the node for the tests that run against real nodes
// (tests/test_client_node.py, tests/test_examples.py), which are skipped
// without it. The build also tracks the sources, the library's Python
// files among them, which `go test` would not see pytest read.
func roomcastBinary(t *testing.T) string {
	t.Helper()
	root, err := buildtest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "roomcast")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := buildtest.Build(ctx, root, "./cmd/roomcast", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestPytest runs `python3 -m pytest -q tests`: the pure parts, the
// client against a fake server for what a node never sends, and the client
// against real nodes.
func TestPytest(t *testing.T) {
	py := requirePython(t)
	bin := roomcastBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
	cmd.Env = append(os.Environ(), "ROOMCAST_BIN="+bin, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("pytest:\n%s", out)
	if err != nil {
		t.Fatalf("pytest failed: %v", err)
	}
}
