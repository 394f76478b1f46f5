package server_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// BenchmarkStalledMembers: one member of a room reads normally while
// `stalled` others, connected with 4 KiB receive buffers, never read; 2,000
// events of 4 KiB are published one after the other. Reports, as medians of
// the runs (-benchtime Nx), the reading member's publish-to-receive latency
// (p50, p99, max), the time to store the events (publish_ms), the time from
// the first publish until every stalled member was closed as a slow
// consumer (closed_ms) and the process's CPU time meanwhile (cpu_ms). A
// stalled member costs what any member costs until its socket is full
// (a copy of each event into its socket), then nothing but a queued
// pointer per event until its queue overflows and it is reset. Each run
// starts a node on embedded NATS; 3,000 stalled members take about 6,000
// files.
//
//	go test -run '^$' -bench StalledMembers -benchtime 5x ./internal/server/
func BenchmarkStalledMembers(b *testing.B) {
	for _, stalled := range []int{0, 3000} {
		b.Run(fmt.Sprintf("stalled=%d", stalled), func(b *testing.B) {
			var runs []stalledRun
			for range b.N {
				runs = append(runs, stalledMembers(b, stalled))
			}
			reportStalled(b, runs)
		})
	}
}

// stalledRun is what one run measured.
type stalledRun struct {
	p50, p99, max, publish, closed time.Duration
	cpu                            time.Duration // the process's, while publishing and reading
}

// reportStalled reports the medians of the runs.
func reportStalled(b *testing.B, runs []stalledRun) {
	median := func(get func(stalledRun) time.Duration) float64 {
		var v []time.Duration
		for _, r := range runs {
			v = append(v, get(r))
		}
		slices.Sort(v)
		return float64(v[len(v)/2].Microseconds()) / 1000
	}
	b.ReportMetric(median(func(r stalledRun) time.Duration { return r.p50 }), "p50_ms")
	b.ReportMetric(median(func(r stalledRun) time.Duration { return r.p99 }), "p99_ms")
	b.ReportMetric(median(func(r stalledRun) time.Duration { return r.max }), "max_ms")
	b.ReportMetric(median(func(r stalledRun) time.Duration { return r.publish }), "publish_ms")
	b.ReportMetric(median(func(r stalledRun) time.Duration { return r.closed }), "closed_ms")
	b.ReportMetric(median(func(r stalledRun) time.Duration { return r.cpu }), "cpu_ms")
}

const (
	stalledEvents    = 2000
	stalledEventSize = 4 << 10
)

func stalledMembers(b *testing.B, stalled int) stalledRun {
	b.StopTimer()
	srv := startNode(b, nil, nil)
	const room = "pool:stalled"
	dialStalled(b, srv, room, stalled)
	reader := dial(b, srv)
	subscribe(b, reader, room, nil)
	pub := newPublisher(b, srv.NATSURL())
	pad := strings.Repeat("p", stalledEventSize)

	lat := make(chan []time.Duration, 1)
	go func() { lat <- readLatencies(b, reader, stalledEvents) }()
	b.StartTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for i := range stalledEvents {
		pub.raw(room, fmt.Appendf(nil, `{"event":"e","data":{"n":%d,"t":%d,"pad":%q}}`, i, time.Now().UnixNano(), pad))
	}
	run := stalledRun{publish: time.Since(start)}
	got := <-lat
	run.cpu = cpuTime() - cpu0
	natstest.WaitFor(b, 60*time.Second, func() error {
		if n := servertest.Closes(b, srv.AdminAddr(), "slow_consumer"); n < float64(stalled) {
			return fmt.Errorf("%v of %d stalled members closed as slow", n, stalled)
		}
		return nil
	})
	run.closed = time.Since(start)
	b.StopTimer()
	if len(got) != stalledEvents {
		b.Fatalf("reader got %d events, want %d", len(got), stalledEvents)
	}
	slices.Sort(got)
	run.p50, run.p99, run.max = got[len(got)/2], got[len(got)*99/100], got[len(got)-1]
	return run
}

// dialStalled connects n members of room with small receive buffers that
// never read after their subscribe response.
func dialStalled(b *testing.B, srv *server.Server, room string, n int) {
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c := dialBuffer(b, srv, 4<<10)
				subscribe(b, c, room, nil)
			}
		})
	}
	wg.Wait()
}

// readLatencies reads n events in order and returns each one's time from
// its publish to its arrival.
func readLatencies(b *testing.B, c *client.Conn, n int) []time.Duration {
	out := make([]time.Duration, 0, n)
	for len(out) < n {
		m, err := c.Read(time.Now().Add(60 * time.Second))
		if err != nil {
			b.Errorf("reader: %v after %d events", err, len(out))
			return out
		}
		if m.Type != wire.TypeEvent {
			continue
		}
		var d struct{ N, T int64 }
		if err := json.Unmarshal(m.Data, &d); err != nil || d.N != int64(len(out)) {
			b.Errorf("reader: event %d is %.40s (%v)", len(out), m.Data, err)
			return out
		}
		out = append(out, time.Since(time.Unix(0, d.T)))
	}
	return out
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
