package bus

import (
	"context"
	"time"
)

// A reader (a client connection) that keeps asking for its rooms' whole
// history makes the stream read it again and again. Fair shares bound
// what it takes while others wait, not what it takes from the stream
// when nobody does, nor the CPU its events cost to decode and send. So
// each reader has a budget of events read from the stream (events served
// from a room's tail in memory cost nothing): a burst that lets an
// ordinary resume go at full speed, refilled at a steady rate; a reader
// that spent it waits, before it takes a slot, until the budget is back
// above zero. A read is paid after its answer (its size is known then).
// A read that other resumes of a room wait for (room/seed.go) is paced
// only before it starts (AwaitBudget), never midway, which would hold
// the others up: such a read from the start of a large room goes at full
// speed and is paid for after, by the reader's next reads waiting longer.

// DefaultReaderRate is Options.ReaderRate's default: events a second.
const DefaultReaderRate = 5000

// readerBurstSeconds is how many seconds of its rate a reader's budget
// holds: 20,000 events at the default, two resumes of a full room from
// the start (10,000 events, --retention-max-per-room's default) at full
// speed; a reader that read a room of 100,000 events waits about 16 s
// before its next read from the stream.
const readerBurstSeconds = 4

// pacing is the budget's rule; a zero rate paces nothing.
type pacing struct {
	rate, burst float64 // events a second, events
}

func newPacing(rate int) pacing {
	if rate <= 0 {
		return pacing{}
	}
	return pacing{rate: float64(rate), burst: float64(rate * readerBurstSeconds)}
}

// refillTime is how long an empty budget takes to fill up.
func (p pacing) refillTime() time.Duration {
	if p.rate == 0 {
		return 0
	}
	return time.Duration(p.burst / p.rate * float64(time.Second))
}

// budget is one reader's events left, as of at.
type budget struct {
	left float64
	at   time.Time // zero: full
}

// level is the budget now: what was left plus the refill since.
func (b *budget) level(p pacing, now time.Time) float64 {
	if b.at.IsZero() {
		return p.burst
	}
	return min(p.burst, b.left+p.rate*now.Sub(b.at).Seconds())
}

// spend takes n events off the budget.
func (b *budget) spend(p pacing, n int, now time.Time) {
	b.left, b.at = b.level(p, now)-float64(n), now
}

// idle reports that the budget is full: the reader may be forgotten.
func (b *budget) idle(p pacing) bool {
	return p.rate == 0 || b.at.IsZero() || b.level(p, time.Now()) >= p.burst
}

// delay is how long the reader must wait before its next read.
func (b *budget) delay(p pacing, now time.Time) time.Duration {
	if p.rate == 0 {
		return 0
	}
	lvl := b.level(p, now)
	if lvl >= 0 {
		return 0
	}
	return time.Duration(-lvl / p.rate * float64(time.Second))
}

// unpacedKey marks a context whose reads are charged but not held back.
type unpacedKey struct{}

// AwaitBudget waits until the reader of ctx may read from the stream
// again (its budget is back above zero), for as long as ctx allows, and
// returns the context for a read that others wait for (a room's shared
// catch-up, room/seed.go): its reads are charged to the reader as usual
// but never held back midway, which would hold the others up too. The
// node's own reads pass at once.
func (b *Bus) AwaitBudget(ctx context.Context) (context.Context, error) {
	if err := b.reads.paceWait(ctx, readerOf(ctx), b.m.ReadsPaced.Inc); err != nil {
		return nil, err
	}
	return context.WithValue(ctx, unpacedKey{}, true), nil
}

// paced reports whether the reads under ctx wait for their reader's
// budget (see AwaitBudget).
func paced(ctx context.Context) bool { return ctx.Value(unpacedKey{}) == nil }

// paceWait waits until reader id may read again, for as long as ctx
// allows, calling onPaced first when it has to wait.
func (s *scheduler) paceWait(ctx context.Context, id any, onPaced func()) error {
	if id == nil || s.pace.rate == 0 {
		return nil
	}
	s.mu.Lock()
	rs := s.reader(id)
	d := rs.budget.delay(s.pace, time.Now())
	s.done(rs)
	s.mu.Unlock()
	if d <= 0 {
		return nil
	}
	onPaced()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spend charges reader id for n events read from the stream.
func (s *scheduler) spend(id any, n int) {
	if id == nil || s.pace.rate == 0 || n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.reader(id)
	rs.budget.spend(s.pace, n, time.Now())
	s.done(rs)
	s.sweep()
}

// sweep forgets, once per refill time, the readers whose budget filled up
// since they last read: a connection that went away in debt. Needs mu.
func (s *scheduler) sweep() {
	now := time.Now()
	if now.Sub(s.swept) < s.pace.refillTime() {
		return
	}
	s.swept = now
	for id, rs := range s.readers {
		if rs.pending == 0 && rs.held == 0 && len(rs.queue) == 0 && rs.budget.idle(s.pace) {
			delete(s.readers, id)
		}
	}
}
