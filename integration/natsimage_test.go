package integration

import (
	"context"
	"sync"
	"testing"
	"time"
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
		natsShared.image, natsShared.err = buildImage(ctx, shared.provider, natsImage())
	})
	if natsShared.err != nil {
		t.Fatalf("prepare the nats-server image: %v", natsShared.err)
	}
	return natsShared.image
}

// natsImage is the nats-server image: nats-server (the version go.mod
// requires) as a static binary, in testdata/nats.Dockerfile, with the
// repository's natsconf/cluster.conf and accounts.conf.
func natsImage() imageRecipe {
	return imageRecipe{
		repo: natsImageRepo, pkg: "github.com/nats-io/nats-server/v2", binary: "nats-server",
		files: map[string]string{
			"Dockerfile":    "integration/testdata/nats.Dockerfile",
			"cluster.conf":  "natsconf/cluster.conf",
			"accounts.conf": "natsconf/accounts.conf",
		},
	}
}
