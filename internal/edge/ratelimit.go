package edge

import "time"

// limiter bounds the messages one connection may send: a token bucket of
// rate tokens a second holding at most rate (so a dashboard may subscribe
// to a second's worth of rooms at once). It is owned by its session, whose
// handler calls run one at a time, so it needs no lock. Per connection
// it costs a few words, not a timer.
type limiter struct {
	rate   float64 // tokens a second; 0: no limit
	tokens float64
	last   time.Time

	// The refusals of the current window: a client that goes on past its
	// RATE_LIMITED errors is not confused but abusive (close 4029).
	windowStart time.Time
	refused     int
}

// abuseWindow is the window over which refusals are counted.
const abuseWindow = 10 * time.Second

func newLimiter(rate int) limiter {
	return limiter{rate: float64(rate), tokens: float64(rate)}
}

// allow takes a token for a message at now; false means refuse it.
func (l *limiter) allow(now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	if now.Sub(l.windowStart) > abuseWindow {
		l.windowStart, l.refused = now, 0
	}
	if !l.last.IsZero() {
		l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	l.refused++
	return false
}

// abusive reports whether the connection was refused more messages in the
// window than it may send in a second: it is not slowing down.
func (l *limiter) abusive() bool {
	return l.rate > 0 && float64(l.refused) > l.rate
}
