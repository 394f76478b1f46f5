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

// replayFetchWait bounds one fetch; a fetch that finds nothing ends the replay.
const replayFetchWait = 2 * time.Second

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
		batch, err := cons.Fetch(ReplayBatch, jetstream.FetchMaxWait(replayFetchWait), jetstream.FetchContext(ctx))
		if err != nil {
			return fmt.Errorf("replay %s: fetch: %w", r, err)
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			if done {
				continue // drain the batch; the ordered consumer needs no acks
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("replay %s: metadata: %w", r, err)
			}
			seq := md.Sequence.Stream
			if seq > until {
				done = true
				continue
			}
			if err := fn(b.decode(r, seq, 0, md.Timestamp, m.Data())); err != nil {
				return err
			}
			if seq == until || md.NumPending == 0 {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("replay %s: fetch: %w", r, err)
		}
		if done || n == 0 {
			return ctx.Err()
		}
	}
}
