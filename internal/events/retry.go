package events

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/roomcast/roomcast/internal/wire"
)

// ErrGaveUp is returned by Retrying when an event could not be stored
// before its retries had to stop: retrying later could store it twice.
var ErrGaveUp = errors.New("gave up retrying")

// RetryOptions say how Retrying retries. Zero fields take the defaults.
type RetryOptions struct {
	Attempt time.Duration // time limit of one try (5 s)
	MinWait time.Duration // wait before the first retry (100 ms), doubled on each
	MaxWait time.Duration // longest wait between tries (5 s)
	// GiveUp is how long one event is retried, from its first try (90 s;
	// no try starts after it, and the last ends within Attempt): GiveUp
	// plus Attempt must stay inside the stream's 2-minute duplicate
	// window, since the id that keeps a retry from being stored twice is
	// only remembered for that long (docs/protocol.md section 2).
	GiveUp time.Duration
	// OnRetry, when set, is told of each retry: the error and the wait
	// before the next try.
	OnRetry func(err error, wait time.Duration)
	// OnRecovered, when set, is told when an event that needed retries is
	// stored: how many it needed, and how long since its first try.
	OnRecovered func(retries int, after time.Duration)
}

func (o RetryOptions) withDefaults() RetryOptions {
	set := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&o.Attempt, 5*time.Second)
	set(&o.MinWait, 100*time.Millisecond)
	set(&o.MaxWait, 5*time.Second)
	set(&o.GiveUp, 90*time.Second)
	return o
}

// RetryStats count what Retrying did.
type RetryStats struct {
	Retries   int // tries after a first one failed
	Recovered int // events stored after at least one retry
	GaveUp    int // events given up (ErrGaveUp)
}

// Retrying is a Store that keeps an event's publish going through a NATS
// restart or outage: a try that fails for a reason that passes (a
// timeout, no JetStream answering, the connection reconnecting) is made
// again after a backoff, with the same Nats-Msg-Id, so a try that was
// stored but whose acknowledgement was lost is not stored twice. Other
// errors (a refused payload, a permission) are returned at once. It is
// safe for concurrent use.
type Retrying struct {
	store Store
	opts  RetryOptions

	mu    sync.Mutex
	stats RetryStats
}

// NewRetrying returns a Retrying storing through s.
func NewRetrying(s Store, opts RetryOptions) *Retrying {
	return &Retrying{store: s, opts: opts.withDefaults()}
}

// Stats returns a copy of the counts.
func (rs *Retrying) Stats() RetryStats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.stats
}

func (rs *Retrying) count(f func(*RetryStats)) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	f(&rs.stats)
}

// Publish stores payload in room r, retrying as the type says until it
// is stored, ctx ends (its error is returned), or the event's time is up
// (ErrGaveUp). An empty o.MsgID gets a fresh one, kept for every retry.
func (rs *Retrying) Publish(ctx context.Context, r wire.Room, payload []byte, o wire.PublishOptions) (uint64, error) {
	if o.MsgID == "" {
		o.MsgID = nuid.Next()
	}
	first := time.Now()
	wait := rs.opts.MinWait
	for retries := 0; ; retries++ {
		seq, err := rs.try(ctx, r, payload, o)
		if err == nil {
			if retries > 0 {
				rs.count(func(s *RetryStats) { s.Recovered++ })
				if rs.opts.OnRecovered != nil {
					rs.opts.OnRecovered(retries, time.Since(first))
				}
			}
			return seq, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if !Transient(err) {
			return 0, err
		}
		if time.Since(first)+wait > rs.opts.GiveUp {
			rs.count(func(s *RetryStats) { s.GaveUp++ })
			return 0, fmt.Errorf("%w after %d retries over %s: %w", ErrGaveUp, retries, time.Since(first).Round(time.Millisecond), err)
		}
		rs.count(func(s *RetryStats) { s.Retries++ })
		if rs.opts.OnRetry != nil {
			rs.opts.OnRetry(err, wait)
		}
		if err := sleep(ctx, wait); err != nil {
			return 0, err
		}
		wait = min(2*wait, rs.opts.MaxWait)
	}
}

// try is one publish within the time limit of a try.
func (rs *Retrying) try(ctx context.Context, r wire.Room, payload []byte, o wire.PublishOptions) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, rs.opts.Attempt)
	defer cancel()
	return rs.store.Publish(ctx, r, payload, o)
}

// sleep waits d, or less if ctx ends (then its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Transient reports whether a publish error may pass if the publish is
// made again: its try timed out, no JetStream answered (a node starting
// or gone), the connection was down or reconnecting, or JetStream said it
// was unavailable for now (503).
func Transient(err error) bool {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrStaleConnection):
		return true
	case errors.As(err, &api):
		return api.Code == http.StatusServiceUnavailable
	}
	return false
}
