package conn

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// A frame larger than the socket's buffer is written partly at once and
// finished by the writer; a close that drops the queue meanwhile still
// lets that frame finish before the close frame, so the peer reads whole
// frames only.
func TestAFramePartlyWrittenIsFinishedBeforeTheClose(t *testing.T) {
	c, client, h := pair(t, Options{MaxQueueBytes: 64 << 20})
	big := wire.NewTextFrame(bytes.Repeat([]byte("b"), 8<<20)) // more than any socket buffer here
	small := wire.NewTextFrame([]byte("after"))
	if !c.Enqueue(big) || !c.Enqueue(small) {
		t.Fatal("enqueue refused")
	}
	c.Close(wire.CloseGoingAway, "bye") // drops small, not the rest of big
	_ = client.SetReadDeadline(time.Now().Add(20 * time.Second))
	f, err := ws.ReadFrame(client)
	if err != nil {
		t.Fatalf("read the big frame: %v", err)
	}
	if f.Header.OpCode != ws.OpText || len(f.Payload) != 8<<20 || bytes.Count(f.Payload, []byte("b")) != 8<<20 {
		t.Fatalf("big frame: opcode %v, %d bytes", f.Header.OpCode, len(f.Payload))
	}
	f, err = ws.ReadFrame(client)
	if err != nil {
		t.Fatalf("read the close frame: %v", err)
	}
	if f.Header.OpCode != ws.OpClose {
		t.Fatalf("after the big frame: %v %q, want the close (the small frame was dropped)", f.Header.OpCode, f.Payload)
	}
	if code, _ := ws.ParseCloseFrameData(f.Payload); code != wire.CloseGoingAway {
		t.Fatalf("close code %d, want %d", code, wire.CloseGoingAway)
	}
	_ = client.Close()
	h.waitClosed(t)
}

// Frames written straight to the socket and frames the writer batches
// arrive in the order they were queued, with pings answered in between.
func TestDirectAndBatchedWritesKeepOrder(t *testing.T) {
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
