package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/wire"
)

// ReplayBatch is how many events a replay fetches from the stream at a time,
// so a large replay never sits in memory whole.
const ReplayBatch = 256

// fetchTimeout bounds one fetch of a batch the stream said it holds.
const fetchTimeout = 5 * time.Second

// Replay calls fn, in sequence order, with each stored event of room r whose
// sequence is in (after, until]. It reads through a short-lived pull
// consumer filtered to the room, in batches whose sizes come from the
// consumer's count of pending events, so an event the stream holds is never
// mistaken for the end of the room: a batch that comes back short (the
// stream is unreachable, or retention removed events meanwhile) is an error
// the caller retries. It stops when fn returns an error (which it returns)
// or ctx ends.
func (b *Bus) Replay(ctx context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) error {
	if until <= after {
		return nil
	}
	st, err := b.streamHandle(ctx)
	if err != nil {
		return err
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubject: b.subj.Room(r),
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   after + 1,
		AckPolicy:     jetstream.AckNonePolicy,
		// Deleted when the replay ends; the threshold only reclaims the
		// consumer of an edge that died mid-replay. It is long because the
		// server counts inactivity from the last fetch, and handing one
		// batch to a slow client may take a while.
		InactiveThreshold: 10 * time.Minute,
		MemoryStorage:     true,
		Replicas:          1,
	})
	if err != nil {
		return fmt.Errorf("replay %s: consumer: %w", r, err)
	}
	defer b.deleteConsumer(st, cons.CachedInfo().Name)
	pending := cons.CachedInfo().NumPending
	cursor := after
	for pending > 0 {
		want := int(min(pending, ReplayBatch))
		n, last, done, err := b.replayBatch(ctx, cons, r, until, want, fn)
		if err != nil || done {
			return err
		}
		cursor = max(cursor, last)
		if n < want {
			// Fewer than counted: retention removed some meanwhile, or the
			// stream is not answering. Only the stream can tell which.
			return b.checkRemoved(ctx, st, r, cursor, until, n, want)
		}
		pending -= uint64(n)
	}
	return nil
}

// checkRemoved explains a short batch: nil when the room has no stored
// event left in (cursor, until] (retention removed them, which the caller
// sees as a cursor short of until), an error otherwise.
func (b *Bus) checkRemoved(ctx context.Context, st jetstream.Stream, r wire.Room, cursor, until uint64, n, want int) error {
	m, err := st.GetMsg(ctx, cursor+1, jetstream.WithGetMsgSubject(b.subj.Room(r)))
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound), err == nil && m.Sequence > until:
		return nil
	case err != nil:
		return fmt.Errorf("replay %s: the stream returned %d of %d pending events: %w", r, n, want, err)
	}
	return fmt.Errorf("replay %s: the stream returned %d of %d pending events", r, n, want)
}

// replayBatch fetches up to want events and hands them to fn. last is the
// sequence of the last one fetched; done means until was reached.
func (b *Bus) replayBatch(ctx context.Context, cons jetstream.Consumer, r wire.Room, until uint64, want int, fn func(*wire.Event) error) (n int, last uint64, done bool, err error) {
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	batch, err := cons.Fetch(want, jetstream.FetchContext(fctx))
	if err != nil {
		return 0, 0, false, fmt.Errorf("replay %s: fetch: %w", r, err)
	}
	for m := range batch.Messages() {
		n++
		if done || err != nil {
			continue // drain the batch; nothing is acknowledged
		}
		md, merr := m.Metadata()
		if merr != nil {
			err = fmt.Errorf("replay %s: metadata: %w", r, merr)
			continue
		}
		seq := md.Sequence.Stream
		last = seq
		if seq > until {
			done = true
			continue
		}
		if err = fn(b.decode(r, seq, 0, md.Timestamp, m.Data())); err != nil {
			continue
		}
		done = seq == until
	}
	if err != nil || done {
		return n, last, done, err
	}
	if berr := batch.Error(); berr != nil && !errors.Is(berr, jetstream.ErrNoMessages) && !(n > 0 && errors.Is(berr, context.DeadlineExceeded)) {
		return n, last, false, fmt.Errorf("replay %s: fetch: %w", r, berr)
	}
	return n, last, false, nil
}

func (b *Bus) deleteConsumer(st jetstream.Stream, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := st.DeleteConsumer(ctx, name); err != nil {
		b.log.Debug("delete replay consumer", "consumer", name, "err", err)
	}
}

// ResumePoint says where a resume of room r after since starts and whether
// it is complete (PROTOCOL.md section 3, "Resume"):
//   - since is still stored as an event of r: nothing after it can have been
//     removed (retention removes a room's oldest events first), so the
//     replay starts after since and is complete;
//   - since is past the end of the stream: the stream was recreated, so the
//     replay starts from the beginning and is not complete;
//   - otherwise, complete only when the stream has removed nothing after
//     since at all (a conservative answer: "false" means "maybe lost").
func (b *Bus) ResumePoint(ctx context.Context, r wire.Room, since uint64) (after uint64, recovered bool, err error) {
	st, err := b.streamHandle(ctx)
	if err != nil {
		return 0, false, err
	}
	if since > 0 {
		m, err := st.GetMsg(ctx, since)
		switch {
		case err == nil && m.Subject == b.subj.Room(r):
			return since, true, nil
		case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
			return 0, false, fmt.Errorf("resume %s: %w", r, err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("resume %s: stream info: %w", r, err)
	}
	s := info.State
	switch {
	case since > s.LastSeq:
		return 0, false, nil
	case s.FirstSeq > since+1 || s.NumDeleted > 0:
		return since, false, nil
	}
	return since, true, nil
}
