package rebalance

import "time"

// Pacer spreads a rate over each second: a token bucket that fills at the
// rate and holds at most a tick's worth (at least 1), so a node shedding
// at 100 a second closes 10 every 100 ms rather than 100 at once. It is
// driven by the caller's clock and is not safe for concurrent use.
type Pacer struct {
	rate   float64 // tokens a second
	burst  float64
	tokens float64
	last   time.Time
}

// NewPacer returns a Pacer of rate a second for ticks of tick, full at
// now.
func NewPacer(rate int, tick time.Duration, now time.Time) *Pacer {
	burst := max(1, float64(rate)*tick.Seconds())
	return &Pacer{rate: float64(rate), burst: burst, tokens: burst, last: now}
}

// Allowance is how many may go at now.
func (p *Pacer) Allowance(now time.Time) int {
	if dt := now.Sub(p.last); dt > 0 {
		p.tokens = min(p.burst, p.tokens+dt.Seconds()*p.rate)
		p.last = now
	}
	return int(p.tokens)
}

// Spend takes n from what Allowance gave.
func (p *Pacer) Spend(n int) { p.tokens = max(0, p.tokens-float64(n)) }
