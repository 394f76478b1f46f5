package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/wire"
)

// The stream is read with JetStream's direct get API: batched requests that
// any replica answers (the one nearest the edge, since NATS prefers local
// queue subscribers), without creating a consumer, so a resume costs no
// Raft proposal and no state on the stream leader. A replica may lag behind
// the leader, so every read that ends short of what it was asked for is
// checked against the leader (see leaderNext).

// directRequest is JetStream's JSApiMsgGetRequest, the fields roomcast uses.
type directRequest struct {
	Seq       uint64   `json:"seq,omitempty"`
	NextFor   string   `json:"next_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MaxBytes  int      `json:"max_bytes,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
	UpToSeq   uint64   `json:"up_to_seq,omitempty"`
	// StartTime starts a next_by_subj read at the first message stored
	// at or after it (with Seq unset).
	StartTime *time.Time `json:"start_time,omitempty"`
}

// storedMsg is one message of a direct get answer.
type storedMsg struct {
	Subject string
	Seq     uint64
	Time    time.Time
	Data    []byte
	Header  nats.Header // the publisher's headers and the stream's
}

// batchEnd is what the end-of-batch marker of a direct get says.
type batchEnd struct {
	Pending uint64 // messages matching the request past the last one sent
	UpTo    uint64 // for multi_last: the stream's last sequence it read up to
}

// errNoResults is a direct get's 404: nothing matched.
var errNoResults = errors.New("no stored message matched")

// errTooManyResults is a multi_last's 413: its subjects match more than
// the server answers in one request (1,024).
var errTooManyResults = errors.New("more subjects matched than one request answers")

// Direct get limits.
const (
	// maxBatchBytes bounds one batch, which is held in memory while its
	// events are handed on, so a room of large events is read in slices
	// that neither swamp the edge nor hold a room's feed for long.
	maxBatchBytes = 256 << 10
	// maxMultiLast is below the server's limit of 1024 subjects a
	// multi_last request may match.
	maxMultiLast = 1000
	// maxMultiLastBytes keeps a multi_last request well under the
	// smallest max_payload an edge runs with (64 KiB and a margin).
	maxMultiLastBytes = 32 << 10
)

// direct sends one batched direct get and returns its messages, in stream
// order, and what its end-of-batch marker says. The whole answer (bounded
// by the request's max_bytes) is read before anything is done with it, so
// the read slot and the request's timeout cover the stream's answer only,
// never a client slow to take the events.
func (b *Bus) direct(ctx context.Context, req directRequest) ([]storedMsg, batchEnd, error) {
	return b.directOn(ctx, b.apiDirect, req)
}

// directOn is direct on the stream whose direct get API subject is api.
func (b *Bus) directOn(ctx context.Context, api string, req directRequest) ([]storedMsg, batchEnd, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, batchEnd{}, err
	}
	rctx, done, err := b.startRead(ctx, req.NextFor)
	if err != nil {
		return nil, batchEnd{}, fmt.Errorf("direct get: %w", err)
	}
	defer done()
	ans, err := b.listen(max(req.Batch, len(req.MultiLast)))
	if err != nil {
		return nil, batchEnd{}, fmt.Errorf("direct get: %w", err)
	}
	defer ans.close()
	kind := metrics.StreamDirectGet
	if len(req.MultiLast) > 0 {
		kind = metrics.StreamMultiLast
	}
	b.countCall(ctx, kind)
	if err := b.nc.PublishRequest(api, ans.sub.Subject, body); err != nil {
		return nil, batchEnd{}, fmt.Errorf("direct get: %w", err)
	}
	msgs := make([]storedMsg, 0, min(req.Batch, 64))
	// What came is paid for, whatever ends the read.
	defer func() { b.readFrom(ctx, len(msgs)) }()
	for {
		m, err := ans.next(rctx)
		if err != nil {
			return nil, batchEnd{}, fmt.Errorf("direct get: %w", err)
		}
		sm, end, last, err := parseDirect(m)
		switch {
		case err != nil:
			return nil, batchEnd{}, err
		case last:
			return msgs, end, nil
		}
		msgs = append(msgs, sm)
	}
}

// answers is the inbox a request's answers come to: a channel of its
// own, sized for the whole answer (n messages and an end or a status),
// where a sync subscription would make one of 64k slots (512 KiB) per
// request. The answer is read as it comes, so the channel never fills.
type answers struct {
	sub *nats.Subscription
	ch  chan *nats.Msg
}

// listen subscribes to a new inbox for an answer of up to n messages.
func (b *Bus) listen(n int) (*answers, error) {
	ch := make(chan *nats.Msg, n+2)
	sub, err := b.nc.ChanSubscribe(b.nc.NewInbox(), ch)
	if err != nil {
		return nil, err
	}
	return &answers{sub: sub, ch: ch}, nil
}

// next waits for the answer's next message, for as long as rctx allows.
func (a *answers) next(rctx context.Context) (*nats.Msg, error) {
	select {
	case m := <-a.ch:
		if m == nil {
			return nil, nats.ErrConnectionClosed
		}
		return m, nil
	case <-rctx.Done():
		return nil, rctx.Err()
	}
}

func (a *answers) close() { _ = a.sub.Unsubscribe() }

// parseDirect reads one message of a direct get answer: a stored message,
// the end-of-batch marker (last), or an error status.
func parseDirect(m *nats.Msg) (sm storedMsg, end batchEnd, last bool, err error) {
	if len(m.Data) == 0 && m.Header.Get("Status") != "" {
		switch status := m.Header.Get("Status"); status {
		case "204": // end of batch
			end.Pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			end.UpTo, _ = strconv.ParseUint(m.Header.Get("Nats-UpTo-Sequence"), 10, 64)
			return sm, end, true, nil
		case "404":
			return sm, end, true, errNoResults
		case "413":
			return sm, end, true, errTooManyResults
		default:
			return sm, end, true, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
		}
	}
	seq, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return sm, end, true, fmt.Errorf("direct get: answer without a sequence (is the stream's allow_direct on?)")
	}
	ts, _ := time.Parse(time.RFC3339Nano, m.Header.Get(jetstream.TimeStampHeaer))
	return storedMsg{Subject: m.Header.Get(jetstream.SubjectHeader), Seq: seq, Time: ts, Data: m.Data, Header: m.Header}, end, false, nil
}

// leaderGetRequest and leaderGetResponse are JetStream's message get API
// (not direct), which only the stream leader answers: the authority on
// what the stream holds.
type leaderGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
}

type leaderGetResponse struct {
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs"`
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	} `json:"message"`
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// errCodeNoMessage is JetStream's "no message found".
const errCodeNoMessage = 10037

// leaderNext asks the stream leader for the first stored message of
// subject at or after seq; found is false when there is none.
func (b *Bus) leaderNext(ctx context.Context, subject string, seq uint64) (m storedMsg, found bool, err error) {
	return b.leaderGet(ctx, leaderGetRequest{Seq: seq, NextFor: subject})
}

// LeaderHead asks the stream leader for the sequence of room r's latest
// stored event, 0 if none: the authority, where Heads may hear from a
// replica that lags.
func (b *Bus) LeaderHead(ctx context.Context, r wire.Room) (uint64, error) {
	m, found, err := b.leaderGet(ctx, leaderGetRequest{LastFor: b.subj.Room(r)})
	if err != nil || !found {
		return 0, err
	}
	return m.Seq, nil
}

// leaderGet sends one message get to the stream leader.
func (b *Bus) leaderGet(ctx context.Context, req leaderGetRequest) (m storedMsg, found bool, err error) {
	body, _ := json.Marshal(req)
	rctx, done, err := b.startRead(ctx, req.NextFor+req.LastFor)
	if err != nil {
		return m, false, fmt.Errorf("stream leader get: %w", err)
	}
	defer done()
	b.readFrom(ctx, 1) // paid once sent, answered or not, as direct gets are
	b.countCall(ctx, metrics.StreamLeaderGet)
	resp, err := b.nc.RequestWithContext(rctx, b.apiMsgGet, body)
	if err != nil {
		return m, false, fmt.Errorf("stream leader get: %w", err)
	}
	var r leaderGetResponse
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return m, false, fmt.Errorf("stream leader get: %w", err)
	}
	switch {
	case r.Error != nil && r.Error.ErrCode == errCodeNoMessage:
		return m, false, nil
	case r.Error != nil:
		return m, false, fmt.Errorf("stream leader get: %s (%d)", r.Error.Description, r.Error.ErrCode)
	case r.Message == nil:
		return m, false, errors.New("stream leader get: empty answer")
	}
	return storedMsg{Subject: r.Message.Subject, Seq: r.Message.Seq, Time: r.Message.Time, Data: r.Message.Data,
		Header: parseHeaderBlock(r.Message.Header)}, true, nil
}

// parseHeaderBlock reads a stored message's headers as the message get API
// returns them: "NATS/1.0", then "Name: value" lines, each ended by CRLF.
// Lines it cannot read are skipped: only the key headers are read from it,
// and a malformed one then reads as absent.
func parseHeaderBlock(b []byte) nats.Header {
	lines := strings.Split(string(b), "\r\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "NATS/1.0") {
		return nil
	}
	h := nats.Header{}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if ok && name != "" {
			h.Add(name, strings.TrimSpace(value))
		}
	}
	return h
}
