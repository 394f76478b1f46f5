package bus

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/lograte"
	"github.com/roomcast/roomcast/internal/wire"
)

// liveQueue is how many live messages, of all rooms together, may wait for
// the dispatcher. The dispatcher only checks and decodes each message and
// hands it to its room without blocking, so the queue stays short; when a
// burst fills it, NATS drops the messages that do not fit and reports
// their subscriptions as slow consumers, and those rooms resync from the
// stream.
const liveQueue = 8192

// refusedLogInterval is how often at most a refused live message is
// logged: whoever may publish to a live subject can send thousands a
// second, and the log must not carry each. roomcast_live_refused_total
// counts every one.
const refusedLogInterval = time.Minute

// badPayloadLogInterval is the same for stored events whose payload is not
// an event: roomcast_bad_payloads_total counts every one.
const badPayloadLogInterval = time.Minute

// live is the bus's side of the live subscriptions: one channel that every
// room's subscription delivers into, and one dispatcher goroutine that
// reads it. A subscription costs NATS's record of it and an entry here,
// not a goroutine of its own, so a node can follow tens of thousands of
// rooms with one member each.
type live struct {
	msgs chan *nats.Msg // every live subscription's messages, in arrival order

	mu      sync.RWMutex
	subs    map[*nats.Subscription]*liveSub // guarded by mu
	started bool                            // guarded by mu: the dispatcher runs
	closed  bool                            // guarded by mu: Close was called

	stop chan struct{} // closed by Close: ends the dispatcher and drain watchers
	done chan struct{} // closed when the dispatcher has ended

	refusedLog *lograte.Limiter // the log lines of refused messages
}

// liveSub is what the bus keeps of one room's live subscription.
type liveSub struct {
	room     wire.Room
	onEvent  func(*wire.Event)
	onDrop   func()
	draining atomic.Bool // an afterDrain watches the subscription
}

func (l *live) init() {
	l.msgs = make(chan *nats.Msg, liveQueue)
	l.subs = make(map[*nats.Subscription]*liveSub)
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
	l.refusedLog = lograte.New(refusedLogInterval, nil)
}

func (l *live) lookup(sub *nats.Subscription) *liveSub {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.subs[sub]
}

// ErrClosed is returned by SubscribeLive after Close.
var ErrClosed = errors.New("bus closed")

// SubscribeLive delivers room r's republished events to onEvent in arrival
// order. onEvent runs on the bus's one dispatcher, which serves every room,
// so it must not block: it hands the event on and returns. Messages not
// republished by the stream are dropped and counted. When NATS drops
// messages because the dispatcher fell behind (a slow consumer), onDrop is
// called (on another goroutine), so the caller can fetch what was lost
// from the stream. It returns the function that ends the subscription.
func (b *Bus) SubscribeLive(r wire.Room, onEvent func(*wire.Event), onDrop func()) (unsubscribe func() error, err error) {
	l := &b.live
	subject := b.subj.Live(r)
	// mu is held from the subscription to its registration, so the
	// dispatcher cannot meet a message of a subscription it does not know.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("subscribe %s: %w", subject, ErrClosed)
	}
	sub, err := b.nc.ChanSubscribe(subject, l.msgs)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	l.subs[sub] = &liveSub{room: r, onEvent: onEvent, onDrop: onDrop}
	if !l.started {
		l.started = true
		go b.dispatch()
	}
	return func() error {
		l.mu.Lock()
		delete(l.subs, sub)
		l.mu.Unlock()
		return sub.Unsubscribe()
	}, nil
}

// Close stops the dispatcher; live subscriptions deliver nothing more. The
// owner of the bus calls it once the NATS connection is closed.
func (b *Bus) Close() {
	l := &b.live
	l.mu.Lock()
	started := l.started
	if !l.closed {
		l.closed = true
		close(l.stop)
	}
	l.mu.Unlock()
	if started {
		<-l.done
	}
}

// dispatch is the dispatcher: it checks and decodes each live message and
// hands it to its room's handler. Messages of a subscription that has
// ended meanwhile are dropped: their room has gone.
func (b *Bus) dispatch() {
	defer close(b.live.done)
	for {
		select {
		case m := <-b.live.msgs:
			ls := b.live.lookup(m.Sub)
			if ls == nil {
				continue
			}
			if ev := b.liveEvent(ls.room, m); ev != nil {
				ls.onEvent(ev)
			}
		case <-b.live.stop:
			return
		}
	}
}

// AsyncError routes an error NATS reports for a subscription: a slow
// consumer on a live subscription calls its drop handler. It reports
// whether the error was one of the bus's. The owner of the NATS connection
// calls it from its error handler.
func (b *Bus) AsyncError(sub *nats.Subscription, err error) bool {
	if sub == nil {
		return false
	}
	ls := b.live.lookup(sub)
	if ls == nil {
		return false
	}
	if errors.Is(err, nats.ErrSlowConsumer) {
		b.m.LiveDrops.Inc()
		ls.onDrop()
		if ls.draining.CompareAndSwap(false, true) {
			go b.afterDrain(sub, ls)
		}
	}
	return true
}

// afterDrain calls onDrop once more when the drops have stopped. NATS
// reports a slow consumer once, when it starts dropping, and goes on
// dropping without a word until a message of the subscription gets
// through; a sync the first call starts may read the stream before the
// last of those were dropped. Once the subscription's drop count has held
// still for a poll with the queue no longer full, a sync finds them all.
// It ends by itself: then, when the subscription ends, or on Close.
func (b *Bus) afterDrain(sub *nats.Subscription, ls *liveSub) {
	last := -1
	for {
		n, err := sub.Dropped()
		if err != nil {
			ls.draining.Store(false)
			return // unsubscribed or the connection closed
		}
		if n == last && len(b.live.msgs) < cap(b.live.msgs) {
			// Let a new episode start its own watcher before the last
			// sync, then look once more: drops that came in between,
			// reported while this watcher still ran, are watched too.
			ls.draining.Store(false)
			ls.onDrop()
			if again, err := sub.Dropped(); err != nil || again == n || !ls.draining.CompareAndSwap(false, true) {
				return
			}
			n = -1
		}
		last = n
		select {
		case <-time.After(drainPoll):
		case <-b.live.stop:
			ls.draining.Store(false)
			return
		}
	}
}

// drainPoll is how often afterDrain looks at a subscription that dropped.
const drainPoll = 20 * time.Millisecond

// liveEvent checks and decodes a message of a live subject. Only the
// stream's republish gives it the stream's name and the stored subject of
// the same room; anything else (a client publishing to a live subject by
// mistake or with intent) is refused. The real protection is that only the
// stream may publish there (natsconf/ and the embedded server's
// permissions); this check keeps a misconfigured deployment from being
// fooled by the common mistakes.
func (b *Bus) liveEvent(r wire.Room, m *nats.Msg) *wire.Event {
	seq, prev, ts, err := b.liveHeaders(r, m.Header)
	if err != nil {
		b.m.ForgedLive.Inc()
		// One line per interval, for this message, with the count of
		// those refused since the last line and not logged.
		if ok, heldBack := b.live.refusedLog.Allow(); ok {
			b.log.Warn("dropped a live message the stream did not republish", "subject", m.Subject, "room", r.String(), "err", err, "held_back", heldBack)
		}
		return nil
	}
	b.noteSeq(seq)
	b.m.Received.Inc()
	return b.decode(r, seq, prev, ts, m.Data, m.Header)
}

// liveHeaders parses and checks the headers the stream's republish sets.
func (b *Bus) liveHeaders(r wire.Room, h nats.Header) (seq, prev uint64, ts time.Time, err error) {
	if got := h.Get(jetstream.StreamHeader); got != b.stream.Name {
		return 0, 0, ts, fmt.Errorf("stream header %q, want %q", got, b.stream.Name)
	}
	if got := h.Get(jetstream.SubjectHeader); got != b.subj.Room(r) {
		return 0, 0, ts, fmt.Errorf("subject header %q, want %q", got, b.subj.Room(r))
	}
	seq, err = strconv.ParseUint(h.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return 0, 0, ts, fmt.Errorf("bad sequence header %q", h.Get(jetstream.SequenceHeader))
	}
	prev, err = strconv.ParseUint(h.Get(jetstream.LastSequenceHeader), 10, 64)
	if err != nil || prev >= seq {
		return 0, 0, ts, fmt.Errorf("bad last sequence header %q", h.Get(jetstream.LastSequenceHeader))
	}
	ts, err = time.Parse(time.RFC3339Nano, h.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return 0, 0, ts, fmt.Errorf("bad time stamp header %q", h.Get(jetstream.TimeStampHeaer))
	}
	return seq, prev, ts, nil
}
