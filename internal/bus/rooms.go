package bus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/requester"
	"github.com/roomcast/roomcast/internal/wire"
)

// The dashboard's room list: the rooms with recent events, each with its
// latest event's sequence and time, read from the stream (the only place
// that knows every room, not just those this node serves).
//
// One multi_last direct get over the wildcard <prefix>.rooms.> answers
// with the last stored event of every room, in one request, from any
// replica (from the window's first event on: older rooms are not sent). The server answers at most 1,024 subjects that way (a 413
// beyond); then the list is read from the window's own events instead: a
// next_by_subj read over the wildcard from start_time, in stream order,
// of at most recentMaxParts batches, so a stream with more rooms, or a
// window busier than that, gives a partial list (Truncated). Either way
// the answer is bounded in requests and bytes, and the list is kept for
// RecentRoomsTTL, so any number of dashboards cost the stream at most one
// read of it per node per TTL.

// Limits of the room list.
const (
	// RecentRoomsWindow is how recent a room's latest event must be for
	// the room to be listed.
	RecentRoomsWindow = time.Hour
	// RecentRoomsTTL is how long a node keeps the list it read.
	RecentRoomsTTL = 2 * time.Second
	// recentMaxParts bounds the requests (each of maxBatchBytes) one
	// read of the list makes: 2 MiB at most.
	recentMaxParts = 8
	// recentBatch is the most messages one request of the list answers:
	// the server's own multi_last limit.
	recentBatch = 1024
	// recentReadLimit bounds one read of the list, slot waits included:
	// it is read for every caller, so no caller's leaving ends it.
	recentReadLimit = 15 * time.Second
)

// recentCache is a node's last read of the room list; one read at a time.
type recentCache struct {
	ttl time.Duration // RecentRoomsTTL; tests make it longer

	mu     sync.Mutex
	list   wire.RecentRooms
	err    error
	at     time.Time     // when list or err was read
	flight chan struct{} // non-nil while a read is under way; closed at its end
}

// RecentRooms returns the rooms whose latest event is at most
// RecentRoomsWindow old, newest first, as read at most RecentRoomsTTL
// ago. Concurrent callers share one read of the stream. The read is the
// node's own (it serves every caller, not the one who happened to ask
// first): it takes a read slot like any other, within the node's share.
// The caller filters the list by what it may see.
func (b *Bus) RecentRooms(ctx context.Context) (wire.RecentRooms, error) {
	c := &b.recent
	for {
		c.mu.Lock()
		if !c.at.IsZero() && time.Since(c.at) < c.ttl {
			list, err := c.list, c.err
			c.mu.Unlock()
			return list, err
		}
		if c.flight == nil {
			flight := make(chan struct{})
			c.flight = flight
			c.mu.Unlock()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recentReadLimit)
			list, err := b.readRecent(rctx)
			cancel()
			c.mu.Lock()
			c.list, c.err, c.at, c.flight = list, err, time.Now(), nil
			c.mu.Unlock()
			close(flight)
			return list, err
		}
		flight := c.flight
		c.mu.Unlock()
		select {
		case <-flight:
		case <-ctx.Done():
			return wire.RecentRooms{}, ctx.Err()
		}
	}
}

// readRecent reads the room list from the stream, as the node.
func (b *Bus) readRecent(ctx context.Context) (wire.RecentRooms, error) {
	ctx = requester.With(ctx, nil) // the node's read, whoever asked
	since := time.Now().Add(-RecentRoomsWindow)
	heads := make(map[wire.Room]wire.RoomHead)
	truncated, err := b.recentByLast(ctx, since, heads)
	if errors.Is(err, errTooManyResults) {
		clear(heads)
		truncated, err = b.recentByScan(ctx, since, heads)
	}
	if err != nil {
		return wire.RecentRooms{}, fmt.Errorf("room list: %w", err)
	}
	list := wire.RecentRooms{Truncated: truncated}
	for _, h := range heads {
		if !h.Time.Before(since) {
			list.Rooms = append(list.Rooms, h)
		}
	}
	slices.SortFunc(list.Rooms, func(a, b wire.RoomHead) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.Seq, a.Seq))
	})
	return list, nil
}

// recentByLast reads the last event of every room that has one since
// `since`, with multi_last over the wildcard, up to one stream position,
// in at most recentMaxParts parts. The answer carries each event whole:
// it starts at the window's first event (found with a one-message read),
// so rooms quiet for longer cost nothing but their count.
func (b *Bus) recentByLast(ctx context.Context, since time.Time, heads map[wire.Room]wire.RoomHead) (truncated bool, err error) {
	first, _, err := b.direct(ctx, directRequest{NextFor: b.subj.AllRooms(), Batch: 1, StartTime: &since})
	switch {
	case errors.Is(err, errNoResults):
		return false, nil // nothing stored since
	case err != nil:
		return false, err
	case len(first) == 0:
		return false, nil
	}
	req := directRequest{MultiLast: []string{b.subj.AllRooms()}, Batch: recentBatch, MaxBytes: maxBatchBytes, Seq: first[0].Seq}
	for range recentMaxParts {
		msgs, end, err := b.direct(ctx, req)
		switch {
		case errors.Is(err, errNoResults):
			return false, nil
		case err != nil:
			return false, err
		}
		last := b.noteHeads(msgs, heads)
		if req.UpToSeq == 0 {
			req.UpToSeq = end.UpTo
		}
		if end.Pending == 0 || last == 0 {
			return false, nil
		}
		req.Seq = last + 1
	}
	return true, nil
}

// recentByScan reads the events stored since `since`, over every room, in
// stream order, in at most recentMaxParts batches, keeping each room's
// latest.
func (b *Bus) recentByScan(ctx context.Context, since time.Time, heads map[wire.Room]wire.RoomHead) (truncated bool, err error) {
	req := directRequest{NextFor: b.subj.AllRooms(), Batch: recentBatch, MaxBytes: maxBatchBytes, StartTime: &since}
	for range recentMaxParts {
		msgs, end, err := b.direct(ctx, req)
		switch {
		case errors.Is(err, errNoResults):
			return false, nil
		case err != nil:
			return false, err
		}
		last := b.noteHeads(msgs, heads)
		if end.Pending == 0 || last == 0 {
			return false, nil
		}
		req.StartTime, req.Seq = nil, last+1
	}
	return true, nil
}

// noteHeads keeps the latest of msgs per room in heads and returns the
// highest sequence among them. A subject that is not a room (published
// under the prefix by hand) is skipped.
func (b *Bus) noteHeads(msgs []storedMsg, heads map[wire.Room]wire.RoomHead) (last uint64) {
	for _, m := range msgs {
		last = max(last, m.Seq)
		r, err := b.subj.RoomOf(m.Subject)
		if err != nil {
			continue
		}
		if h, ok := heads[r]; !ok || m.Seq > h.Seq {
			heads[r] = wire.RoomHead{Room: r, Seq: m.Seq, Time: m.Time}
		}
	}
	b.noteSeq(last)
	return last
}
