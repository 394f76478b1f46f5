// Package testartifact keeps what tests leave for people to look at after
// the run (a screenshot, a report) in one directory: $ROOMCAST_ARTIFACTS,
// or roomcast-artifacts under the temp dir. Unlike t.TempDir it outlives
// the test, and unlike t.Log it shows without go test -v: .ci/run points
// ROOMCAST_ARTIFACTS at a fresh directory and prints the reports in it.
package testartifact

import (
	"os"
	"path/filepath"
	"testing"
)

// Env names the directory artifacts are written to.
const Env = "ROOMCAST_ARTIFACTS"

// Dir returns the artifacts directory, made if needed.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(Env)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "roomcast-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory: %v", err)
	}
	return dir
}

// Write saves data as the artifact name and returns its path.
func Write(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(Dir(t), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("artifact %s: %v", name, err)
	}
	return path
}
