package integration

import (
	"os"
	"testing"
)

// TestMain runs the tests with the settings this machine needs, then removes
// the images the tests built (the containers and networks are removed by
// each test).
func TestMain(m *testing.M) {
	// Ryuk, testcontainers' reaper, runs from an image that would have to be
	// pulled; no registry is reachable here, and every test terminates its
	// own containers anyway. Set here so that a plain `go test ./...` works.
	//
	// The host testcontainers reaches mapped ports on (wait strategies,
	// Endpoint) must be loopback, where startNode publishes them. Left to
	// itself it sees /.dockerenv, concludes it runs inside a container and
	// takes the default gateway (a non-loopback address) instead.
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if err := os.Setenv(k, v); err != nil {
			panic(err)
		}
	}
	code := m.Run()
	if shared.provider != nil {
		for _, image := range []string{shared.image, natsShared.image} {
			if image != "" {
				removeImage(shared.provider, image)
			}
		}
		_ = shared.provider.Close()
	}
	os.Exit(code)
}

// requireImage returns the name of the roomcast test image, building it on
// first use. Without Docker the test is skipped, or fails under CI=true
// (CI must not pass by skipping its container tests).
func requireImage(t *testing.T) string {
	t.Helper()
	prepare()
	if err := shared.dockerErr; err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Docker is required when CI=true, but it is not available: %v", err)
		}
		t.Skipf("Docker is not available (with CI=true this fails instead): %v", err)
	}
	if shared.err != nil {
		t.Fatalf("prepare the roomcast image: %v", shared.err)
	}
	return shared.image
}
