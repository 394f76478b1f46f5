package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// caBundle is the host's CA certificates, copied into the image as the
// Dockerfile expects (Debian's ca-certificates package).
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// imageVersion is the version label of the test image, checked by
// TestImageLayout.
const imageVersion = "integration-test"

// imageRepo is the repository part of the test image's name; the tag is
// random, so concurrent runs on one engine do not collide.
const imageRepo = "roomcast-integration"

// shared is what the tests of this package share: the Docker provider and
// the image, prepared by the first test that needs them and released by
// TestMain.
var shared struct {
	once      sync.Once
	provider  *testcontainers.DockerProvider
	image     string // the built image's name, "" until built
	dockerErr error  // Docker is not available
	err       error  // Docker is there, but building the image failed
}

// prepare connects to Docker and builds the image, once per test binary.
func prepare() {
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		p, err := dockerProvider(ctx)
		if err != nil {
			shared.dockerErr = err
			return
		}
		shared.provider = p
		shared.image, shared.err = buildImage(ctx, p)
	})
}

// dockerProvider returns a provider whose engine answers within a few
// seconds, or why not.
func dockerProvider(ctx context.Context) (*testcontainers.DockerProvider, error) {
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := p.Health(ctx); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("docker engine does not answer: %w", err)
	}
	return p, nil
}

// buildImage builds the static binary and the image FROM scratch in a
// temporary build context, and returns the image's name. The context is
// removed before it returns; the image stays until removeImage.
func buildImage(ctx context.Context, p *testcontainers.DockerProvider) (string, error) {
	dir, err := os.MkdirTemp("", "roomcast-image-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := buildBinary(ctx, filepath.Join(dir, "roomcast")); err != nil {
		return "", err
	}
	if err := stageContext(dir); err != nil {
		return "", err
	}
	tag, err := randomTag()
	if err != nil {
		return "", err
	}
	var buildLog bytes.Buffer
	name, err := p.BuildImage(ctx, &testcontainers.ContainerRequest{
		FromDockerfile: testcontainers.FromDockerfile{
			Context: dir, Repo: imageRepo, Tag: tag, BuildLogWriter: &buildLog,
			BuildArgs: map[string]*string{"VERSION": ptr(imageVersion)},
		},
	})
	if err != nil {
		// A failed build may still have left the tagged image behind.
		removeImage(p, imageRepo+":"+tag)
		return "", fmt.Errorf("build image: %w\nbuild log:\n%s", err, buildLog.String())
	}
	return name, nil
}

// stageContext puts beside the binary in dir what the repository's
// Dockerfile copies (as `task image` does): the Dockerfile itself, the CA
// certificates and the data directory. The image is built from the
// shipped recipe, not from a copy of it.
func stageContext(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, f := range []struct{ from, to string }{
		{filepath.Join(root, "Dockerfile"), "Dockerfile"},
		{caBundle, "ca-certificates.crt"},
	} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			return fmt.Errorf("stage the image: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), b, 0o644); err != nil {
			return err
		}
	}
	return os.Mkdir(filepath.Join(dir, "data"), 0o755)
}

func ptr[T any](v T) *T { return &v }

// buildBinary builds cmd/roomcast as a static binary at out.
func buildBinary(ctx context.Context, out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if err := trackSources(root); err != nil {
		return err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go tool is needed to build the test image: %w", err)
	}
	cmd := exec.CommandContext(ctx, goTool, "build", "-buildvcs=auto", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/roomcast")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/roomcast: %w\n%s", err, b)
	}
	return nil
}

// trackSources stats the module's sources so that `go test` caches this
// package's result only while they are unchanged. Its cache key covers the
// packages the test imports and the files the test itself touches, not what
// the `go build` it runs reads: without this, a change to the server would
// be answered by a stale cached PASS.
func trackSources(root string) error {
	for _, f := range []string{"go.mod", "go.sum", "Dockerfile"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			return err
		}
	}
	for _, dir := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
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

// moduleRoot is the directory of go.mod: the test runs in integration/.
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

// randomTag returns a fresh lower-case image tag.
func randomTag() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "t" + hex.EncodeToString(b), nil
}

// removeImage deletes the image and its untagged parent layers; a failure
// is reported on standard error, since it runs outside any test.
func removeImage(p *testcontainers.DockerProvider, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := p.Client().ImageRemove(ctx, name, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		fmt.Fprintf(os.Stderr, "integration: remove image %s: %v\n", name, err)
	}
}
