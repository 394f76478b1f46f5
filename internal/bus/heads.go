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
	subjects := make([]string, len(rooms))
	for i, r := range rooms {
		subjects[i] = b.subj.Room(r)
	}
	n := len(multiLastChunk(subjects))
	return rooms[:n], rooms[n:]
}

// multiLastChunk is the first of subjects that one multi_last request
// takes.
func multiLastChunk(subjects []string) []string {
	size := 0
	for i, s := range subjects {
		size += len(s) + 3 // quotes and comma
		if i == maxMultiLast || size > maxMultiLastBytes {
			return subjects[:i]
		}
	}
	return subjects
}

// headsOf reads the heads of one chunk of rooms into heads, as of the
// stream position upTo (0: the stream's last), and returns that position.
func (b *Bus) headsOf(ctx context.Context, rooms []wire.Room, upTo uint64, heads map[wire.Room]uint64) (uint64, error) {
	subjects := make([]string, len(rooms))
	for i, r := range rooms {
		subjects[i] = b.subj.Room(r)
	}
	upTo, err := b.multiLastOf(ctx, b.apiDirect, subjects, upTo, func(m storedMsg) error {
		r, err := b.subj.RoomOf(m.Subject)
		if err != nil {
			return err
		}
		heads[r] = max(heads[r], m.Seq)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("heads of %d rooms: %w", len(rooms), err)
	}
	b.noteSeq(upTo)
	return upTo, nil
}

// multiLast calls fn with the last stored message of each of subjects
// (those with none are skipped), in chunks of one request each.
func (b *Bus) multiLast(ctx context.Context, api string, subjects []string, fn func(storedMsg) error) error {
	var upTo uint64
	for len(subjects) > 0 {
		chunk := multiLastChunk(subjects)
		subjects = subjects[len(chunk):]
		var err error
		if upTo, err = b.multiLastOf(ctx, api, chunk, upTo, fn); err != nil {
			return err
		}
	}
	return nil
}

// multiLastOf calls fn with the last stored message of each of one
// request's subjects, as of the stream position upTo (0: the stream's
// last), and returns that position. The answer is bounded by bytes (it
// carries each message whole), so it may come in several parts: each
// continues past the last sequence returned, up to the same position.
func (b *Bus) multiLastOf(ctx context.Context, api string, subjects []string, upTo uint64, fn func(storedMsg) error) (uint64, error) {
	req := directRequest{MultiLast: subjects, MaxBytes: maxBatchBytes, UpToSeq: upTo}
	for {
		msgs, end, err := b.directOn(ctx, api, req)
		switch {
		case errors.Is(err, errNoResults):
			return req.UpToSeq, nil
		case err != nil:
			return 0, err
		}
		var last uint64
		for _, m := range msgs {
			if err := fn(m); err != nil {
				return 0, err
			}
			last = max(last, m.Seq)
		}
		if req.UpToSeq == 0 {
			req.UpToSeq = end.UpTo
		}
		if end.Pending == 0 || last == 0 {
			return req.UpToSeq, nil
		}
		req.Seq = last + 1
	}
}
