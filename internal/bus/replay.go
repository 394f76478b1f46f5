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

// Replay calls fn, in sequence order, with each stored event of room r whose
// sequence is in (after, until]. It reads the stream in batches through a
// short-lived ordered consumer filtered to the room. It stops early when the
// stream holds nothing more of the room, when fn returns an error (which it
// returns) or when ctx ends.
func (b *Bus) Replay(ctx context.Context, r wire.Room, after, until uint64, fn func(*wire.Event) error) error {
	if until <= after {
		return nil
	}
	st, err := b.streamHandle(ctx)
	if err != nil {
		return err
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{b.subj.Room(r)},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       after + 1,
		InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("replay %s: consumer: %w", r, err)
	}
	for {
		n, done, err := b.replayBatch(ctx, cons, r, until, fn)
		if err != nil {
			return err
		}
		if done || n == 0 {
			return ctx.Err()
		}
	}
}

// replayBatch fetches and hands over one batch; done means until, or the
// end of the room's events, was reached.
func (b *Bus) replayBatch(ctx context.Context, cons jetstream.Consumer, r wire.Room, until uint64, fn func(*wire.Event) error) (n int, done bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	// No wait: the stream already holds what is replayed; an empty answer
	// means the room has nothing more.
	batch, err := cons.FetchNoWait(ReplayBatch)
	if err != nil {
		return 0, false, fmt.Errorf("replay %s: fetch: %w", r, err)
	}
	for m := range batch.Messages() {
		n++
		if done {
			continue // drain the batch; the ordered consumer needs no acks
		}
		md, err := m.Metadata()
		if err != nil {
			return n, false, fmt.Errorf("replay %s: metadata: %w", r, err)
		}
		seq := md.Sequence.Stream
		if seq > until {
			done = true
			continue
		}
		if err := fn(b.decode(r, seq, 0, md.Timestamp, m.Data())); err != nil {
			return n, false, err
		}
		done = seq == until || md.NumPending == 0
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return n, false, fmt.Errorf("replay %s: fetch: %w", r, err)
	}
	return n, done, nil
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
