package conn

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// Frames of every size, batched by the writer into vectored writes, arrive
// whole and in the order they were queued, with pings answered between.
func TestBatchedWritesKeepOrder(t *testing.T) {
	c, client, _ := pair(t, Options{MaxQueueMessages: 1 << 14, MaxQueueBytes: 64 << 20})
	const n = 2000
	done := make(chan error, 1)
	go func() {
		for i := range n {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%3000)
			if !c.Enqueue(wire.NewTextFrame(p)) {
				done <- errRefused
				return
			}
		}
		done <- nil
	}()
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewPingFrame([]byte("p")))); err != nil {
		t.Fatal(err)
	}
	pongs := 0
	for i := 0; i < n; {
		f := readFrame(t, client)
		if f.Header.OpCode == ws.OpPong {
			pongs++
			continue
		}
		want := bytes.Repeat([]byte{byte('a' + i%26)}, 1+i%3000)
		if !bytes.Equal(f.Payload, want) {
			t.Fatalf("frame %d: %d bytes of %q, want %d of %q", i, len(f.Payload), f.Payload[:1], len(want), want[:1])
		}
		i++
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for pongs == 0 {
		if f := readFrame(t, client); f.Header.OpCode == ws.OpPong {
			pongs++
		}
	}
}

var errRefused = errors.New("enqueue refused")

// Frames queued held wait for Flush, then go out together, in order.
func TestHeldFramesWaitForFlush(t *testing.T) {
	c, client, _ := pair(t, Options{})
	for i := range 3 {
		if !c.EnqueueHeld(wire.NewTextFrame([]byte{byte('a' + i)})) {
			t.Fatal("enqueue refused")
		}
	}
	_ = client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("a held frame was written before Flush")
	}
	c.Flush()
	for i := range 3 {
		if f := readFrame(t, client); string(f.Payload) != string(rune('a'+i)) {
			t.Fatalf("frame %d: %q", i, f.Payload)
		}
	}
}

// Held frames that reach a quarter of the queue's limits are written
// without waiting for Flush: a long burst never overflows a member that
// keeps up.
func TestALongBurstIsWrittenAsItIsHeld(t *testing.T) {
	c, client, h := pair(t, Options{MaxQueueMessages: 16})
	for i := range 4 { // a quarter of 16
		if !c.EnqueueHeld(wire.NewTextFrame([]byte{byte('a' + i)})) {
			t.Fatal("enqueue refused")
		}
	}
	for i := range 4 {
		if f := readFrame(t, client); string(f.Payload) != string(rune('a'+i)) {
			t.Fatalf("frame %d: %q", i, f.Payload)
		}
	}
	for i := range 64 { // four times the queue's limit, read as it goes
		if !c.EnqueueHeld(wire.NewTextFrame([]byte{'x'})) {
			t.Fatalf("held frame %d refused: the queue overflowed", i)
		}
		if i%4 == 3 {
			for range 4 {
				readFrame(t, client)
			}
		}
	}
	select {
	case info := <-h.closed:
		t.Fatalf("closed: %+v", info)
	default:
	}
}
