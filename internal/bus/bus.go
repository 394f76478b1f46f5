// Package bus is roomcast's side of NATS: the subjects, the JetStream stream,
// live subscriptions to republished room events, replay and backfill from the
// stream, and publishing. It turns NATS messages into wire.Events and knows
// nothing of connections or rooms' members.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// Options configure a Bus.
type Options struct {
	Prefix  string // subject prefix, DefaultPrefix when empty
	Stream  StreamConfig
	Logger  *slog.Logger
	Metrics *metrics.Metrics
}

// Bus is one edge's view of NATS. Its methods are safe for concurrent use.
type Bus struct {
	// Set at construction.
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   Subjects
	stream StreamConfig
	log    *slog.Logger
	m      *metrics.Metrics

	mu sync.Mutex
	st jetstream.Stream // guarded by mu; nil until first looked up
}

// New returns a Bus on an established NATS connection, which the caller owns.
func New(nc *nats.Conn, o Options) (*Bus, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if err := CheckPrefix(o.Prefix); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Bus{
		nc:     nc,
		js:     js,
		subj:   Subjects{Prefix: o.Prefix},
		stream: o.Stream.withDefaults(),
		log:    o.Logger,
		m:      o.Metrics,
	}, nil
}

// Subjects returns the bus's subject mapping.
func (b *Bus) Subjects() Subjects { return b.subj }

// Connected reports whether the NATS connection is up.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// SubscribeLive delivers room r's republished events to fn, one at a time in
// arrival order, on a goroutine of the subscription's own. Messages that carry
// no stream sequence (not from the stream) are dropped and counted. It
// returns the function that ends the subscription.
func (b *Bus) SubscribeLive(r wire.Room, fn func(*wire.Event)) (unsubscribe func() error, err error) {
	sub, err := b.nc.Subscribe(b.subj.Live(r), func(m *nats.Msg) {
		if ev := b.liveEvent(r, m); ev != nil {
			fn(ev)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", b.subj.Live(r), err)
	}
	return sub.Unsubscribe, nil
}

func (b *Bus) liveEvent(r wire.Room, m *nats.Msg) *wire.Event {
	seq, err1 := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	prev, err2 := strconv.ParseUint(m.Header.Get(jetstream.LastSequenceHeader), 10, 64)
	if err1 != nil || err2 != nil || seq == 0 {
		b.m.BadPayloads.Inc()
		b.log.Warn("dropped live message without stream sequence headers", "subject", m.Subject, "room", r.String())
		return nil
	}
	ts, _ := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	return b.decode(r, seq, prev, ts, m.Data)
}

// decode builds the event of a stored message; an invalid payload yields an
// event with Err set, so the room's sequence still advances past it.
func (b *Bus) decode(r wire.Room, seq, prev uint64, ts time.Time, data []byte) *wire.Event {
	ev := &wire.Event{Room: r, Seq: seq, Prev: prev, Time: ts}
	name, d, err := wire.ParsePayload(data)
	if err != nil {
		ev.Err = err
		b.m.BadPayloads.Inc()
		b.log.Warn("dropped event with a bad payload", "room", r.String(), "seq", seq, "err", err)
		return ev
	}
	ev.Name, ev.Data = name, d
	return ev
}

// LastSeq returns the sequence of room r's latest stored event, 0 if none.
func (b *Bus) LastSeq(ctx context.Context, r wire.Room) (uint64, error) {
	st, err := b.streamHandle(ctx)
	if err != nil {
		return 0, err
	}
	m, err := st.GetLastMsgForSubject(ctx, b.subj.Room(r))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last event of %s: %w", r, err)
	}
	return m.Sequence, nil
}

// Publish stores one event of room r and returns its sequence. The payload is
// validated first; msgID, when set, makes retries idempotent.
func (b *Bus) Publish(ctx context.Context, r wire.Room, payload []byte, msgID string) (uint64, error) {
	if _, _, err := wire.ParsePayload(payload); err != nil {
		return 0, err
	}
	m := nats.NewMsg(b.subj.Room(r))
	m.Data = payload
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ack, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("publish to %s: %w", m.Subject, err)
	}
	return ack.Sequence, nil
}
