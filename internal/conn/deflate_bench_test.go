package conn

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wheel"
	"github.com/roomcast/roomcast/internal/wire"
	"github.com/roomcast/roomcast/internal/wire/wiretest"
)

// benchEvents are the events the delivery benchmarks fan out: a typical
// worker-pool event and a 4 KiB one.
var benchEvents = []struct {
	name    string
	payload []byte
}{
	{"pool-event", deflateEvent},
	{"4KiB", wiretest.BigPoolEvent()},
}

// BenchmarkDeliveryDeflate fans events out to a room of members on
// loopback sockets whose peers discard what they read, each event a fresh
// frame as a room builds it, with and without permessage-deflate, in
// bursts of 64 held until the last is queued, as a room delivers events
// that waited in its inbox together. Per delivery (one event to one
// member) it reports the bytes written to the socket and the process CPU
// (writers, the fan-out, and the discarding peers' reads), plus the wall
// time per op (one event to every member).
func BenchmarkDeliveryDeflate(b *testing.B) {
	const members = 50
	for _, ev := range benchEvents {
		for _, deflate := range []bool{false, true} {
			name := ev.name + "/plain"
			if deflate {
				name = ev.name + "/deflate"
			}
			b.Run(name, func(b *testing.B) { benchDelivery(b, ev.payload, members, deflate, deliverBursts) })
		}
	}
}

// BenchmarkDeliverySparse is BenchmarkDeliveryDeflate's pool event with
// every delivery written before the next event comes, as when events are
// a few milliseconds apart: each needs a write of its own (none batch),
// which is where a writer goroutine per delivery costs most.
func BenchmarkDeliverySparse(b *testing.B) {
	for _, members := range []int{50, 1000} {
		for _, deflate := range []bool{false, true} {
			name := fmt.Sprintf("members=%d/plain", members)
			if deflate {
				name = fmt.Sprintf("members=%d/deflate", members)
			}
			b.Run(name, func(b *testing.B) { benchDelivery(b, deflateEvent, members, deflate, deliverSparse) })
		}
	}
}

// BenchmarkDeliveryBackToBack is BenchmarkDeliveryDeflate's pool event
// queued 64 events in a row with Enqueue, not held: what a connection
// gets from rooms that each deliver one event at a time, back to back.
// Frames batch only as far as they come while a write is under way.
func BenchmarkDeliveryBackToBack(b *testing.B) {
	benchDelivery(b, deflateEvent, 50, false, deliverBackToBack)
}

// How benchDelivery queues its events.
type deliverMode int

const (
	deliverBursts     deliverMode = iota // EnqueueHeld 64 events, then Flush: a room's burst
	deliverSparse                        // Enqueue one event, then wait for every write
	deliverBackToBack                    // Enqueue 64 events, then wait for every write
)

// benchDelivery fans b.N events out to members as mode says.
func benchDelivery(b *testing.B, payload []byte, members int, deflate bool, mode deliverMode) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			peer, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, peer) }()
		}
	}()
	var written atomic.Int64
	opts := Options{MaxQueueMessages: 1 << 16, MaxQueueBytes: 1 << 30}.WithDefaults()
	opts.Written = func(_, n int, _ time.Time) { written.Add(int64(n)) }
	opts.Wheel = wheel.New(100 * time.Millisecond) // as on a node, whose connections all have one
	defer opts.Wheel.Close()
	conns := make([]*Conn, members)
	for i := range conns {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = New(nc, nopHandler{}, &opts, deflate)
		conns[i].Serve()
	}
	defer func() {
		for _, c := range conns {
			c.Abort()
			<-c.Done()
		}
	}()
	drain := func() {
		for _, c := range conns {
			for c.queued() > 0 || c.writerBusy() {
				runtime.Gosched()
			}
		}
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	every := 64
	if mode == deliverSparse {
		every = 1
	}
	for i := range b.N {
		benchFanOut(b, conns, wire.NewTextFrame(payload), mode == deliverBursts)
		if i%every == every-1 {
			for _, c := range conns {
				c.Flush() // nothing to do unless held
			}
			drain()
		}
		if mode == deliverSparse {
			// Events a few milliseconds apart: past the millisecond
			// within which a connection's next frame waits for a writer
			// goroutine (inlineGap).
			b.StopTimer()
			time.Sleep(2 * time.Millisecond)
			b.StartTimer()
		}
	}
	for _, c := range conns {
		c.Flush()
	}
	drain()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	deliveries := float64(b.N) * float64(members)
	b.ReportMetric(float64(written.Load())/deliveries, "wire-B/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(len(payload)), "payload-B")
}

// benchFanOut queues f to every connection as a room's fan-out does: a
// goroutine per core for 512 members or more, one per 256 at most.
func benchFanOut(b *testing.B, conns []*Conn, f *wire.Frame, held bool) {
	parts := min(runtime.GOMAXPROCS(0), len(conns)/256)
	size := (len(conns) + max(parts, 1) - 1) / max(parts, 1)
	chunks := slices.Collect(slices.Chunk(conns, size))
	var wg sync.WaitGroup
	for _, part := range chunks[1:] {
		wg.Go(func() { benchEnqueue(b, part, f, held) })
	}
	benchEnqueue(b, chunks[0], f, held)
	wg.Wait()
}

// benchEnqueue queues f to conns, held or not.
func benchEnqueue(b *testing.B, conns []*Conn, f *wire.Frame, held bool) {
	for _, c := range conns {
		ok := false
		if held {
			ok = c.EnqueueHeld(f)
		} else {
			ok = c.Enqueue(f)
		}
		if !ok {
			b.Error("enqueue refused")
			return
		}
	}
}

// writerBusy reports whether a writer goroutine runs.
func (c *Conn) writerBusy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writing
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
