package conn

import (
	"io"
	"net"
	"runtime"
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
// frame as a room builds it, with and without permessage-deflate. Per
// delivery (one event to one member) it reports the bytes written to the
// socket and the process CPU (writers, the fan-out, and the discarding
// peers' reads), plus the wall time per op (one event to every member).
func BenchmarkDeliveryDeflate(b *testing.B) {
	const members = 50
	for _, ev := range benchEvents {
		for _, deflate := range []bool{false, true} {
			name := ev.name + "/plain"
			if deflate {
				name = ev.name + "/deflate"
			}
			b.Run(name, func(b *testing.B) { benchDelivery(b, ev.payload, members, deflate) })
		}
	}
}

func benchDelivery(b *testing.B, payload []byte, members int, deflate bool) {
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
	for i := range b.N {
		f := wire.NewTextFrame(payload)
		for _, c := range conns {
			if !c.Enqueue(f) {
				b.Fatal("enqueue refused")
			}
		}
		if i%64 == 63 {
			drain()
		}
	}
	drain()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	deliveries := float64(b.N) * float64(members)
	b.ReportMetric(float64(written.Load())/deliveries, "wire-B/delivery")
	b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
	b.ReportMetric(float64(len(payload)), "payload-B")
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
