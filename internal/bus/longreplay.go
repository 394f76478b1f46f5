package bus

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// LongReplay is the length (until − after) from which Replay reads
// through a consumer (pull.go) instead of direct gets. Below it a replay
// stays on direct gets: any replica answers, no state on the stream
// leader, nothing to clean up. Above it the per-message cost dominates,
// and a consumer's delivery costs the edge less per event (no headers to
// parse), for a consumer made and deleted per replay (a meta leader
// proposal each) and a stream leader get per batch.
// It is above --retention-max-per-room's default (10,000), so with the
// defaults every resume, however many at once, stays on direct gets
// (docs/architecture.md, "Long replays").
const LongReplay = 16384

// consumerBackoff is how long a node stops trying consumers after one
// could not be made (no permission for the consumer API, a consumer
// limit): direct gets do the long replays meanwhile.
const consumerBackoff = time.Minute

// consumerGate remembers when making a consumer last failed.
type consumerGate struct{ failedAt atomic.Int64 } // Unix nanoseconds, 0 never

func (g *consumerGate) open() bool {
	at := g.failedAt.Load()
	return at == 0 || time.Since(time.Unix(0, at)) > consumerBackoff
}

// viaConsumer reads as much of (cursor, until] as it can through an
// ephemeral consumer of the room, and returns with the cursor where it
// stopped: Replay goes on from there with direct gets, which find the
// end when the consumer stopped short (the rest removed, or a consumer
// on a server that lags: the leader checks decide, as for a replica).
//
// It keeps direct gets' proof of intact: a batch is delivered only once
// the leader confirmed, after the batch arrived, that the event before it
// (the cursor; the batch's first when there is none) is still stored.
// Retention removes a room's oldest events first, so a hole the consumer
// passed over would have taken that event with it.
func (rd *reader) viaConsumer(ctx context.Context) error {
	if !rd.b.consumers.open() {
		return nil
	}
	c, err := rd.b.openConsumer(ctx, rd.subject, max(rd.cursor, 1))
	switch {
	case err != nil && ctx.Err() != nil:
		return err
	case err != nil:
		rd.b.consumers.failedAt.Store(time.Now().UnixNano())
		if rd.b.log != nil {
			rd.b.log.Warn("long replays use direct gets for a while: no consumer", "err", err)
		}
		return nil
	}
	defer c.close()
	if c.pending == 0 {
		return nil
	}
	rd.get = func(ctx context.Context, _ uint64) ([]storedMsg, batchEnd, error) {
		return c.pull(ctx, rd.subject, rd.until)
	}
	defer func() {
		rd.dropPrefetch()
		rd.get = nil
	}()
	for rd.cursor < rd.until {
		msgs, end, err := rd.fetch(ctx, rd.cursor)
		if errors.Is(err, errConsumerUnreachable) {
			return nil // direct gets carry on from the cursor, as after a consumer that stopped short
		}
		if err != nil || len(msgs) == 0 {
			return err
		}
		if last := msgs[len(msgs)-1].Seq; end.Pending > 0 && last < rd.until {
			rd.prefetch(ctx, last)
		}
		done, err := rd.deliverProven(ctx, msgs)
		if err != nil || done || end.Pending == 0 {
			return err
		}
	}
	return nil
}

// deliverProven delivers a consumer's batch once the leader confirmed the
// event before it; done reports that the range's end was reached.
func (rd *reader) deliverProven(ctx context.Context, msgs []storedMsg) (done bool, err error) {
	proof := rd.cursor
	if proof == 0 {
		proof = msgs[0].Seq
	}
	m, found, err := rd.b.leaderNext(ctx, rd.subject, proof)
	if err != nil {
		return false, err
	}
	proven := found && m.Seq == proof
	if !proven {
		rd.intact = false // a hole may lie anywhere before or in the batch
	}
	var prev uint64
	if proven {
		prev = rd.cursor
	}
	for _, m := range msgs {
		if m.Seq == rd.cursor {
			continue // the first batch starts at the cursor's own event
		}
		if err := rd.deliver(m, prev); errors.Is(err, errReachedUntil) {
			return true, nil
		} else if err != nil {
			return false, err
		}
		if proven {
			prev = m.Seq
		}
	}
	return false, nil
}
