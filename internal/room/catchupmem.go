package room

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultCatchUpMemory is the default of Options.CatchUpMemory: room tails at
// their steady bounds are not counted against it, so it holds the catch-up
// reads of some 64 rooms at their 4 MiB bounds at once, and of far more
// at the sizes resumes usually read.
const DefaultCatchUpMemory = 256 << 20

// catchUpMemory is the node's account of the memory that catch-ups take on
// top of the rooms' steady tails: tails past their steady byte bound, and
// the windows of stream reads under way (seeds). When a node takes over
// the clients of a dead one, thousands of rooms catch up at once, and each
// read may take the catch-up bounds; past the limit, a read holds no more
// than the steady bounds and cannot extend the tail further. Its resumes
// then read the stream for themselves: slower, never wrong. The live
// events that arrive during a catch-up still extend the tail up to the
// catch-up bounds whatever the account says, since a resume hands over to
// the live feed through them; that growth is bounded by the rooms' event
// rates, not by how far back the clients resume.
type catchUpMemory struct {
	used  atomic.Int64
	limit int64
	gauge prometheus.Gauge // roomcast_catchup_bytes
}

// add counts n more bytes held (fewer when negative). A nil account
// counts nothing.
func (m *catchUpMemory) add(n int) {
	if m == nil || n == 0 {
		return
	}
	m.used.Add(int64(n))
	m.gauge.Add(float64(n))
}

// full reports whether catch-ups hold more than the limit.
func (m *catchUpMemory) full() bool {
	return m != nil && m.used.Load() > m.limit
}
