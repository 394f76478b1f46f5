package room

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTailMemory is the default of Options.TailMemory: room tails in
// their steady state (64 KiB each by default) fit it many times over, and
// it leaves a few dozen rooms their 4 MiB catch-up bounds at once.
const DefaultTailMemory = 256 << 20

// tailMemory is the node's account of the bytes held by every room's tail.
// A tail grows past its steady-state bounds, for a resume's catch-up, only
// while the account is within its limit: when a node takes over the
// clients of a dead one, thousands of rooms catch up at once, and their
// catch-up bounds together would be far more memory than the node has.
// Over the limit, catch-ups hand over through the steady bounds, and a
// resume reads the stream for what they do not hold: slower, never wrong.
type tailMemory struct {
	used  atomic.Int64
	limit int64
	gauge prometheus.Gauge // roomcast_tail_bytes
}

// add counts n more bytes held (fewer when negative). A nil account
// counts nothing.
func (m *tailMemory) add(n int) {
	if m == nil || n == 0 {
		return
	}
	m.used.Add(int64(n))
	m.gauge.Add(float64(n))
}

// full reports whether the tails hold more than the limit.
func (m *tailMemory) full() bool {
	return m != nil && m.used.Load() > m.limit
}
