package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The image built from the repository's Dockerfile is what the issue of
// deployment promises: a non-root user, the entrypoint /roomcast with the
// command serve (flags alone after the image name, as startNode gives
// them, still run serve),
// the OCI labels, the host's CA certificates, no shell, and the node inside
// serving its dashboard and probes.
func TestImageLayout(t *testing.T) {
	image := requireImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	inspect, err := shared.provider.Client().ImageInspect(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	cfg := inspect.Config
	if cfg.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/roomcast"}) || !slices.Equal(cfg.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q, command %q; want [/roomcast] and [serve]", cfg.Entrypoint, cfg.Cmd)
	}
	for label, want := range map[string]string{
		"org.opencontainers.image.version": imageVersion,
		"org.opencontainers.image.source":  "https://github.com/roomcast/roomcast",
		"org.opencontainers.image.title":   "roomcast",
	} {
		if got := cfg.Labels[label]; got != want {
			t.Errorf("label %s = %q, want %q", label, got, want)
		}
	}
	for _, label := range []string{"org.opencontainers.image.revision", "org.opencontainers.image.created"} {
		if _, ok := cfg.Labels[label]; !ok {
			t.Errorf("label %s missing", label)
		}
	}

	// The embedded NATS listens beyond the container's loopback only when
	// told to (issue 17): nothing in the image says so.
	for _, env := range cfg.Env {
		if strings.HasPrefix(env, "ROOMCAST_NATS_LISTEN=") {
			t.Errorf("the image sets %s", env)
		}
	}
	for port := range cfg.ExposedPorts {
		if strings.HasPrefix(string(port), "4222") {
			t.Errorf("the image exposes %s", port)
		}
	}

	n := startNode(ctx, t, image, nil, "--allow-anonymous")
	rc, err := n.ctr.CopyFileFromContainer(ctx, "/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("CA certificates in the image: %v", err)
	}
	inImage, err := io.ReadAll(rc)
	_ = rc.Close()
	host, herr := os.ReadFile(caBundle)
	if err != nil || herr != nil || !bytes.Equal(inImage, host) {
		t.Errorf("CA certificates: %d bytes in the image, %d on the host (%v, %v)", len(inImage), len(host), err, herr)
	}
	if code, _, err := n.ctr.Exec(ctx, []string{"/bin/sh", "-c", "true"}); err == nil && code == 0 {
		t.Error("the image has a shell")
	}
	code, body, err := get(ctx, strings.Replace(n.wsURL, "ws://", "http://", 1))
	if err != nil || code != http.StatusOK || !strings.Contains(body, "<title>roomcast</title>") {
		t.Errorf("GET / of the node in the image: %d %.60q %v, want the dashboard", code, body, err)
	}
}

// `docker run IMAGE version` prints the binary's version line and exits 0:
// the image's command is replaced, not appended to serve's flags.
func TestImageRunsVersion(t *testing.T) {
	image := requireImage(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithLogger(tclog.TestLogger(t)),
		testcontainers.WithCmdArgs("version"),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute, wait.ForExit()),
	)
	t.Cleanup(func() {
		if ctr != nil {
			if err := testcontainers.TerminateContainer(ctr); err != nil {
				t.Errorf("terminate container %s: %v", ctr.GetContainerID(), err)
			}
		}
	})
	if err != nil {
		t.Fatalf("run %s version: %v", image, err)
	}
	state, err := ctr.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ctr.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	if state.ExitCode != 0 || !bytes.HasPrefix(out, []byte("roomcast ")) || !bytes.Contains(out, []byte(" go1.")) {
		t.Errorf("%s version: exit %d, output %q; want 0 and \"roomcast VERSION ... goX.Y\"", image, state.ExitCode, out)
	}
}
