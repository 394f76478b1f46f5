package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// ReplayBatch is how many events one direct get of a replay asks for, so a
// large replay never sits in memory whole and costs one request per batch.
// The byte bound (maxBatchBytes) applies too, whichever comes first; a
// replay holds at most two answers: the one it delivers and the next.
const ReplayBatch = 1024

// Replay calls fn, in sequence order, with each stored event of room r
// whose sequence is in (after, until]. until should be a sequence of one of
// r's events (the room's latest known one): reaching it is how a read knows
// it is complete.
//
// It reads with batched direct gets that any replica may answer. A batch
// that ends before until (the replica has no more) is checked against the
// stream leader: if the leader holds an event the replica did not return,
// the replica lags, and the read goes on (from the leader while the
// replica stays behind); if the leader holds none up to until, retention
// removed them and the read is done.
//
// intact reports that nothing in (after, until] was removed before it was
// read: each batch starts at the last event read (after itself for the
// first, which is not delivered again), and retention removes a room's
// oldest events first, so finding that event still stored proves nothing
// after it is gone. (An operator deleting single messages by hand is not
// retention, and is not noticed.) With after 0 it is intact only when the
// stream holds every event ever stored under its name (HoldsAll). It stops when fn returns an error (which it
// returns) or ctx ends.
func (b *Bus) Replay(ctx context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) (intact bool, err error) {
	if until <= after {
		return true, nil
	}
	rd := &reader{b: b, r: r, subject: b.subj.Room(r), cursor: after, until: until, fn: fn, intact: true}
	defer rd.dropPrefetch()
	if after == 0 {
		if rd.intact, err = b.HoldsAll(ctx); err != nil {
			return false, err
		}
	}
	if until-after >= b.longReplay {
		// A long replay starts on direct gets all the same: a client
		// that leaves after a few events (a storm of subscribes from 0,
		// a slow one giving up) costs no consumer.
		done, err := rd.direct(ctx, after+b.directFirst)
		if err != nil || done {
			return rd.intact, wrapReplay(err, r, after, until)
		}
		rd.dropPrefetch()
		if err := rd.viaConsumer(ctx); err != nil {
			return false, wrapReplay(err, r, after, until)
		}
	}
	_, err = rd.direct(ctx, until)
	return rd.intact, wrapReplay(err, r, after, until)
}

// directFirst is how many events a long replay reads with direct gets
// before it makes a consumer: an eighth of LongReplay (a bus made with
// a lower Options.LongReplay reads an eighth of that).
const directFirst = LongReplay / 8

// direct reads with direct gets until the cursor reaches upTo (or the
// range's end); done reports that the range is finished: reached, or
// removed by retention up to until.
func (rd *reader) direct(ctx context.Context, upTo uint64) (done bool, err error) {
	for rd.cursor < min(upTo, rd.until) {
		more, err := rd.batch(ctx)
		if err != nil {
			return false, err
		}
		if more {
			continue
		}
		// The replica has nothing more: ask the leader.
		if done, err := rd.checkLeader(ctx); err != nil || done {
			return done, err
		}
	}
	return rd.cursor >= rd.until, nil
}

// wrapReplay names the replay in its error, if any.
func wrapReplay(err error, r wire.Room, after, until uint64) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("replay %s (%d, %d]: %w", r, after, until, err)
}

// reader is one Replay in progress.
type reader struct {
	b       *Bus
	r       wire.Room
	subject string
	cursor  uint64 // the last sequence delivered (or after)
	until   uint64
	fn      func(*wire.Event) error
	intact  bool
	// unconfirmed: the replica had nothing at or after the cursor, so
	// whether the cursor's event is still stored is for the leader to say.
	unconfirmed bool
	lags        int       // consecutive times the replica was found behind the leader
	fromLeader  int       // events still to read from the leader before asking the replica again
	next        *prefetch // the next batch, asked for while this one is delivered
	// get reads a batch instead of a direct get while a consumer reads
	// (longreplay.go).
	get func(ctx context.Context, start uint64) ([]storedMsg, batchEnd, error)
}

// maxLags is how often a read waits for a lagging replica before it reads
// from the leader, one event per request, for leaderStint events; then it
// gives the replica another chance.
const (
	maxLags     = 4
	leaderStint = 64
)

// batch reads one batch from the replica, starting at the cursor's own
// event (the proof that nothing after it was removed). more reports that
// the replica holds more events of the room past what it returned.
func (rd *reader) batch(ctx context.Context) (more bool, err error) {
	if rd.fromLeader > 0 {
		return false, nil // the replica is too far behind: the leader, for a while
	}
	start := max(rd.cursor, 1)
	msgs, end, err := rd.fetch(ctx, start)
	switch {
	case errors.Is(err, errNoResults):
		// A replica holds a prefix of the leader's history: with nothing
		// at or after the cursor it either lags or lost the cursor too.
		rd.unconfirmed = rd.cursor > 0
		return false, nil
	case err != nil:
		return false, err
	case len(msgs) == 0:
		return end.Pending > 0, nil
	}
	// prev is the room's event before the next one delivered, when this
	// read proves it: the cursor's own event, returned first, and then
	// each event of the batch for the one after it.
	var prev uint64
	if rd.cursor > 0 && msgs[0].Seq != rd.cursor {
		rd.intact = false // the cursor's event is gone: maybe more after it
	} else {
		prev = rd.cursor
	}
	if last := msgs[len(msgs)-1].Seq; end.Pending > 0 && last < rd.until {
		// The next batch starts at this one's last event, which will be
		// the cursor once this one is delivered.
		rd.prefetch(ctx, last)
	}
	for _, m := range msgs {
		if m.Seq == rd.cursor {
			continue
		}
		if err := rd.deliver(m, prev); errors.Is(err, errReachedUntil) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		prev = m.Seq
	}
	if rd.cursor > start {
		rd.lags = 0
	}
	return end.Pending > 0, nil
}

// errReachedUntil stops a batch at the end of the range.
var errReachedUntil = errors.New("reached the end of the range")

// deliver hands one stored event in range to fn and moves the cursor.
// prev is the room's event before it when the read proved it (none was
// removed between them), 0 when a hole may lie before it: the event's
// Prev, so a reader learns of a hole before the events after it.
func (rd *reader) deliver(m storedMsg, prev uint64) error {
	if m.Seq > rd.until {
		return errReachedUntil
	}
	if err := rd.fn(rd.b.decode(rd.r, m.Seq, prev, m.Time, m.Data, m.Header)); err != nil {
		return err
	}
	rd.cursor = m.Seq
	if m.Seq == rd.until {
		return errReachedUntil
	}
	return nil
}

// checkLeader asks the stream leader for the room's next event after the
// cursor, once the replica had no more. done reports that the range is
// finished: reached, or removed by retention up to until.
func (rd *reader) checkLeader(ctx context.Context) (done bool, err error) {
	if rd.cursor >= rd.until {
		return true, nil
	}
	prev := rd.cursor
	if rd.unconfirmed {
		rd.unconfirmed = false
		m, found, err := rd.b.leaderNext(ctx, rd.subject, rd.cursor)
		if err != nil {
			return false, err
		}
		if !found || m.Seq != rd.cursor {
			rd.intact, prev = false, 0
		}
	}
	m, found, err := rd.b.leaderNext(ctx, rd.subject, rd.cursor+1)
	switch {
	case err != nil:
		return false, err
	case !found || m.Seq > rd.until:
		// Retention removed the rest of the range (until included).
		rd.intact = false
		return true, nil
	}
	if err := rd.deliver(m, prev); err != nil && !errors.Is(err, errReachedUntil) {
		return false, err
	}
	if rd.fromLeader > 0 {
		// Reading from the leader for a while; then the replica again.
		rd.fromLeader--
		if rd.fromLeader == 0 {
			rd.lags = 0
		}
		return rd.cursor >= rd.until, nil
	}
	// The replica is behind the leader: this event came from the leader;
	// give the replica a moment before asking it again, or after a few
	// times, read on from the leader for a while.
	rd.b.m.ReplicaLags.Inc()
	rd.lags++
	if rd.lags >= maxLags {
		rd.fromLeader = leaderStint
		return rd.cursor >= rd.until, nil
	}
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-time.After(time.Duration(rd.lags) * 10 * time.Millisecond):
	}
	return rd.cursor >= rd.until, nil
}

// HoldsAll reports whether the stream still holds every event ever stored
// under its name (wire.StreamState.HoldsAll), as the leader said at most a
// second ago: many replays from the start share one request.
func (b *Bus) HoldsAll(ctx context.Context) (bool, error) {
	st, err := b.recentState(ctx)
	if err != nil {
		return false, err
	}
	return st.HoldsAll(), nil
}
