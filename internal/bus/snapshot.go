package bus

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// ErrNoState says the state stream has no keeper position yet (a new
// deployment, or a state stream that was lost): no state can be read
// until a keeper has started it.
var ErrNoState = errors.New("the keyed state is not kept yet")

// stateReadLimit bounds one state read, slot waits included: it may serve
// many subscribes, so no caller's leaving ends it.
const stateReadLimit = 15 * time.Second

// stateBatchBytes bounds one answer of a state read: the whole state is
// held in memory anyway, so larger answers cost fewer round trips.
const stateBatchBytes = 1 << 20

// stateFlights lets subscribes of one room share a state read.
type stateFlights struct {
	mu      sync.Mutex
	flights map[string]*stateFlight // guarded by mu
}

type stateFlight struct {
	done chan struct{} // closed when st and err are set
	st   wire.RoomState
	err  error
}

// State reads room r's keyed state: the latest event of each of its keys,
// in seq order, as of a position every keyed event of the room up to
// which is in it (see readState). Callers that ask while a read of the
// room is under way share it: any read's answer is exact as of its
// position, and the caller sends the room's events after it. The read
// is charged to the client of the caller that starts it, never held back
// midway.
func (b *Bus) State(ctx context.Context, r wire.Room) (wire.RoomState, error) {
	f := &b.stateFlights
	f.mu.Lock()
	if fl := f.flights[r.String()]; fl != nil {
		f.mu.Unlock()
		select {
		case <-fl.done:
			return fl.st, fl.err
		case <-ctx.Done():
			return wire.RoomState{}, ctx.Err()
		}
	}
	shared, err := b.AwaitBudget(ctx)
	if err != nil {
		f.mu.Unlock()
		return wire.RoomState{}, err
	}
	fl := &stateFlight{done: make(chan struct{})}
	if f.flights == nil {
		f.flights = map[string]*stateFlight{}
	}
	f.flights[r.String()] = fl
	f.mu.Unlock()

	rctx, cancel := context.WithTimeout(context.WithoutCancel(shared), stateReadLimit)
	fl.st, fl.err = b.readState(rctx, r)
	cancel()
	f.mu.Lock()
	delete(f.flights, r.String())
	f.mu.Unlock()
	close(fl.done)
	b.noteStateRead(r, fl.st, fl.err)
	return fl.st, fl.err
}

func (b *Bus) noteStateRead(r wire.Room, st wire.RoomState, err error) {
	if err != nil {
		b.m.StateReads.WithLabelValues("error").Inc()
		return
	}
	b.m.StateReads.WithLabelValues("ok").Inc()
	b.m.StateKeys.WithLabelValues(r.Kind()).Observe(float64(len(st.Events)))
}

// readState reads the keeper's position first, then everything the state
// holds for the room: its keys and its position record. The keeper
// publishes each batch atomically, so a read sees each batch whole or not
// at all; and a batch's messages land past everything stored before it,
// so a read that goes on after a batch was stored sees all of it. What
// the read sees is thus the state as of the end of a batch: the later of
// the keeper's position (every batch up to it was stored before the read
// began) and the room's position record (the end of the last batch that
// changed the room, stored before the read ended).
func (b *Bus) readState(ctx context.Context, r wire.Room) (wire.RoomState, error) {
	pos, _, found, err := b.readPos(ctx)
	switch {
	case err != nil:
		return wire.RoomState{}, fmt.Errorf("state of %s: %w", r, err)
	case !found:
		return wire.RoomState{}, fmt.Errorf("state of %s: %w", r, ErrNoState)
	}
	st := wire.RoomState{Seq: pos.Seq, Epoch: pos.Epoch}
	latest := map[string]storedMsg{}
	err = b.scanState(ctx, r, func(m storedMsg) error {
		if m.Subject == b.subj.StateRoomPos(r) {
			var rp roomPos
			if err := json.Unmarshal(m.Data, &rp); err != nil {
				return fmt.Errorf("position record of %s: %w", r, err)
			}
			st.Seq = max(st.Seq, rp.Seq)
			return nil
		}
		// A key written again during the read is seen twice: the later
		// event wins.
		if prev, ok := latest[m.Subject]; !ok || entryOf(prev).event < entryOf(m).event {
			latest[m.Subject] = m
		}
		return nil
	})
	if err != nil {
		return wire.RoomState{}, fmt.Errorf("state of %s: %w", r, err)
	}
	for _, m := range latest {
		if ev := b.stateEvent(r, m); ev != nil {
			st.Events = append(st.Events, ev)
		}
	}
	slices.SortFunc(st.Events, func(a, b *wire.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	st.JSON = wire.AppendStateArray(nil, st.Events)
	return st, nil
}

// scanState calls fn with every message the state stream holds for room
// r, in the stream's order, in batches.
func (b *Bus) scanState(ctx context.Context, r wire.Room, fn func(storedMsg) error) error {
	req := directRequest{Seq: 1, NextFor: b.subj.StateRoom(r), Batch: maxMultiLast, MaxBytes: stateBatchBytes}
	for {
		msgs, end, err := b.directOn(ctx, b.apiStateDirect, req)
		if errors.Is(err, errNoResults) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := fn(m); err != nil {
				return err
			}
		}
		if end.Pending == 0 || len(msgs) == 0 {
			return nil
		}
		req.Seq = msgs[len(msgs)-1].Seq + 1
	}
}

// stateEvent is the event a state entry stands for; nil for one that is
// not a valid event (the keeper writes none such).
func (b *Bus) stateEvent(r wire.Room, m storedMsg) *wire.Event {
	e := entryOf(m)
	key, _, err := wire.ParseKey(m.Header.Get(wire.HeaderKey), "")
	if err != nil || e.deleted {
		return nil
	}
	name, data, err := wire.ParsePayload(m.Data)
	if err != nil {
		return nil
	}
	ts, _ := time.Parse(time.RFC3339Nano, m.Header.Get(hdrEventTime))
	return &wire.Event{Room: r, Seq: e.event, Time: ts, Name: name, Data: data, Key: key}
}

// Stored reports whether the event at seq is still stored and is room
// r's: then nothing of the room after it was removed (retention removes
// a room's oldest events first), and a resume from it is recovered.
func (b *Bus) Stored(ctx context.Context, r wire.Room, seq uint64) (bool, error) {
	msgs, _, err := b.direct(ctx, directRequest{Seq: seq, NextFor: b.subj.Room(r), Batch: 1})
	switch {
	case errors.Is(err, errNoResults):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("is %s's event %s stored: %w", r, strconv.FormatUint(seq, 10), err)
	}
	return len(msgs) > 0 && msgs[0].Seq == seq, nil
}
