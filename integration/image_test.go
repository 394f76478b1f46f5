package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/roomcast/roomcast/internal/buildtest"
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
		shared.image, shared.err = buildImage(ctx, p, roomcastImage())
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

// imageRecipe is what a test image is built from: a static Go binary, the
// files its Dockerfile copies, staged beside it, and an empty data/.
type imageRecipe struct {
	repo   string             // the repository part of the image's name
	pkg    string             // the main package built, as `go build` names it
	binary string             // the binary's name in the build context
	files  map[string]string  // name in the context -> file, relative to the module root unless absolute
	args   map[string]*string // build arguments
	// dockerfile, if set, makes the context's Dockerfile from the module
	// at root (instead of a file in files).
	dockerfile func(root string) ([]byte, error)
}

// roomcastImage is the repository's own recipe: the Dockerfile's `image`
// stage, fed by staged.Dockerfile as `task image` does, so the image
// tested is the stage `docker build .` ships.
func roomcastImage() imageRecipe {
	return imageRecipe{
		repo: imageRepo, pkg: "./cmd/roomcast", binary: "roomcast",
		files:      map[string]string{"ca-certificates.crt": caBundle},
		args:       map[string]*string{"VERSION": ptr(imageVersion)},
		dockerfile: stagedDockerfile,
	}
}

// imageStage is the line that starts the Dockerfile's last stage, the
// image itself; staged.Dockerfile replaces what comes before it.
const imageStage = "FROM scratch AS image"

// stagedDockerfile is staged.Dockerfile followed by the repository
// Dockerfile's image stage (from the imageStage line on), as `task image`
// assembles it. The stages before it build the binary in a golang image,
// which cannot be pulled here, and Docker's classic builder (the one the
// Engine API gives testcontainers) builds every stage up to its target.
func stagedDockerfile(root string) ([]byte, error) {
	staged, err := os.ReadFile(filepath.Join(root, "staged.Dockerfile"))
	if err != nil {
		return nil, err
	}
	full, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	lines := strings.SplitAfter(string(full), "\n")
	at := -1
	for i, l := range lines {
		if strings.TrimSpace(l) != imageStage {
			continue
		}
		if at >= 0 {
			return nil, fmt.Errorf("Dockerfile: %q twice", imageStage)
		}
		at = i
	}
	if at < 0 {
		return nil, fmt.Errorf("Dockerfile: no line %q", imageStage)
	}
	return append(staged, strings.Join(lines[at:], "")...), nil
}

// buildImage builds r's binary and image in a temporary build context and
// returns the image's name, under a random tag so concurrent runs on one
// engine do not collide. The context is removed before it returns; the
// image stays until removeImage.
func buildImage(ctx context.Context, p *testcontainers.DockerProvider, r imageRecipe) (string, error) {
	root, err := buildtest.ModuleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", r.repo+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// The images are made of the Dockerfiles and natsconf's files too.
	if err := buildtest.Build(ctx, root, r.pkg, filepath.Join(dir, r.binary),
		"Dockerfile", "staged.Dockerfile", "natsconf", "integration/testdata"); err != nil {
		return "", err
	}
	for to, from := range r.files {
		if !filepath.IsAbs(from) {
			from = filepath.Join(root, from)
		}
		b, err := os.ReadFile(from)
		if err != nil {
			return "", fmt.Errorf("stage the image %s: %w", r.repo, err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o644); err != nil {
			return "", err
		}
	}
	if r.dockerfile != nil {
		b, err := r.dockerfile(root)
		if err != nil {
			return "", fmt.Errorf("stage the image %s: %w", r.repo, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), b, 0o644); err != nil {
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
			Context: dir, Repo: r.repo, Tag: tag, BuildLogWriter: &buildLog, BuildArgs: r.args,
		},
	})
	if err != nil {
		// A failed build may still have left the tagged image behind.
		removeImage(p, r.repo+":"+tag)
		return "", fmt.Errorf("build image %s: %w\nbuild log:\n%s", r.repo, err, buildLog.String())
	}
	return name, nil
}

func ptr[T any](v T) *T { return &v }

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
