package bus

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/roomcast/roomcast/internal/lograte"
)

// The keeper feeds the state stream from the event stream: it reads every
// stored event in order, and writes each keyed one as its key's latest
// event (a delete as a tombstone), then records how far it got. Every
// edge runs one; one at a time is active, by a lease on the position
// record: its writes expect the record's last sequence, so a keeper that
// lost the lease finds out at its next write and stands by. The others
// watch the record and take over when it stops moving while events wait.
// A batch's keys are published atomically with the record, so a keeper
// that lost the lease writes none of them; its few writes outside a batch
// (evicting a key, starting the state over) check the lease first.

// Keeper timing.
const (
	keeperBatch = 256
	// keeperIdlePoll is how often an active keeper with nothing to do
	// looks for new events: the state lags the stream by about this
	// much, which snapshots make up for from the room's own events.
	keeperIdlePoll = 100 * time.Millisecond
	// keeperStandbyPoll is how often a standing-by keeper reads the
	// position record.
	keeperStandbyPoll = time.Second
	// keeperLease is how long the record may stand still while events
	// wait before a standing-by keeper takes over.
	keeperLease = 5 * time.Second
	// keeperEpochCheck is how often the active keeper checks that the
	// event stream is still the one its position is in.
	keeperEpochCheck = 2 * time.Second
	keeperRetry      = time.Second
)

// posRecord is the keeper's position: every keyed event up to Seq is in
// the state.
type posRecord struct {
	Seq   uint64 `json:"seq"`
	Epoch string `json:"epoch"` // the event stream's epoch (wire.StreamID.Epoch)
	Node  string `json:"node"`  // the keeper that wrote it
}

// errLeaseLost is a write the position record's lease no longer allows.
var errLeaseLost = errors.New("another keeper holds the state's lease")

// keeperCall marks the keeper's requests in their context: they are
// counted apart from those made for clients (countCall).
type keeperCall struct{}

// countCall counts one JetStream request of kind: the keeper's in
// roomcast_state_keeper_requests_total, the others by kind.
func (b *Bus) countCall(ctx context.Context, kind string) {
	if ctx.Value(keeperCall{}) != nil {
		b.m.KeeperRequests.Inc()
		return
	}
	b.m.StreamCalls.WithLabelValues(kind).Inc()
}

// RunKeeper runs this node's state keeper until ctx ends; node names the
// node in the position record. The caller owns the goroutine.
func (b *Bus) RunKeeper(ctx context.Context, node string) {
	ctx = context.WithValue(ctx, keeperCall{}, true)
	k := &keeper{b: b, node: node, errLog: lograte.New(time.Minute, nil), missedLog: lograte.New(time.Minute, nil), counts: map[string]int{}}
	defer b.m.KeeperActive.Set(0)
	defer b.m.KeeperLag.Set(0)
	for ctx.Err() == nil {
		wait := k.step(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	k.release()
}

// release gives the lease up when the node stops (a rollout), so another
// keeper takes over at its next look instead of after keeperLease.
func (k *keeper) release() {
	if !k.active {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), keeperCall{}, true), time.Second)
	defer cancel()
	rec := k.pos
	rec.Node = ""
	_, _ = k.b.writePos(ctx, rec, k.posSeq)
}

// keeper is one node's keeper; only RunKeeper's goroutine uses it.
type keeper struct {
	b      *Bus
	node   string
	errLog *lograte.Limiter
	// missedLog limits the warnings of events retention removed first:
	// a keeper behind a busy stream would log one per batch.
	missedLog *lograte.Limiter

	active  bool
	pos     posRecord
	posSeq  uint64         // the record's sequence in the state stream
	seenAt  time.Time      // when a standing-by keeper saw posSeq first
	epochAt time.Time      // when the active keeper last checked the epoch
	counts  map[string]int // keys per room, as makeRoom last counted them
	marks   roomMarks      // when each room's position record was written
}

// step does one round and returns how long to wait before the next.
func (k *keeper) step(ctx context.Context) time.Duration {
	if !k.active {
		k.standBy(ctx)
		if !k.active {
			return jitter(keeperStandbyPoll)
		}
	}
	n, err := k.round(ctx)
	switch {
	case errors.Is(err, errLeaseLost):
		k.resign("lease taken over")
		return jitter(keeperStandbyPoll)
	case err != nil:
		if ok, held := k.errLog.Allow(); ok && ctx.Err() == nil {
			k.b.log.Warn("state keeper: round failed; retrying", "err", err, "held_back", held)
		}
		return jitter(keeperRetry)
	case n == keeperBatch:
		return 0
	}
	return keeperIdlePoll
}

// standBy reads the position record and takes the lease when there is
// none, or when it has stood still for keeperLease while events wait.
func (k *keeper) standBy(ctx context.Context) {
	rec, seq, found, err := k.b.readPos(ctx)
	switch {
	case err != nil:
		return
	case !found:
		epoch, err := k.b.eventEpoch(ctx)
		if err == nil {
			k.claim(ctx, posRecord{Epoch: epoch}, 0)
		}
		return
	case rec.Node == "":
		k.claim(ctx, rec, seq) // released by a keeper that stopped
		return
	case seq != k.posSeq:
		k.posSeq, k.seenAt = seq, time.Now()
		return
	case time.Since(k.seenAt) < keeperLease:
		return
	}
	if waiting, err := k.b.eventsAfter(ctx, rec.Seq); err == nil && waiting {
		k.claim(ctx, rec, seq)
	}
}

// claim writes rec as this node's, expecting the record at seq, and
// becomes the active keeper if that succeeds.
func (k *keeper) claim(ctx context.Context, rec posRecord, seq uint64) {
	rec.Node = k.node
	newSeq, err := k.b.writePos(ctx, rec, seq)
	if err != nil {
		return
	}
	k.active, k.pos, k.posSeq, k.epochAt = true, rec, newSeq, time.Time{}
	clear(k.counts)
	k.marks = roomMarks{}
	k.b.m.KeeperActive.Set(1)
	k.b.log.Info("state keeper: active", "position", rec.Seq)
}

func (k *keeper) resign(why string) {
	k.active, k.posSeq, k.seenAt = false, 0, time.Time{}
	k.b.m.KeeperActive.Set(0)
	k.b.m.KeeperLag.Set(0)
	k.b.log.Info("state keeper: standing by", "reason", why)
}

// round checks the event stream's epoch now and then and applies one
// batch of events; it returns how many events the batch read.
func (k *keeper) round(ctx context.Context) (int, error) {
	if time.Since(k.epochAt) >= keeperEpochCheck {
		if err := k.checkEpoch(ctx); err != nil {
			return 0, err
		}
	}
	msgs, pending, err := k.b.eventsFrom(ctx, k.pos.Seq+1)
	if err != nil || len(msgs) == 0 {
		k.b.m.KeeperLag.Set(0)
		return 0, err
	}
	missed := missedIn(k.pos.Seq+1, msgs)
	rec := k.pos
	rec.Seq = msgs[len(msgs)-1].Seq
	now := time.Now()
	out, ops, marked, err := k.batch(ctx, msgs, rec.Seq, now)
	if err != nil {
		return 0, err
	}
	newSeq, err := k.b.commit(ctx, out, rec, k.posSeq)
	if err != nil {
		clear(k.counts) // counted with keys the batch did not write
		return 0, err
	}
	if missed.n > 0 && k.pos.Seq > 0 { // a first batch starts wherever the stream does
		k.b.m.StateMissed.Add(float64(missed.n))
		if ok, held := k.missedLog.Allow(); ok {
			k.b.log.Warn("state keeper: events were removed from the stream before it read them; their keys may be out of date",
				"events", missed.n, "from", missed.first, "to", missed.last, "held_back", held)
		}
	}
	k.pos, k.posSeq = rec, newSeq
	k.marks.marked(marked, now)
	for _, op := range ops {
		k.b.m.StateWrites.WithLabelValues(opName(op)).Inc()
	}
	k.b.m.KeeperLag.Set(float64(pending))
	return len(msgs), nil
}

// missed is what a batch lacks of the sequences it spans.
type missed struct {
	n           uint64 // how many
	first, last uint64 // the lowest and the highest
}

// missedIn finds the events a batch read from `from` lacks, before its
// first event or between two of them: the stream's sequences have no
// holes but removed events, so each was removed (by retention, or by
// hand) before the keeper read it.
func missedIn(from uint64, msgs []storedMsg) missed {
	var out missed
	next := from
	for _, m := range msgs {
		if m.Seq > next {
			if out.n == 0 {
				out.first = next
			}
			out.n += m.Seq - next
			out.last = m.Seq - 1
		}
		next = m.Seq + 1
	}
	return out
}

// checkEpoch starts the state over when the event stream was recreated:
// keys of an old history are no state of the new one.
func (k *keeper) checkEpoch(ctx context.Context) error {
	epoch, err := k.b.eventEpoch(ctx)
	if err != nil {
		return err
	}
	k.epochAt = time.Now()
	if epoch == k.pos.Epoch {
		return nil
	}
	k.b.log.Warn("state keeper: the event stream was recreated; starting the state over", "old_epoch", k.pos.Epoch, "epoch", epoch)
	if err := k.stillHolds(ctx); err != nil {
		return err
	}
	if err := k.b.purgeState(ctx); err != nil {
		return err
	}
	rec := posRecord{Epoch: epoch, Node: k.node}
	newSeq, err := k.b.writePos(ctx, rec, k.posSeq)
	if err != nil {
		return err
	}
	k.pos, k.posSeq = rec, newSeq
	clear(k.counts)
	k.marks = roomMarks{}
	return nil
}

// stillHolds checks that the position record is still the one this
// keeper wrote last: errLeaseLost if another keeper moved it.
func (k *keeper) stillHolds(ctx context.Context) error {
	_, seq, found, err := k.b.readPos(ctx)
	switch {
	case err != nil:
		return err
	case !found || seq != k.posSeq:
		return errLeaseLost
	}
	return nil
}

// jitter spreads d by up to a fifth, so nodes that started together do
// not poll together.
func jitter(d time.Duration) time.Duration {
	return d + rand.N(d/5+1)
}
