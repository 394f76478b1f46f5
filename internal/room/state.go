package room

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/roomcast/roomcast/internal/wire"
)

// StateJoined is what a subscribe with state is answered with, before any
// event of the room: the room's state as of Seq.
type StateJoined struct {
	Seq       uint64 // the state's position: m gets every later event, and none before
	Recovered bool   // false when a since was given (it could not be resumed from)
	Epoch     string
	State     []byte // the state as a JSON array of event messages (wire.RoomState.JSON)
}

// ErrStateUnavailable says the room's state cannot be read now: the keeper
// has not started, or has not yet seen the stream the room is in.
var ErrStateUnavailable = errors.New("the room's state is not available yet")

// JoinState makes m a member of room r, starting from the room's state
// (docs/protocol.md, "State"): respond builds the response that goes to m
// first, carrying the state as of a position, then m receives every event
// of the room after that position, then the live ones, with no gap and no
// duplicate. With from, a resume that is still recovered (nothing after
// from was lost) is JoinFrom, answered by onJoined after its replay; one
// that is not gets the state instead of a replay. An error after respond
// ran means the response went out but m did not become a member.
func (h *Hub) JoinState(ctx context.Context, r wire.Room, m Member, from *Position,
	onJoined func(Joined), respond func(StateJoined) *wire.Frame) error {
	rm, err := h.enter(ctx, r)
	if err != nil {
		return err
	}
	if from != nil {
		ok, err := h.recoverable(ctx, rm, *from)
		if err != nil {
			h.release(rm)
			return fmt.Errorf("resume %s: %w", r, err)
		}
		if ok {
			return h.joinEntered(ctx, rm, m, from, onJoined)
		}
	}
	pos, epoch, err := h.sendState(ctx, rm, m, from == nil, respond)
	if err != nil {
		h.release(rm)
		return err
	}
	if err := h.catchUpIn(ctx, rm, m, pos, epoch, nil); err != nil {
		h.release(rm)
		return err
	}
	return nil
}

// sendState reads the room's state, brings the room up to its position,
// and sends m the response; it returns the position m's events follow,
// and the room's stream epoch it is in.
func (h *Hub) sendState(ctx context.Context, rm *room, m Member, recovered bool, respond func(StateJoined) *wire.Frame) (Position, uint64, error) {
	st, err := h.src.State(ctx, rm.name)
	if err != nil {
		return Position{}, 0, fmt.Errorf("state of %s: %w", rm.name, err)
	}
	rm.mu.Lock()
	stream, roomEpoch := rm.stream, rm.epoch
	rm.mu.Unlock()
	if st.Epoch != "" && st.Epoch != stream {
		// The keeper has not started the new stream's state yet, or
		// this node has not noticed the stream's recreation. (A room
		// the keeper has not seen has no epoch: empty as of 0.)
		h.sync.checkStream()
		return Position{}, 0, fmt.Errorf("state of %s: %w", rm.name, ErrStateUnavailable)
	}
	seq, epoch := st.Seq, cmp.Or(st.Epoch, stream)
	if seq > rm.last() {
		// The state has events this node has not delivered yet: the room
		// catches up first, so none of them comes again as a live event.
		rs := &resume{h: h, rm: rm, cursor: seq, recovered: true}
		if err := rs.catchUpNode(ctx); err != nil {
			return Position{}, 0, fmt.Errorf("state of %s: %w", rm.name, err)
		}
		// No event of the room lies between its head and the state's
		// position: its head is the same position, and one a client
		// can resume from.
		seq = min(seq, rm.last())
	}
	f := respond(StateJoined{Seq: seq, Recovered: recovered, Epoch: epoch, State: st.JSON})
	if err := m.Send(ctx, f); err != nil {
		return Position{}, 0, err
	}
	return Position{Since: seq, Epoch: epoch}, roomEpoch, nil
}

// recoverable reports whether a resume from `from` would be recovered:
// it is in the room's stream, and the events after it are in the room's
// tail, or its event is still stored (retention removes a room's oldest
// events first, so none after it was removed).
func (h *Hub) recoverable(ctx context.Context, rm *room, from Position) (bool, error) {
	rm.mu.Lock()
	stream, tailFrom, last := rm.stream, rm.tailFrom, rm.lastSeq
	rm.mu.Unlock()
	switch {
	case from.Epoch != "" && from.Epoch != stream:
		return false, nil
	case from.Since == 0:
		return h.src.HoldsAll(ctx)
	case from.Since < h.baseSeq():
		return false, nil
	case from.Since >= tailFrom && from.Since <= last:
		return true, nil
	}
	return h.src.Stored(ctx, rm.name, from.Since)
}
