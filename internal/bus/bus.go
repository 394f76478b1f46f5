// Package bus is roomcast's side of NATS: the subjects, the JetStream stream,
// live subscriptions to republished room events, replay and backfill from the
// stream, and publishing. It turns NATS messages into wire.Events and knows
// nothing of connections or rooms' members.
package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/lograte"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// Options configure a Bus.
type Options struct {
	Prefix  string // subject prefix, DefaultPrefix when empty
	Stream  StreamConfig
	State   StateConfig
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// RequestTimeout bounds one request to JetStream (a batch of a replay,
	// a head check). Requests in flight when the NATS connection drops end
	// at once instead (see Disconnected).
	RequestTimeout time.Duration
	// MaxConcurrentReads bounds the stream reads in flight. Each answer may
	// be up to a megabyte, and NATS cuts off a client that lets more than
	// its max_pending (64 MiB by default) wait: a crowd of clients resuming
	// at once must queue here, not there.
	MaxConcurrentReads int
	// ReaderRate paces each reader's (each client connection's) reads
	// from the stream: events a second past a burst of a few seconds'
	// worth (see pace.go). 0: DefaultReaderRate; negative: not paced.
	ReaderRate int
	// LongReplay is the length of a replay from which it reads through a
	// consumer, past its first eighth (read with direct gets); 0:
	// LongReplay. Tests lower it to read small rooms so.
	LongReplay uint64
}

// DefaultMaxConcurrentReads is Options.MaxConcurrentReads's default.
const DefaultMaxConcurrentReads = 16

// DefaultRequestTimeout is Options.RequestTimeout's default. Direct gets are
// answered by the nearest replica in milliseconds; a request that takes
// longer went to a node that is going away, and is better retried.
const DefaultRequestTimeout = 2 * time.Second

// Bus is one edge's view of NATS. Its methods are safe for concurrent use.
type Bus struct {
	// Set at construction.
	nc     *nats.Conn
	js     jetstream.JetStream
	subj   Subjects
	stream StreamConfig
	keys   StateConfig
	log    *slog.Logger
	m      *metrics.Metrics
	// The JetStream API subjects of the stream's direct and leader gets,
	// and of the state stream's direct gets.
	apiDirect, apiMsgGet, apiStateDirect string
	timeout                              time.Duration
	reads                                *scheduler   // the stream read slots, shared fairly
	consumers                            consumerGate // whether long replays may use consumers
	// longReplay is Options.LongReplay and directFirst an eighth of it
	// (directFirst's value by default); pullBatch is the constant. Tests
	// lower them to read a long replay of a small room in several pulls.
	longReplay  uint64
	pullBatch   int
	directFirst uint64
	highSeq     atomic.Uint64 // the highest stream sequence seen

	// stateMu serialises refreshes of the cached stream state.
	stateMu sync.Mutex
	state   wire.StreamState // guarded by stateMu
	stateAt time.Time        // guarded by stateMu: when state was read

	live live // the live subscriptions and their dispatcher

	recent recentCache // the room list (rooms.go)

	stateFlights stateFlights // state reads under way, shared (snapshot.go)

	badPayloadLog *lograte.Limiter // the log lines of events with a bad payload

	mu       sync.Mutex
	connLost context.Context    // guarded by mu: done when the connection drops
	lose     context.CancelFunc // guarded by mu: ends connLost
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
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.MaxConcurrentReads <= 0 {
		o.MaxConcurrentReads = DefaultMaxConcurrentReads
	}
	stream := o.Stream.withDefaults()
	b := &Bus{
		nc:             nc,
		js:             js,
		subj:           Subjects{Prefix: o.Prefix},
		stream:         stream,
		keys:           o.State.withDefaults(),
		log:            o.Logger,
		m:              o.Metrics,
		apiDirect:      "$JS.API.DIRECT.GET." + stream.Name,
		apiMsgGet:      "$JS.API.STREAM.MSG.GET." + stream.Name,
		apiStateDirect: "$JS.API.DIRECT.GET." + StateStreamName(stream.Name),
		timeout:        o.RequestTimeout,
		longReplay:     cmp.Or(o.LongReplay, LongReplay),
		directFirst:    cmp.Or(o.LongReplay, LongReplay) / 8,
		pullBatch:      pullBatch,
	}
	if o.ReaderRate == 0 {
		o.ReaderRate = DefaultReaderRate
	}
	b.reads = newScheduler(o.MaxConcurrentReads, newPacing(o.ReaderRate), func(n int) { o.Metrics.ReadsWaiting.Set(float64(n)) })
	b.live.init()
	b.recent.ttl = RecentRoomsTTL
	b.badPayloadLog = lograte.New(badPayloadLogInterval, nil)
	b.connLost, b.lose = context.WithCancel(context.Background())
	return b, nil
}

// Disconnected ends every request in flight: the connection they were sent
// on is gone, and their answers with it. The owner of the NATS connection
// calls it from its disconnect handler, and Reconnected once it is back.
func (b *Bus) Disconnected() {
	b.mu.Lock()
	b.lose()
	b.mu.Unlock()
}

// Reconnected lets requests run again after Disconnected.
func (b *Bus) Reconnected() {
	b.mu.Lock()
	if b.connLost.Err() != nil {
		b.connLost, b.lose = context.WithCancel(context.Background())
	}
	b.mu.Unlock()
}

// startRead waits for a read slot for a request about room (its subject,
// "" for a request about many), for as long as ctx allows, and returns
// the request's context and the function that ends it and frees the
// slot. A reader that spent its budget waits first (pace.go); slots are
// shared fairly between readers (fairness.go). The request timeout
// starts once the slot is taken: waiting in line is not the stream being
// slow.
func (b *Bus) startRead(ctx context.Context, room string) (context.Context, context.CancelFunc, error) {
	if paced(ctx) {
		var err error
		if ctx, err = b.AwaitBudget(ctx); err != nil {
			return nil, nil, err
		}
	}
	release, err := b.reads.acquire(ctx, readerOf(ctx), room)
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		// Granted as ctx ended (a cancelled join's prefetch, say): the
		// request is for no one.
		release()
		return nil, nil, err
	}
	rctx, cancel := b.requestCtx(ctx)
	return rctx, func() {
		cancel()
		release()
	}, nil
}

// readFrom charges the reader of ctx for n events read from the stream.
func (b *Bus) readFrom(ctx context.Context, n int) { b.reads.spend(readerOf(ctx), n) }

// requestCtx bounds one request: by the request timeout, and by the
// connection it goes out on.
func (b *Bus) requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	b.mu.Lock()
	lost := b.connLost
	b.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, b.timeout)
	stop := context.AfterFunc(lost, cancel)
	return rctx, func() {
		stop()
		cancel()
	}
}

// Subjects returns the bus's subject mapping.
func (b *Bus) Subjects() Subjects { return b.subj }

// Connected reports whether the NATS connection is up.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// decode builds the event of a stored message; an invalid payload yields an
// event with Err set, so the room's sequence still advances past it.
func (b *Bus) decode(r wire.Room, seq, prev uint64, ts time.Time, data []byte, h nats.Header) *wire.Event {
	ev := &wire.Event{Room: r, Seq: seq, Prev: prev, Time: ts}
	name, d, err := wire.ParsePayload(data)
	if err == nil {
		ev.Key, ev.KeyDeleted, err = wire.ParseKey(h.Get(wire.HeaderKey), h.Get(wire.HeaderKeyDeleted))
	}
	if err != nil {
		ev.Err = err
		b.m.BadPayloads.Inc()
		if errors.Is(err, wire.ErrBadKey) {
			b.m.BadKeys.Inc()
		}
		// A publisher may store thousands, and every replay reads them
		// again: one line per interval, with the count held back.
		if ok, heldBack := b.badPayloadLog.Allow(); ok {
			b.log.Warn("dropped event with a bad payload", "room", r.String(), "seq", seq, "err", err, "held_back", heldBack)
		}
		return ev
	}
	ev.Name, ev.Data = name, d
	return ev
}

// Publish stores one event of room r and returns its sequence. The payload
// and the key are validated first, as the edges read them; o's MsgID, when
// set, makes retries idempotent, and its key travels in the key headers
// (docs/protocol.md, "Keys"), the payload unchanged.
func (b *Bus) Publish(ctx context.Context, r wire.Room, payload []byte, o wire.PublishOptions) (uint64, error) {
	if _, _, err := wire.ParsePayload(payload); err != nil {
		return 0, err
	}
	if err := o.CheckKey(); err != nil {
		return 0, err
	}
	m := nats.NewMsg(b.subj.Room(r))
	m.Data = payload
	if o.MsgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, o.MsgID)
	}
	if key, deleted := o.KeyHeaders(); key != "" {
		m.Header.Set(wire.HeaderKey, key)
		if deleted != "" {
			m.Header.Set(wire.HeaderKeyDeleted, deleted)
		}
	}
	ack, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("publish to %s: %w", m.Subject, err)
	}
	return ack.Sequence, nil
}
