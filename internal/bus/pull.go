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
	"github.com/nats-io/nuid"

	"github.com/roomcast/roomcast/internal/metrics"
)

// A long replay reads the stream through an ephemeral pull consumer
// (longreplay.go): JetStream delivers each stored message as it was
// published, its sequence, time and what is left in the reply subject,
// where a direct get formats five headers per message that the edge then
// parses. This file is that consumer: made, pulled from, deleted.

// Consumer limits.
const (
	// consumerIdle is the consumer's InactiveThreshold: the server
	// deletes it once nobody pulled for this long, should the edge die
	// or lose its connection before deleting it itself.
	consumerIdle = 30 * time.Second
	// pullBatch and pullBytes bound one pull as a direct get's batch is
	// bounded, and for the same reasons: it is held in memory while its
	// events are handed on, and a replay holds it and the next one, read
	// ahead, so a client that leaves (or reads slowly) has the node read
	// little past what it took. The per-event cost is the same in larger
	// pulls: the request and its leader check are one per batch.
	pullBatch = ReplayBatch
	pullBytes = maxBatchBytes
)

// consumer is one ephemeral pull consumer of the stream, filtered on one
// room, made for one long replay.
type consumer struct {
	b       *Bus
	name    string
	next    string // its pull subject
	pending uint64 // what it had to deliver when it was made
	dseq    uint64 // the consumer sequence of the last message delivered
}

// openConsumer makes a consumer of subject's messages from sequence
// start on, not acknowledged, in memory, on one of the stream's servers
// (JetStream picks it: docs/architecture.md, point 16).
func (b *Bus) openConsumer(ctx context.Context, subject string, start uint64) (*consumer, error) {
	rctx, done, err := b.startRead(ctx, subject)
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	defer done()
	b.countCall(ctx, metrics.StreamConsumerCreate)
	name := "roomcast_replay_" + nuid.Next()
	c, err := b.js.CreateConsumer(rctx, b.stream.Name, jetstream.ConsumerConfig{
		Name: name, FilterSubject: subject,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: consumerIdle,
		MemoryStorage: true, Replicas: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	return &consumer{b: b, name: name, next: "$JS.API.CONSUMER.MSG.NEXT." + b.stream.Name + "." + name,
		pending: c.CachedInfo().NumPending}, nil
}

// close deletes the consumer, with a context of its own: the replay's
// may have ended (the client left), and the consumer must go anyway.
// A delete that fails leaves it to the server's InactiveThreshold.
func (c *consumer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), c.b.timeout)
	defer cancel()
	c.b.countCall(ctx, metrics.StreamConsumerDelete)
	if err := c.b.js.DeleteConsumer(ctx, c.b.stream.Name, c.name); err != nil && c.b.log != nil {
		c.b.log.Debug("delete replay consumer", "consumer", c.name, "err", err)
	}
}

// pullRequest is JetStream's JSApiConsumerGetNextRequest, the fields
// roomcast uses.
type pullRequest struct {
	Expires  time.Duration `json:"expires"`
	Batch    int           `json:"batch"`
	MaxBytes int           `json:"max_bytes"`
}

// pull asks for the next batch and reads it whole, as direct does (under
// a read slot and the request timeout, paid for as it came): up to
// pullBatch messages, less when the bytes bound ends it, or when one of
// them is the stream's last of the room (pending 0: the request would
// wait for more), or reaches until.
func (c *consumer) pull(ctx context.Context, subject string, until uint64) ([]storedMsg, batchEnd, error) {
	rctx, done, err := c.b.startRead(ctx, subject)
	if err != nil {
		return nil, batchEnd{}, fmt.Errorf("pull: %w", err)
	}
	defer done()
	// The server waits at most this long for messages it has not got;
	// the read gives up a little after.
	batch := c.b.pullBatch
	body, _ := json.Marshal(pullRequest{Expires: c.b.timeout * 3 / 4, Batch: batch, MaxBytes: pullBytes})
	ans, err := c.b.listen(batch)
	if err != nil {
		return nil, batchEnd{}, fmt.Errorf("pull: %w", err)
	}
	defer ans.close()
	c.b.countCall(ctx, metrics.StreamConsumerPull)
	if err := c.b.nc.PublishRequest(c.next, ans.sub.Subject, body); err != nil {
		return nil, batchEnd{}, fmt.Errorf("pull: %w", err)
	}
	msgs := make([]storedMsg, 0, batch) // as many as it may hold: no growing
	defer func() { c.b.readFrom(ctx, len(msgs)) }()
	end := batchEnd{Pending: 1}
	for len(msgs) < batch && end.Pending > 0 && (len(msgs) == 0 || msgs[len(msgs)-1].Seq < until) {
		m, err := ans.next(rctx)
		if err != nil {
			return nil, batchEnd{}, fmt.Errorf("pull: %w", err)
		}
		if len(m.Data) == 0 && m.Header.Get("Status") != "" {
			more, err := pullStatus(m.Header)
			if err != nil {
				return nil, batchEnd{}, err
			}
			if !more {
				end.Pending = 0 // nothing more now
			}
			return msgs, end, nil
		}
		a, err := parseAckReply(m.Reply)
		if err != nil {
			return nil, batchEnd{}, fmt.Errorf("pull: %w", err)
		}
		if a.consumerSeq != c.dseq+1 {
			// Never with one reader and no acknowledgements: not a gap
			// to pass over in silence.
			return nil, batchEnd{}, fmt.Errorf("pull: delivery %d after %d", a.consumerSeq, c.dseq)
		}
		c.dseq = a.consumerSeq
		msgs = append(msgs, storedMsg{Subject: m.Subject, Seq: a.streamSeq, Time: time.Unix(0, a.time).UTC(), Data: m.Data, Header: m.Header})
		end.Pending = a.pending
	}
	return msgs, end, nil
}

// errConsumerUnreachable is a pull answered "no responders": the consumer
// is not (or no longer) served where the pull went, as just after it was
// made on a server of a cluster that has not yet picked it up.
var errConsumerUnreachable = errors.New("pull: no responders for the consumer")

// pullStatus is what a status message ending a pull means: the end of
// the request, with more to pull (its byte bound) or nothing more now (no
// messages, its timeout); an error for the rest (the consumer is gone,
// say).
func pullStatus(h nats.Header) (more bool, err error) {
	switch status := h.Get("Status"); status {
	case "404", "408":
		return false, nil
	case "503":
		return false, errConsumerUnreachable
	case "409":
		if h.Get("Description") == "Message Size Exceeds MaxBytes" {
			return true, nil
		}
		fallthrough
	default:
		return false, fmt.Errorf("pull: status %s %s", status, h.Get("Description"))
	}
}

// ackReply is what a consumer's delivery says of the message, in its
// reply subject.
type ackReply struct {
	streamSeq, consumerSeq uint64
	time                   int64 // when it was stored, Unix nanoseconds
	pending                uint64
}

// errAckReply is a reply subject that is not a JetStream delivery's.
var errAckReply = errors.New("not a JetStream delivery's reply subject")

// parseAckReply reads a delivery's reply subject: $JS.ACK.<stream>.
// <consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>,
// or the form with a domain and an account hash before the stream and a
// random token after the pending count (12 tokens or more).
func parseAckReply(s string) (ackReply, error) {
	const prefix = "$JS.ACK."
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return ackReply{}, errAckReply
	}
	var tok [12]string
	n := 2
	for rest := s[len(prefix):]; ; rest = rest[strings.IndexByte(rest, '.')+1:] {
		i := strings.IndexByte(rest, '.')
		if n < len(tok) {
			tok[n] = rest
			if i >= 0 {
				tok[n] = rest[:i]
			}
		}
		n++
		if i < 0 {
			break
		}
	}
	var f []string
	switch {
	case n == 9:
		f = tok[5:9]
	case n >= 12:
		f = tok[7:11]
	default:
		return ackReply{}, errAckReply
	}
	var a ackReply
	var errs [4]error
	a.streamSeq, errs[0] = strconv.ParseUint(f[0], 10, 64)
	a.consumerSeq, errs[1] = strconv.ParseUint(f[1], 10, 64)
	a.time, errs[2] = strconv.ParseInt(f[2], 10, 64)
	a.pending, errs[3] = strconv.ParseUint(f[3], 10, 64)
	if err := errors.Join(errs[:]...); err != nil || a.streamSeq == 0 {
		return ackReply{}, errAckReply
	}
	return a, nil
}
