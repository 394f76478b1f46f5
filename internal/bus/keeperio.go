package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/roomcast/roomcast/internal/metrics"
)

// The keeper's requests: its position record and batches in the state
// stream, its reads of the event stream.

// readPos reads the keeper's position record and its sequence.
func (b *Bus) readPos(ctx context.Context) (rec posRecord, seq uint64, found bool, err error) {
	msgs, _, err := b.directOn(ctx, b.apiStateDirect, directRequest{MultiLast: []string{b.subj.StatePos()}})
	switch {
	case errors.Is(err, errNoResults):
		return rec, 0, false, nil
	case err != nil:
		return rec, 0, false, fmt.Errorf("state position: %w", err)
	case len(msgs) == 0:
		return rec, 0, false, nil
	}
	if err := json.Unmarshal(msgs[0].Data, &rec); err != nil {
		return rec, 0, false, fmt.Errorf("state position: %w", err)
	}
	return rec, msgs[0].Seq, true, nil
}

// writePos writes the position record, expecting its last sequence to be
// expect (0: no record), and returns the new record's sequence.
func (b *Bus) writePos(ctx context.Context, rec posRecord, expect uint64) (uint64, error) {
	m := nats.NewMsg(b.subj.StatePos())
	m.Data, _ = json.Marshal(rec)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	rctx, cancel := b.requestCtx(ctx)
	defer cancel()
	b.countCall(ctx, metrics.StreamPublish)
	ack, err := b.js.PublishMsg(rctx, m)
	if isWrongLast(err) {
		return 0, errLeaseLost
	}
	if err != nil {
		return 0, fmt.Errorf("state position: %w", err)
	}
	return ack.Sequence, nil
}

// pubAck is JetStream's answer to a publish, the fields read here.
type pubAck struct {
	Seq   uint64 `json:"seq"`
	Error *struct {
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// commit publishes msgs to the state stream as one atomic batch, ended by
// the position record rec, written if the record's last sequence is
// expect; it returns the record's new sequence. Readers see all of the
// batch or none of it. A batch whose record another keeper has moved is
// not stored at all (errLeaseLost). A round with nothing but the record
// (events without keys, most rounds of most streams) writes it alone: one
// message is atomic already, and JetStream sets up a store for every
// atomic batch, which cost the server more than the batch's writes.
func (b *Bus) commit(ctx context.Context, msgs []*nats.Msg, rec posRecord, expect uint64) (uint64, error) {
	if len(msgs) == 0 {
		return b.writePos(ctx, rec, expect)
	}
	pos := nats.NewMsg(b.subj.StatePos())
	pos.Data, _ = json.Marshal(rec)
	pos.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expect, 10))
	msgs = append(msgs, pos)
	id := nuid.Next()
	for i, m := range msgs[:len(msgs)-1] {
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		// No reply: a message the server refuses fails the commit.
		if err := b.nc.PublishMsg(m); err != nil {
			return 0, fmt.Errorf("state batch: %w", err)
		}
	}
	pos.Header.Set(hdrBatchID, id)
	pos.Header.Set(hdrBatchSeq, strconv.Itoa(len(msgs)))
	pos.Header.Set(hdrBatchCommit, "1")
	rctx, cancel := b.requestCtx(ctx)
	defer cancel()
	b.countCall(ctx, metrics.StreamPublish)
	resp, err := b.nc.RequestMsgWithContext(rctx, pos)
	if err != nil {
		return 0, fmt.Errorf("state batch: %w", err)
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return 0, fmt.Errorf("state batch: %w", err)
	}
	switch {
	case ack.Error != nil && isWrongLastCode(ack.Error.ErrCode):
		return 0, errLeaseLost
	case ack.Error != nil:
		return 0, fmt.Errorf("state batch: %s (%d)", ack.Error.Description, ack.Error.ErrCode)
	}
	return ack.Seq, nil
}

// The headers of JetStream's atomic batch publish.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// isWrongLast reports a write refused because its subject's last
// sequence was not the one expected (10164 on a replicated stream).
func isWrongLast(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && isWrongLastCode(int(api.ErrorCode))
}

func isWrongLastCode(code int) bool {
	return code == int(jetstream.JSErrCodeStreamWrongLastSequence) || code == int(jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// eventEpoch is the event stream's epoch, as the leader knows it.
func (b *Bus) eventEpoch(ctx context.Context) (string, error) {
	st, err := b.StreamState(ctx)
	if err != nil {
		return "", err
	}
	return st.ID.Epoch(), nil
}

// eventsFrom reads up to keeperBatch stored events from seq on, of every
// room, and how many more wait past them.
func (b *Bus) eventsFrom(ctx context.Context, seq uint64) ([]storedMsg, uint64, error) {
	msgs, end, err := b.direct(ctx, directRequest{Seq: seq, NextFor: b.subj.AllRooms(), Batch: keeperBatch, MaxBytes: maxBatchBytes})
	if errors.Is(err, errNoResults) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("state keeper: read events from %d: %w", seq, err)
	}
	return msgs, end.Pending, nil
}

// eventsAfter reports whether the event stream holds an event past seq.
func (b *Bus) eventsAfter(ctx context.Context, seq uint64) (bool, error) {
	msgs, _, err := b.direct(ctx, directRequest{Seq: seq + 1, NextFor: b.subj.AllRooms(), Batch: 1})
	if errors.Is(err, errNoResults) {
		return false, nil
	}
	return len(msgs) > 0, err
}

// purgeState removes every key of every room.
func (b *Bus) purgeState(ctx context.Context) error {
	st, err := b.js.Stream(ctx, StateStreamName(b.stream.Name))
	if err != nil {
		return fmt.Errorf("state stream: %w", err)
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(b.subj.AllStateRooms())); err != nil {
		return fmt.Errorf("purge the state: %w", err)
	}
	return nil
}
