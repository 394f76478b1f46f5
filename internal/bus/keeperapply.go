package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// A state entry's headers besides the key's own (wire.HeaderKey,
// wire.HeaderKeyDeleted): the event's sequence and stored time in the
// event stream, which the entry stands for.
const (
	hdrEventSeq  = "Roomcast-Seq"
	hdrEventTime = "Roomcast-Time"
)

// maxEvictions bounds the keys one new key evicts at once (more after
// the bound was lowered); the rest go with the next new keys.
const maxEvictions = 64

// keyOp is a batch's latest event of one key.
type keyOp struct {
	room    wire.Room
	subject string // the key's subject in the state stream
	key     string
	deleted bool
	ev      storedMsg
}

// entry is what the state stream holds for a key.
type entry struct {
	seq     uint64 // its sequence in the state stream
	event   uint64 // the event's sequence in the event stream
	deleted bool   // a tombstone
}

// batch builds the messages that apply one batch of events to the state,
// published atomically with the position record (commit): for each key
// the batch's latest event, unless the state already has that or a newer
// one (a batch tried again after a failed commit), and the position
// record of each room whose keys it changes or whose record is due
// (roomMarks). It evicts keys past a room's bound first.
func (k *keeper) batch(ctx context.Context, msgs []storedMsg, end uint64, now time.Time) (out []*nats.Msg, ops []keyOp, marked []string, err error) {
	changed, out, ops, err := k.keyWrites(ctx, msgs)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, r := range k.marks.due(k.b, msgs, changed, now) {
		out = append(out, k.b.roomPosMsg(r, end, k.pos.Epoch))
		marked = append(marked, r.String())
	}
	return out, ops, marked, nil
}

// keyWrites is the batch's writes of keys, and the rooms they change.
func (k *keeper) keyWrites(ctx context.Context, msgs []storedMsg) (changed map[wire.Room]bool, out []*nats.Msg, ops []keyOp, err error) {
	all := k.b.keyOps(msgs)
	if len(all) == 0 {
		return nil, nil, nil, nil
	}
	subjects := make([]string, len(all))
	for i, op := range all {
		subjects[i] = op.subject
	}
	cur, err := k.b.stateEntries(ctx, subjects)
	if err != nil {
		return nil, nil, nil, err
	}
	changed = map[wire.Room]bool{}
	writing := make(map[string]bool, len(all)) // keys this batch writes: evicting them frees nothing
	added := map[wire.Room]int{}               // new keys this batch writes, per room: no count sees them yet
	for _, op := range all {
		writing[op.subject] = true
	}
	for _, op := range all {
		e, exists := cur[op.subject]
		if !needsWrite(op, e, exists) {
			continue
		}
		if !exists && !op.deleted {
			if err := k.makeRoom(ctx, op.room, writing, added[op.room]); err != nil {
				return nil, nil, nil, err
			}
			added[op.room]++
		}
		out, ops = append(out, stateMsg(op, k.b.keys.MaxAge)), append(ops, op)
		changed[op.room] = true
	}
	return changed, out, ops, nil
}

// needsWrite decides whether op changes the state: it is newer than the
// key's entry. A delete of a key the read found no entry of is written
// too (a tombstone that expires): the read may come from a replica that
// has not yet seen the keeper's last batch, which wrote the key.
func needsWrite(op keyOp, e entry, exists bool) bool {
	return !exists || e.event < op.ev.Seq
}

func opName(op keyOp) string {
	if op.deleted {
		return metrics.StateDelete
	}
	return metrics.StateSet
}

// stateMsg is op's entry; a key's event expires after maxAge, when set.
func stateMsg(op keyOp, maxAge time.Duration) *nats.Msg {
	m := nats.NewMsg(op.subject)
	m.Header.Set(wire.HeaderKey, op.key)
	m.Header.Set(hdrEventSeq, strconv.FormatUint(op.ev.Seq, 10))
	m.Header.Set(hdrEventTime, op.ev.Time.UTC().Format(time.RFC3339Nano))
	if op.deleted {
		// A tombstone: it replaces the key's event, and expires.
		m.Header.Set(wire.HeaderKeyDeleted, "true")
		m.Header.Set(jetstream.MsgTTLHeader, tombstoneTTL.String())
		return m
	}
	m.Data = op.ev.Data
	if maxAge > 0 {
		m.Header.Set(jetstream.MsgTTLHeader, maxAge.String())
	}
	return m
}

// roomPos is a room's position record: the end of a keeper batch with
// events of the room, written with the batch whenever it changes the
// room's keys (so the room's keys are as of Seq), and refreshed now and
// then while the room has events (so Seq stays recent: a state read
// answers as of Seq, and the room's events after it are sent from its
// tail or its history).
type roomPos struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"` // the event stream's (wire.StreamID.Epoch)
}

func (b *Bus) roomPosMsg(r wire.Room, end uint64, epoch string) *nats.Msg {
	m := nats.NewMsg(b.subj.StateRoomPos(r))
	m.Data, _ = json.Marshal(roomPos{Seq: end, Epoch: epoch})
	return m
}

// A room's position record is refreshed when a batch has events of the
// room and the record is older than roomPosRefresh or than
// roomPosRefreshEvents of the room's events.
const (
	roomPosRefresh       = time.Second
	roomPosRefreshEvents = 1000
)

// roomMarks is when the keeper last wrote each room's position record,
// for the rooms it wrote one for within roomPosRefresh.
type roomMarks struct {
	last   map[string]roomMark
	pruned time.Time
}

type roomMark struct {
	at     time.Time
	events int // the room's events since
}

// due returns the rooms of msgs whose position record the batch writes:
// those it changes, and those whose record is due a refresh.
func (rm *roomMarks) due(b *Bus, msgs []storedMsg, changed map[wire.Room]bool, now time.Time) []wire.Room {
	if rm.last == nil {
		rm.last = map[string]roomMark{}
	}
	counts := map[wire.Room]int{}
	for _, m := range msgs {
		if r, err := b.subj.RoomOf(m.Subject); err == nil {
			counts[r]++
		}
	}
	var due []wire.Room
	for r, n := range counts {
		mark, ok := rm.last[r.String()]
		if changed[r] || !ok || now.Sub(mark.at) >= roomPosRefresh || mark.events+n >= roomPosRefreshEvents {
			due = append(due, r)
			continue
		}
		mark.events += n
		rm.last[r.String()] = mark
	}
	return due
}

// marked notes the rooms whose position records a committed batch wrote,
// and forgets those too old to matter now and then.
func (rm *roomMarks) marked(rooms []string, now time.Time) {
	if now.Sub(rm.pruned) >= roomPosRefresh {
		for r, mark := range rm.last {
			if now.Sub(mark.at) >= roomPosRefresh {
				delete(rm.last, r)
			}
		}
		rm.pruned = now
	}
	for _, r := range rooms {
		rm.last[r] = roomMark{at: now}
	}
}

// keyOps picks the keyed events of a batch, the latest per key, in event
// order. Events an edge would not deliver (a bad payload or key) are no
// state either.
func (b *Bus) keyOps(msgs []storedMsg) []keyOp {
	var ops []keyOp
	at := map[string]int{} // subject → index in ops
	for _, m := range msgs {
		key, deleted, err := wire.ParseKey(m.Header.Get(wire.HeaderKey), m.Header.Get(wire.HeaderKeyDeleted))
		if err != nil || key == "" {
			continue
		}
		if _, _, err := wire.ParsePayload(m.Data); err != nil {
			continue
		}
		r, err := b.subj.RoomOf(m.Subject)
		if err != nil {
			continue
		}
		op := keyOp{room: r, subject: b.subj.StateKey(r, key), key: key, deleted: deleted, ev: m}
		if i, ok := at[op.subject]; ok {
			ops[i].subject = "" // superseded within the batch
		}
		at[op.subject] = len(ops)
		ops = append(ops, op)
	}
	kept := ops[:0]
	for _, op := range ops {
		if op.subject != "" {
			kept = append(kept, op)
		}
	}
	return kept
}

// stateEntries reads what the state holds for each of subjects.
func (b *Bus) stateEntries(ctx context.Context, subjects []string) (map[string]entry, error) {
	out := make(map[string]entry, len(subjects))
	err := b.multiLast(ctx, b.apiStateDirect, subjects, func(m storedMsg) error {
		out[m.Subject] = entryOf(m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state entries: %w", err)
	}
	return out, nil
}

// entryOf reads a state message's headers.
func entryOf(m storedMsg) entry {
	ev, _ := strconv.ParseUint(m.Header.Get(hdrEventSeq), 10, 64)
	return entry{seq: m.Seq, event: ev, deleted: m.Header.Get(wire.HeaderKeyDeleted) == "true"}
}

// makeRoom keeps room r within its bound of keys before a new key is
// written: it evicts the least recently written keys past it, other than
// those the batch writes; added is how many new keys of r the batch
// writes already.
func (k *keeper) makeRoom(ctx context.Context, r wire.Room, writing map[string]bool, added int) error {
	n, known := k.counts[r.String()]
	if !known {
		var err error
		if n, err = k.b.countKeys(ctx, r); err != nil {
			return err
		}
	}
	n++
	if n > k.b.keys.MaxKeysPerRoom && known {
		// The count only grows between counts (tombstones and aged
		// keys expire unseen): count again before evicting a live key.
		var err error
		if n, err = k.b.countKeys(ctx, r); err != nil {
			return err
		}
		n += added + 1
	}
	if n > k.b.keys.MaxKeysPerRoom {
		// Evictions are not part of the batch: a keeper that lost its
		// lease must not make them.
		if err := k.stillHolds(ctx); err != nil {
			return err
		}
	}
	for evicted := 0; n > k.b.keys.MaxKeysPerRoom && evicted < maxEvictions; evicted++ {
		gone, err := k.b.evictOldest(ctx, r, writing)
		if err != nil {
			return err
		}
		if !gone {
			n = 1 // the count was stale: the room holds nothing more
			break
		}
		n--
	}
	k.counts[r.String()] = n
	return nil
}

// countKeys counts room r's keys (tombstones included).
func (b *Bus) countKeys(ctx context.Context, r wire.Room) (int, error) {
	rctx, cancel := b.requestCtx(ctx)
	defer cancel()
	st, err := b.js.Stream(rctx, StateStreamName(b.stream.Name))
	if err != nil {
		return 0, fmt.Errorf("count keys of %s: %w", r, err)
	}
	b.countCall(ctx, metrics.StreamInfo)
	info, err := st.Info(rctx, jetstream.WithSubjectFilter(b.subj.StateKeys(r)))
	if err != nil {
		return 0, fmt.Errorf("count keys of %s: %w", r, err)
	}
	return len(info.State.Subjects), nil
}

// evictOldest removes room r's least recently written key but those in
// skip; gone is false when the room has none.
func (b *Bus) evictOldest(ctx context.Context, r wire.Room, skip map[string]bool) (gone bool, err error) {
	var msgs []storedMsg
	for from := uint64(1); ; from = msgs[0].Seq + 1 {
		msgs, _, err = b.directOn(ctx, b.apiStateDirect, directRequest{Seq: from, NextFor: b.subj.StateKeys(r), Batch: 1})
		if errors.Is(err, errNoResults) || err == nil && len(msgs) == 0 {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("evict a key of %s: %w", r, err)
		}
		if !skip[msgs[0].Subject] {
			break
		}
	}
	rctx, cancel := b.requestCtx(ctx)
	defer cancel()
	st, err := b.js.Stream(rctx, StateStreamName(b.stream.Name))
	if err == nil {
		b.countCall(ctx, metrics.StreamMsgDelete)
		err = st.DeleteMsg(rctx, msgs[0].Seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, fmt.Errorf("evict a key of %s: %w", r, err)
	}
	b.m.StateEvicted.Inc()
	return true, nil
}
