package conn

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wheel"
	"github.com/roomcast/roomcast/internal/wire"
)

type nopHandler struct{}

func (nopHandler) HandleMessage(*Conn, []byte)  {}
func (nopHandler) HandleBinary(*Conn)           {}
func (nopHandler) HandleClose(*Conn, CloseInfo) {}

// BenchmarkEnqueue is a connection's share of one delivery: queue the
// shared frame and wake the writer, which writes to a loopback socket whose
// peer discards everything.
func BenchmarkEnqueue(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		peer, err := ln.Accept()
		if err == nil {
			_, _ = io.Copy(io.Discard, peer)
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{MaxQueueMessages: 1 << 16, MaxQueueBytes: 1 << 30}.WithDefaults()
	opts.Wheel = wheel.New(100 * time.Millisecond) // as on a node, whose connections all have one
	defer opts.Wheel.Close()
	c := New(nc, nopHandler{}, &opts, false)
	c.Serve()
	defer func() {
		c.Abort()
		<-c.Done()
	}()
	f := wire.EventFrame(&wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 1, Name: "worker.status_changed",
		Data: []byte(`{"worker_id":"w1","status":"busy","pool_id":"p1"}`)})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if !c.Enqueue(f) {
			b.Fatal("enqueue refused")
		}
		if i%1024 == 1023 {
			// Keep to the writer's pace, as a room's fan-out does across
			// many connections, so the queue measures steady state.
			for c.queued() > 4096 {
				runtime.Gosched()
			}
		}
	}
}

func (c *Conn) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}
