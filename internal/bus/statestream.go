package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The state stream keeps the latest event of every key of every room
// (docs/architecture.md, "Keyed state"): one subject per key with at most
// one message, so NATS itself drops what a newer event of the key
// supersedes, and no age limit unless the operator sets one, so a key
// outlives the room's history. Workers never write it: the keeper
// (keeper.go) feeds it from the event stream, and edges read it with
// direct gets (snapshot.go).

// StateConfig is what an operator sets about the keyed state.
type StateConfig struct {
	// MaxKeysPerRoom bounds the keys a room keeps; past it the keeper
	// evicts the room's least recently written key first, counted in
	// roomcast_state_keys_evicted_total. 0: DefaultMaxKeysPerRoom.
	MaxKeysPerRoom int
	// MaxAge, when set, removes a key not written for that long (its
	// entry's TTL).
	MaxAge time.Duration
}

// Defaults of StateConfig and the keeper's fixed settings.
const (
	DefaultMaxKeysPerRoom = 10_000
	// tombstoneTTL is how long the mark of a deleted key stays: a
	// keeper's batch is published atomically, so a delete is a message
	// (the key's last, replacing its event) that then expires.
	tombstoneTTL = time.Minute
	// stateHeaderRoom bounds the headers of a state entry past the
	// event's payload.
	stateHeaderRoom = 1024
)

func (c StateConfig) withDefaults() StateConfig {
	if c.MaxKeysPerRoom <= 0 {
		c.MaxKeysPerRoom = DefaultMaxKeysPerRoom
	}
	return c
}

// StateStreamName is the state stream's name for an event stream's.
func StateStreamName(events string) string { return events + "_STATE" }

// stateJSConfig is the state stream's JetStream configuration.
func (b *Bus) stateJSConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StateStreamName(b.stream.Name),
		Description: "roomcast keyed state: the latest event of each key of each room",
		Subjects:    []string{b.subj.AllState()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    b.stream.Replicas,
		// No age limit on the stream: the position records must stay
		// while nothing happens. --state-max-age is each key's TTL.
		MaxAge:            0,
		MaxMsgsPerSubject: 1,
		MaxMsgSize:        b.stream.MaxPayload + stateHeaderRoom,
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
		// Deleted keys leave a tombstone with a TTL, and the keeper
		// writes each batch atomically (keeperapply.go).
		AllowMsgTTL:        true,
		AllowAtomicPublish: true,
	}
}

// EnsureStateStream creates the state stream or updates it to the
// configuration; like EnsureStream it is idempotent and every edge runs
// it at start.
func (b *Bus) EnsureStateStream(ctx context.Context) error {
	cfg := b.stateJSConfig()
	_, err := b.js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = b.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another edge was first
		}
	case err == nil:
		_, err = b.js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	return nil
}
