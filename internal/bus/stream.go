package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
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
		// Replays and head checks are direct gets that any replica
		// answers; a read that comes back short is checked against the
		// leader (see Replay), so a lagging replica costs time, never
		// events.
		AllowDirect: true,
		RePublish:   &jetstream.RePublish{Source: s.AllRooms(), Destination: s.AllLive()},
	}
}

// EnsureStream creates the stream or updates it to the configuration; it is
// idempotent, so every edge runs it at start, and the hub runs it again
// when the stream has gone (a wiped store). A stream it creates anew after
// having seen an older one starts past every sequence that one used (see
// recreateMargin), so a client's position from the old stream can never be
// taken for a position in the new one.
func (b *Bus) EnsureStream(ctx context.Context) error {
	cfg := b.stream.jsConfig(b.subj)
	_, err := b.js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		cfg.FirstSeq = b.recreateBase()
		_, err = b.js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another edge was first
		}
	case err == nil:
		err = b.updateStream(ctx, cfg)
	}
	if err != nil {
		return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
	}
	return nil
}

// updateStream applies cfg to the existing stream, keeping its first_seq,
// which is part of its identity.
func (b *Bus) updateStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	st, err := b.js.Stream(ctx, cfg.Name)
	if err != nil {
		return err
	}
	cfg.FirstSeq = st.CachedInfo().Config.FirstSeq
	_, err = b.js.UpdateStream(ctx, cfg)
	return err
}

// recreateMargin is how far past the highest sequence this edge has seen
// a recreated stream starts: other edges may have delivered events this
// one never saw before the old stream went, and their clients' positions
// must still read as "before the new stream".
const recreateMargin = 1 << 20

// recreateBase is the first sequence of a stream created anew: 0 (the
// default) when this edge never saw one.
func (b *Bus) recreateBase() uint64 {
	if hi := b.highSeq.Load(); hi > 0 {
		return hi + recreateMargin
	}
	return 0
}

// noteSeq records a sequence the edge has seen in the stream.
func (b *Bus) noteSeq(seq uint64) {
	for {
		hi := b.highSeq.Load()
		if seq <= hi || b.highSeq.CompareAndSwap(hi, seq) {
			return
		}
	}
}

// StreamState asks the stream leader for the stream's identity and state;
// it fails with wire.ErrStreamGone when the stream does not exist.
func (b *Bus) StreamState(ctx context.Context) (wire.StreamState, error) {
	rctx, cancel := b.requestCtx(ctx)
	defer cancel()
	b.countCall(ctx, metrics.StreamInfo)
	st, err := b.js.Stream(rctx, b.stream.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return wire.StreamState{}, fmt.Errorf("stream %s: %w", b.stream.Name, wire.ErrStreamGone)
	}
	if err != nil {
		return wire.StreamState{}, fmt.Errorf("stream %s: %w", b.stream.Name, err)
	}
	info := st.CachedInfo()
	b.noteSeq(info.State.LastSeq)
	return wire.StreamState{
		ID:       wire.StreamID{Created: info.Created, BaseSeq: info.Config.FirstSeq},
		FirstSeq: info.State.FirstSeq,
		LastSeq:  info.State.LastSeq,
		Deleted:  uint64(info.State.NumDeleted),
	}, nil
}

// stateMaxAge is how old a stream state recentState hands out may be.
const stateMaxAge = time.Second

// recentState is StreamState at most stateMaxAge old, for the checks that
// many resumes may need at once: one request serves them all.
func (b *Bus) recentState(ctx context.Context) (wire.StreamState, error) {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	if !b.stateAt.IsZero() && time.Since(b.stateAt) < stateMaxAge {
		return b.state, nil
	}
	st, err := b.StreamState(ctx)
	if err != nil {
		return st, err
	}
	b.state, b.stateAt = st, time.Now()
	return st, nil
}

// CheckStream verifies the stream is reachable, for readiness probes.
func (b *Bus) CheckStream(ctx context.Context) error {
	_, err := b.StreamState(ctx)
	return err
}

// WatchStream calls onLeader when the stream elects a leader and onChange
// when it is created or deleted, from JetStream's advisories. A new leader
// may not have had every message the old one republished, so the caller
// checks its rooms then; a created or deleted stream is a new identity.
// It returns the function that ends the watch.
func (b *Bus) WatchStream(onLeader, onChange func()) (stop func(), err error) {
	prefix := "$JS.EVENT.ADVISORY.STREAM."
	watches := []struct {
		subject string
		fn      func()
	}{
		{prefix + "LEADER_ELECTED." + b.stream.Name, onLeader},
		{prefix + "CREATED." + b.stream.Name, onChange},
		{prefix + "DELETED." + b.stream.Name, onChange},
	}
	var subs []*nats.Subscription
	stop = func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
	for _, w := range watches {
		fn := w.fn
		sub, err := b.nc.Subscribe(w.subject, func(*nats.Msg) { fn() })
		if err != nil {
			stop()
			return nil, fmt.Errorf("watch %s: %w", w.subject, err)
		}
		subs = append(subs, sub)
	}
	return stop, nil
}
