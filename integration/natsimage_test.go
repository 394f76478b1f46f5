package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
)

// natsImageRepo is the repository part of the NATS test image's name.
const natsImageRepo = "roomcast-integration-nats"

// natsShared is the NATS image, built by the first test that needs it and
// removed by TestMain.
var natsShared struct {
	once  sync.Once
	image string
	err   error
}

// requireNATSImage returns the name of the nats-server test image, building
// it on first use; like requireImage, it skips or fails without Docker.
func requireNATSImage(t *testing.T) string {
	t.Helper()
	requireImage(t) // Docker, or skip (fail under CI=true)
	natsShared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		natsShared.image, natsShared.err = buildNATSImage(ctx, shared.provider)
	})
	if natsShared.err != nil {
		t.Fatalf("prepare the nats-server image: %v", natsShared.err)
	}
	return natsShared.image
}

// buildNATSImage builds nats-server (the version go.mod requires) as a
// static binary and the image of testdata/nats.Dockerfile around it, with
// the repository's natsconf/cluster.conf and accounts.conf.
func buildNATSImage(ctx context.Context, p *testcontainers.DockerProvider) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "roomcast-nats-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool is needed to build nats-server: %w", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-trimpath", "-ldflags=-s -w",
		"-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build nats-server: %w\n%s", err, b)
	}
	for _, f := range []struct{ from, to string }{
		{filepath.Join(root, "integration", "testdata", "nats.Dockerfile"), "Dockerfile"},
		{filepath.Join(root, "natsconf", "cluster.conf"), "cluster.conf"},
		{filepath.Join(root, "natsconf", "accounts.conf"), "accounts.conf"},
	} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			return "", fmt.Errorf("stage the NATS image: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), b, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o755); err != nil {
		return "", err
	}

	tag, err := randomTag()
	if err != nil {
		return "", err
	}
	var buildLog bytes.Buffer
	name, err := p.BuildImage(ctx, &testcontainers.ContainerRequest{
		FromDockerfile: testcontainers.FromDockerfile{
			Context: dir, Repo: natsImageRepo, Tag: tag, BuildLogWriter: &buildLog,
		},
	})
	if err != nil {
		removeImage(p, natsImageRepo+":"+tag)
		return "", fmt.Errorf("build NATS image: %w\nbuild log:\n%s", err, buildLog.String())
	}
	return name, nil
}
