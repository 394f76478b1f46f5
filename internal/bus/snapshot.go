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

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// ErrNoState says the state stream has no keeper position yet (a new
// deployment, or a state stream that was lost): no state can be read
// until a keeper has started it.
var ErrNoState = errors.New("the keyed state is not kept yet")

// stateReadLimit bounds one state read, slot waits included: it may serve
// many subscribes, so no caller's leaving ends it.
const stateReadLimit = 15 * time.Second

// stateMaxBytes bounds a room's state as one read takes it (a room of
// 10,000 keys of 300 bytes is 3 MB): the whole state is read in one
// answer, which is what makes it consistent.
const stateMaxBytes = 32 << 20

// errStateTooLarge is a room's state past stateMaxBytes.
var errStateTooLarge = errors.New("the room's state is larger than one read takes (32 MiB)")

// stateFlights lets subscribes of one room share a state read.
type stateFlights struct {
	mu      sync.Mutex
	flights map[string]*stateFlight // guarded by mu
}

// join returns the read of room r under way, nil if none.
func (f *stateFlights) join(r wire.Room) *stateFlight {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flights[r.String()]
}

// start returns the read of room r under way, or registers a new one,
// which mine says the caller makes.
func (f *stateFlights) start(r wire.Room) (fl *stateFlight, mine bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl := f.flights[r.String()]; fl != nil {
		return fl, false
	}
	if f.flights == nil {
		f.flights = map[string]*stateFlight{}
	}
	fl = &stateFlight{done: make(chan struct{})}
	f.flights[r.String()] = fl
	return fl, true
}

// wait waits for the read's result, or for ctx.
func (fl *stateFlight) wait(ctx context.Context) (wire.RoomState, error) {
	select {
	case <-fl.done:
		return fl.st, fl.err
	case <-ctx.Done():
		return wire.RoomState{}, ctx.Err()
	}
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
	if fl := f.join(r); fl != nil {
		return fl.wait(ctx)
	}
	// The budget is waited for outside the lock, which every state read
	// of the node takes: a paced client holds up only itself.
	shared, err := b.AwaitBudget(ctx)
	if err != nil {
		return wire.RoomState{}, err
	}
	fl, mine := f.start(r)
	if !mine {
		return fl.wait(ctx) // another read began meanwhile
	}
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
		b.m.StateReads.WithLabelValues(metrics.StateError).Inc()
		return
	}
	b.m.StateReads.WithLabelValues(metrics.StateOK).Inc()
	b.m.StateKeys.WithLabelValues(r.Kind()).Observe(float64(len(st.Events)))
}

// readState reads everything the state holds for the room, its keys and
// its position record, with one direct get: a read that is isolated from
// writes on the replica that answers it, and the keeper publishes each
// batch atomically, so the read sees the room as of the end of a batch:
// its keys as of its position record (written with every batch that
// changes them). A room without a record has no keys the keeper has
// seen: its state is empty as of 0, provided a keeper has started.
func (b *Bus) readState(ctx context.Context, r wire.Room) (wire.RoomState, error) {
	var st wire.RoomState
	latest := map[string]storedMsg{}
	found := false
	req := directRequest{Seq: 1, NextFor: b.subj.StateRoom(r), Batch: 2*b.keys.MaxKeysPerRoom + maxEvictions + 1, MaxBytes: stateMaxBytes}
	msgs, end, err := b.directOn(ctx, b.apiStateDirect, req)
	switch {
	case errors.Is(err, errNoResults):
	case err != nil:
		return st, fmt.Errorf("state of %s: %w", r, err)
	case end.Pending > 0:
		return st, fmt.Errorf("state of %s: %w", r, errStateTooLarge)
	}
	for _, m := range msgs {
		if m.Subject == b.subj.StateRoomPos(r) {
			var rp roomPos
			if err := json.Unmarshal(m.Data, &rp); err != nil {
				return st, fmt.Errorf("position record of %s: %w", r, err)
			}
			st.Seq, st.Epoch, found = rp.Seq, rp.Epoch, true
			continue
		}
		latest[m.Subject] = m
	}
	if !found {
		if _, _, kept, err := b.readPos(ctx); err != nil || !kept {
			return st, fmt.Errorf("state of %s: %w", r, cmp.Or(err, ErrNoState))
		}
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
