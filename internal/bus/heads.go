package bus

import (
	"context"
	"errors"
	"fmt"

	"github.com/roomcast/roomcast/internal/wire"
)

// Heads returns the sequence of the latest stored event of each of rooms
// (rooms with none are absent) and the stream's last sequence when it was
// read. It asks with batched direct gets (multi_last), a thousand rooms a
// request, so checking every room of an edge costs a few requests, not one
// a room. A replica may answer, and one that lags reports older heads: a
// caller comparing heads with what it delivered sees nothing to do until
// the replica catches up, never a false gap.
func (b *Bus) Heads(ctx context.Context, rooms []wire.Room) (heads map[wire.Room]uint64, streamLast uint64, err error) {
	heads = make(map[wire.Room]uint64, len(rooms))
	for len(rooms) > 0 {
		chunk, rest := b.headsChunk(rooms)
		rooms = rest
		// Every chunk reads up to where the first one did, so the heads
		// all describe the stream at one position.
		if streamLast, err = b.headsOf(ctx, chunk, streamLast, heads); err != nil {
			return nil, 0, err
		}
	}
	return heads, streamLast, nil
}

// headsChunk splits off as many rooms as one multi_last request takes.
func (b *Bus) headsChunk(rooms []wire.Room) (chunk, rest []wire.Room) {
	size := 0
	for i, r := range rooms {
		size += len(b.subj.Room(r)) + 3 // quotes and comma
		if i == maxMultiLast || size > maxMultiLastBytes {
			return rooms[:i], rooms[i:]
		}
	}
	return rooms, nil
}

// headsOf reads the heads of one chunk of rooms into heads, as of the
// stream position upTo (0: the stream's last), and returns that position.
// The answer is bounded by bytes (it carries each room's last event
// whole), so it may come in several parts: each continues past the last
// sequence returned, up to the same position.
func (b *Bus) headsOf(ctx context.Context, rooms []wire.Room, upTo uint64, heads map[wire.Room]uint64) (uint64, error) {
	subjects := make([]string, len(rooms))
	for i, r := range rooms {
		subjects[i] = b.subj.Room(r)
	}
	req := directRequest{MultiLast: subjects, MaxBytes: maxBatchBytes, UpToSeq: upTo}
	for {
		msgs, end, err := b.direct(ctx, req)
		switch {
		case errors.Is(err, errNoResults):
			return req.UpToSeq, nil
		case err != nil:
			return 0, fmt.Errorf("heads of %d rooms: %w", len(rooms), err)
		}
		var last uint64
		for _, m := range msgs {
			r, err := b.subj.RoomOf(m.Subject)
			if err != nil {
				return 0, fmt.Errorf("heads of %d rooms: %w", len(rooms), err)
			}
			heads[r] = max(heads[r], m.Seq)
			last = max(last, m.Seq)
		}
		if req.UpToSeq == 0 {
			req.UpToSeq = end.UpTo
		}
		b.noteSeq(req.UpToSeq)
		if end.Pending == 0 || last == 0 {
			return req.UpToSeq, nil
		}
		req.Seq = last + 1
	}
}
