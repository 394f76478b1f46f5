package edge

import "time"

// limiter bounds the messages one connection may send: a token bucket of
// rate tokens a second holding at most burst, so a client coming back may
// subscribe again to every room it may hold at once. It is owned by its session, whose
// handler calls run one at a time, so it needs no lock. Per connection
// it costs a few words, not a timer.
type limiter struct {
	rate   float64 // tokens a second; 0: no limit
	burst  float64
	tokens float64
	last   time.Time

	// The refusals of the current window: a client that goes on past its
	// RATE_LIMITED errors is not confused but abusive (close 4029).
	windowStart time.Time
	refused     int
}

// abuseWindow is the window over which refusals are counted.
const abuseWindow = 10 * time.Second

// newLimiter returns a limiter of rate messages a second with a burst of
// at least burst.
func newLimiter(rate, burst int) limiter {
	b := float64(max(rate, burst))
	return limiter{rate: float64(rate), burst: b, tokens: b}
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
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
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
// window than its burst: it is not slowing down.
func (l *limiter) abusive() bool {
	return l.rate > 0 && float64(l.refused) > l.burst
}
