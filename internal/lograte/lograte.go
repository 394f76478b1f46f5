// Package lograte keeps a recurring log line to at most one per interval,
// with the count of the occurrences it held back: a client or publisher
// that triggers a warning thousands of times a second must not be able to
// flood the node's log, yet the operator must still see that, and how
// often, it happens. Metrics count every occurrence; the log samples them.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one occurrence through per interval. The zero value is not
// usable; make one with New. Its methods are safe for concurrent use.
type Limiter struct {
	interval time.Duration
	now      func() time.Time // injected for tests

	mu      sync.Mutex
	last    time.Time // when an occurrence was last let through; zero: never
	skipped int       // occurrences held back since then
}

// New returns a limiter that lets one occurrence through per interval.
// now is the clock (time.Now when nil).
func New(interval time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{interval: interval, now: now}
}

// Allow records one occurrence. ok is true when it should be logged now;
// skipped is then how many occurrences were held back since the last one
// logged, for the log line to say.
func (l *Limiter) Allow() (ok bool, skipped int) {
	t := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && t.Sub(l.last) < l.interval {
		l.skipped++
		return false, 0
	}
	l.last = t
	skipped, l.skipped = l.skipped, 0
	return true, skipped
}
