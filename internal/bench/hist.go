package bench

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear: values below linearMax nanoseconds each have a
// bucket; above, every power of two is split into subCount buckets, so a
// bucket is at most 1/subCount (about 3%) of its value wide. Values at or
// above 2^maxExp ns (about two minutes) share the last bucket; the exact
// maximum is kept aside.
const (
	subBits    = 5
	subCount   = 1 << subBits
	linearMax  = 2 * subCount
	maxExp     = 37
	numBuckets = linearMax + (maxExp-subBits-1)*subCount
)

// histogram records latencies in nanoseconds. One belongs to one connection's
// reader, so recording takes no lock; histograms are merged after the
// readers stop. The buckets are allocated on the first record, so an idle
// connection holds none.
type histogram struct {
	counts []uint32
	n      uint64
	sum    float64 // nanoseconds, for the mean
	max    int64
}

// bucketOf is the bucket index of v ≥ 0.
func bucketOf(v int64) int {
	if v < linearMax {
		return int(v)
	}
	if v >= 1<<maxExp {
		return numBuckets - 1
	}
	k := bits.Len64(uint64(v)) - 1 // v is in [2^k, 2^(k+1)), k ≥ subBits+1
	e := k - subBits               // the shift that leaves subBits+1 significant bits
	return linearMax + (e-1)*subCount + int(v>>e) - subCount
}

// bucketValue is the middle of bucket i, the value reported for it.
func bucketValue(i int) int64 {
	if i < linearMax {
		return int64(i)
	}
	j := i - linearMax
	e := j/subCount + 1
	low := int64(j%subCount+subCount) << e
	return low + int64(1)<<e/2
}

// record adds one latency; a negative one (clocks) counts as zero.
func (h *histogram) record(ns int64) {
	if ns < 0 {
		ns = 0
	}
	if h.counts == nil {
		h.counts = make([]uint32, numBuckets)
	}
	h.counts[bucketOf(ns)]++
	h.n++
	h.sum += float64(ns)
	h.max = max(h.max, ns)
}

// mergedHistogram is the sum of many connections' histograms.
type mergedHistogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    float64
	max    int64
}

func (m *mergedHistogram) add(h *histogram) {
	if h.n == 0 {
		return
	}
	for i, c := range h.counts {
		m.counts[i] += uint64(c)
	}
	m.n += h.n
	m.sum += h.sum
	m.max = max(m.max, h.max)
}

// quantile is the value at quantile q in [0, 1], never above the maximum.
func (m *mergedHistogram) quantile(q float64) int64 {
	if m.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(m.n)))
	rank = min(max(rank, 1), m.n)
	var seen uint64
	for i, c := range m.counts {
		seen += c
		if seen >= rank {
			return min(bucketValue(i), m.max)
		}
	}
	return m.max
}

// Latency summarises delivery latencies (receive time minus the publisher's
// sent_ns), in milliseconds. Percentiles are within about 3%; Max is exact.
type Latency struct {
	Samples uint64  `json:"samples"`
	Mean    float64 `json:"mean_ms"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

func (m *mergedHistogram) latency() Latency {
	ms := func(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
	l := Latency{Samples: m.n, P50: ms(m.quantile(0.50)), P90: ms(m.quantile(0.90)), P99: ms(m.quantile(0.99)), Max: ms(m.max)}
	if m.n > 0 {
		l.Mean = m.sum / float64(m.n) / float64(time.Millisecond)
	}
	return l
}
