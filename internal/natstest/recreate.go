package natstest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// RecreateStream deletes stream name and creates it again as an operator
// would: with its configuration as edit leaves it (edit may be nil) and
// sequences that start at 1 again unless edit sets FirstSeq, where an edge
// starts a stream it recreates past the old one's. An edge that finds the
// stream gone recreates it itself, and may do so between the delete and
// the create: then the operator deletes and creates again, until its own
// create wins (within 20 s).
func RecreateStream(t testing.TB, js jetstream.JetStream, name string, edit func(*jetstream.StreamConfig)) {
	t.Helper()
	st, err := js.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.FirstSeq = 0
	if edit != nil {
		edit(&cfg)
	}
	WaitFor(t, 20*time.Second, func() error {
		if err := js.DeleteStream(t.Context(), name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		_, err := js.CreateStream(ctx, cfg)
		return err
	})
}
