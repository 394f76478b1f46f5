package room

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/roomcast/roomcast/internal/wire"
)

// maxRing bounds the frames a room keeps for members catching up; a burst
// larger than this makes them replay further from the stream instead.
const maxRing = 1024

// maxHandOver bounds the frames a hand-over forces past the member's queue
// limit; with more to send, the catch-up replays another round instead.
const maxHandOver = 64

// maxCatchUpRounds bounds how often a catch-up replays again because the
// live feed outran it; a member that slow is better off reconnecting.
const maxCatchUpRounds = 8

// ErrTooSlow is returned by a resume that could not catch up with the live
// feed: the member reads slower than the room is written.
var ErrTooSlow = errors.New("resume could not catch up with the live feed")

// catchUp replays room rm's events after since to m, then hands m over to
// the live feed. The replay reads the stream up to the room's position at
// the time; events the live feed delivers meanwhile are kept in the room's
// ring, and the hand-over, under the room's lock, queues those of them m
// has not had. If the ring no longer reaches back to where the replay
// ended, it replays again from there.
func (h *Hub) catchUp(ctx context.Context, rm *room, m Member, since uint64, onJoined func(Joined)) error {
	sctx, cancel := context.WithTimeout(ctx, h.opts.StreamTimeout)
	cursor, recovered, err := h.src.ResumePoint(sctx, rm.name, since)
	cancel()
	if err != nil {
		return fmt.Errorf("resume %s: %w", rm.name, err)
	}
	if cursor > rm.last() {
		// The client saw events this node has not delivered yet. Once the
		// room is up to the stream, no event of the room up to cursor can
		// reach the client again; until then, refuse.
		rm.feedMu.Lock()
		err := h.syncLocked(rm)
		rm.feedMu.Unlock()
		if err != nil {
			return fmt.Errorf("resume %s: %w", rm.name, err)
		}
	}
	rm.startCatchUp()
	defer rm.endCatchUp()

	replayed := 0
	for range maxCatchUpRounds {
		if target := rm.last(); target > cursor {
			err := h.src.Replay(ctx, rm.name, cursor, target, func(ev *wire.Event) error {
				cursor = ev.Seq
				if ev.Err != nil {
					return nil
				}
				replayed++
				return m.Send(ctx, wire.EventFrame(ev))
			})
			if err != nil {
				return err
			}
			cursor = max(cursor, target) // bad events and removed ones count as seen
		}
		if recovered {
			// Retention may have removed events after since while the
			// replay ran; since itself being gone (or, from 0, anything
			// removed at all) says so.
			if _, still, err := h.src.ResumePoint(ctx, rm.name, since); err == nil {
				recovered = still
			}
		}
		if rm.handOver(m, cursor, func(seq uint64, fromRing int) {
			replayed += fromRing
			h.m.Replayed.Add(float64(replayed))
			onJoined(Joined{Seq: seq, Replayed: replayed, Recovered: recovered})
		}) {
			return nil
		}
	}
	return ErrTooSlow
}

// startCatchUp makes the room keep the frames it delivers until no member
// is catching up any more.
func (rm *room) startCatchUp() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.catchingUp++
	if rm.catchingUp == 1 {
		rm.ring, rm.ringFrom = nil, rm.lastSeq
	}
}

func (rm *room) endCatchUp() {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	rm.catchingUp--
	if rm.catchingUp == 0 {
		clear(rm.ring)
		rm.ring = nil
	}
}

// remember keeps a delivered frame for members catching up; needs mu.
func (rm *room) remember(f *wire.Frame) {
	if rm.catchingUp == 0 {
		return
	}
	rm.ring = append(rm.ring, f)
	if len(rm.ring) > maxRing {
		rm.ringFrom = rm.ring[0].Seq
		rm.ring[0] = nil
		rm.ring = rm.ring[1:]
	}
}

// handOver makes m a live member if the ring covers everything after
// cursor: it queues the ring's frames past cursor, adds m and calls
// onJoined, all under mu, so no live event falls between. It reports false
// when the ring does not reach back to cursor.
func (rm *room) handOver(m Member, cursor uint64, onJoined func(seq uint64, fromRing int)) bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if cursor < rm.lastSeq && cursor < rm.ringFrom {
		return false
	}
	tail := rm.ring[sort.Search(len(rm.ring), func(i int) bool { return rm.ring[i].Seq > cursor }):]
	size := 0
	for _, f := range tail {
		size += f.Len()
	}
	if len(tail) > maxHandOver || !m.CanTake(len(tail), size) {
		// More than the member's queue takes now: replay further, paced
		// by its writer, rather than overflow it.
		return false
	}
	for _, f := range tail {
		m.Force(f) // they fit; forced so a concurrent fan-out cannot refuse them
	}
	rm.add(m)
	onJoined(rm.lastSeq, len(tail))
	return true
}
