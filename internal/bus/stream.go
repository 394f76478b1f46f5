package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig is what an operator sets about the stream.
type StreamConfig struct {
	Name            string        // DefaultStream when empty
	Replicas        int           // 1 for embedded, 3 for a cluster
	MaxAge          time.Duration // 0: kept until MaxMsgsPerRoom
	MaxMsgsPerRoom  int64         // 0: unlimited
	MaxPayload      int32         // largest event a worker may publish
	DuplicateWindow time.Duration // how long Nats-Msg-Id deduplicates
}

// Defaults of StreamConfig.
const (
	DefaultMaxAge          = 24 * time.Hour
	DefaultMaxMsgsPerRoom  = 10_000
	DefaultMaxPayload      = 64 << 10
	DefaultDuplicateWindow = 2 * time.Minute
)

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = DefaultStream
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	return c
}

// jsConfig is the JetStream configuration of the stream: it stores every
// room's events and republishes each, with its sequence headers, to the live
// subjects edges subscribe to.
func (c StreamConfig) jsConfig(s Subjects) jetstream.StreamConfig {
	dup := c.DuplicateWindow
	if c.MaxAge > 0 && dup > c.MaxAge {
		dup = c.MaxAge // JetStream refuses a window longer than the age limit
	}
	return jetstream.StreamConfig{
		Name:              c.Name,
		Description:       "roomcast room events",
		Subjects:          []string{s.AllRooms()},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          c.Replicas,
		MaxAge:            c.MaxAge,
		MaxMsgsPerSubject: c.MaxMsgsPerRoom,
		MaxMsgSize:        c.MaxPayload,
		Discard:           jetstream.DiscardOld,
		Duplicates:        dup,
		// Reads go to the stream leader: a follower's answer may lag, and a
		// lagging "last sequence" would let a resume deliver twice.
		AllowDirect: false,
		RePublish:   &jetstream.RePublish{Source: s.AllRooms(), Destination: s.AllLive()},
	}
}

// EnsureStream creates the stream or updates it to the configuration; it is
// idempotent, so every edge runs it at start.
func (b *Bus) EnsureStream(ctx context.Context) error {
	cfg := b.stream.jsConfig(b.subj)
	st, err := b.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	b.mu.Lock()
	b.st = st
	b.mu.Unlock()
	return nil
}

func (b *Bus) streamHandle(ctx context.Context) (jetstream.Stream, error) {
	b.mu.Lock()
	st := b.st
	b.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := b.js.Stream(ctx, b.stream.Name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", b.stream.Name, err)
	}
	b.mu.Lock()
	b.st = st
	b.mu.Unlock()
	return st, nil
}

// CheckStream verifies the stream is reachable, for readiness probes.
func (b *Bus) CheckStream(ctx context.Context) error {
	_, err := b.js.Stream(ctx, b.stream.Name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", b.stream.Name, err)
	}
	return nil
}
