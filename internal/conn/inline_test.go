package conn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// writes records, for each Written call, how many frames it reported and
// whether the frames went out inline (written by the enqueuing goroutine)
// or by a writer goroutine: it looks for writeLoop among its callers, a
// fact of the call, not of timing.
type writes struct {
	mu    sync.Mutex
	calls []writeCall
	then  func() // run after recording, on the writing goroutine; nil none
}

type writeCall struct {
	frames, bytes int
	inline        bool
}

func (w *writes) written(frames, bytes int, _ time.Time) {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(2, pcs)
	inline := true
	it := runtime.CallersFrames(pcs[:n])
	for {
		fr, more := it.Next()
		if strings.HasSuffix(fr.Function, ".(*Conn).writeLoop") {
			inline = false
		}
		if !more {
			break
		}
	}
	w.mu.Lock()
	w.calls = append(w.calls, writeCall{frames, bytes, inline})
	then := w.then
	w.then = nil
	w.mu.Unlock()
	if then != nil {
		then()
	}
}

func (w *writes) get() []writeCall {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]writeCall(nil), w.calls...)
}

// waitCalls polls until n writes were recorded and returns them.
func (w *writes) waitCalls(t *testing.T, n int) []writeCall {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		calls := w.get()
		switch {
		case len(calls) >= n:
			return calls
		case time.Now().After(deadline):
			t.Fatalf("%d writes after 10s, want %d: %+v", len(calls), n, calls)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

// A live frame for an idle connection is written by Enqueue itself: when
// Enqueue returns it is on the socket, no writer goroutine runs and
// nothing is in flight.
func TestIdleConnectionWritesInline(t *testing.T) {
	var w writes
	c, client, _ := pair(t, Options{Written: w.written})
	f := wire.NewTextFrame([]byte("one"))
	if !c.Enqueue(f) {
		t.Fatal("enqueue refused")
	}
	calls := w.get()
	if len(calls) != 1 || !calls[0].inline || calls[0].frames != 1 || calls[0].bytes != len(f.Bytes()) {
		t.Fatalf("writes when Enqueue returned %+v, want one inline write of the frame", calls)
	}
	if c.writerBusy() || c.queued() != 0 || c.Stats().Frames != 0 {
		t.Fatalf("after an inline write: writer busy %v, queued %d, stats %+v", c.writerBusy(), c.queued(), c.Stats())
	}
	if got := readFrame(t, client); string(got.Payload) != "one" {
		t.Fatalf("client read %q", got.Payload)
	}
	// The next one goes inline too once inlineGap has passed: the slice
	// the queue gave up came back.
	sendInline(t, c, client, &w, "two", 2)
}

// A frame that comes within inlineGap of the last write is queued for a
// writer goroutine instead, so frames back to back go out together. A
// machine busy enough to hold the test up for inlineGap between the two
// calls lets the gap pass; such an attempt shows nothing and is made
// again.
func TestFramesBackToBackGoToTheWriter(t *testing.T) {
	for attempt := 1; attempt <= 5; attempt++ {
		var w writes
		c, client, _ := pair(t, Options{Written: w.written})
		first, second := wire.NewTextFrame([]byte("first")), wire.NewTextFrame([]byte("second"))
		if !c.Enqueue(first) || !c.Enqueue(second) {
			t.Fatal("enqueue refused")
		}
		for _, want := range []string{"first", "second"} {
			if got := readFrame(t, client); string(got.Payload) != want {
				t.Fatalf("client read %q, want %q", got.Payload, want)
			}
		}
		calls := w.waitCalls(t, 2)
		if !calls[0].inline {
			t.Fatalf("writes %+v, want the first inline", calls)
		}
		if !calls[1].inline {
			return
		}
		t.Logf("attempt %d: the second frame came after the gap", attempt)
	}
	t.Fatal("5 attempts in a row wrote a frame inline right after another")
}

// sendInline enqueues a frame of payload and checks that it was the
// calls-th write, made inline, and that the client reads it.
func sendInline(t *testing.T, c *Conn, client net.Conn, w *writes, payload string, calls int) {
	t.Helper()
	waitInlineGap(t, c)
	if !c.Enqueue(wire.NewTextFrame([]byte(payload))) {
		t.Fatal("enqueue refused")
	}
	if got := w.get(); len(got) != calls || !got[calls-1].inline {
		t.Fatalf("writes %+v, want the frame %q written inline, write %d", got, payload, calls)
	}
	if got := readFrame(t, client); string(got.Payload) != payload {
		t.Fatalf("client read %q, want %q", got.Payload, payload)
	}
}

// A frame that Enqueue queues while an inline write is under way (here:
// from the Written callback, which runs before the inline writer lets go
// of the socket) waits for it and goes out after it, from a writer
// goroutine the inline write starts.
func TestEnqueueDuringInlineWriteKeepsOrder(t *testing.T) {
	var w writes
	c, client, _ := pair(t, Options{Written: w.written})
	second := wire.NewTextFrame([]byte("second"))
	w.then = func() {
		if !c.Enqueue(second) {
			t.Error("enqueue during the inline write refused")
		}
	}
	if !c.Enqueue(wire.NewTextFrame([]byte("first"))) {
		t.Fatal("enqueue refused")
	}
	for _, want := range []string{"first", "second"} {
		if got := readFrame(t, client); string(got.Payload) != want {
			t.Fatalf("client read %q, want %q", got.Payload, want)
		}
	}
	calls := w.waitCalls(t, 2)
	if !calls[0].inline || calls[1].inline {
		t.Fatalf("writes %+v, want the first inline, the second by the writer", calls)
	}
}

// A frame larger than the socket can take at once is begun inline and
// finished by a writer goroutine as the peer reads, before the frames
// queued after it; the peer reads every frame whole, in order.
func TestPartialInlineWriteIsFinishedInOrder(t *testing.T) {
	var w writes
	h := newRecordingHandler()
	c, client := stalledPair(t, Options{Written: w.written, MaxQueueBytes: 16 << 20}, h)
	big := bytes.Repeat([]byte("b"), 4<<20) // far past the socket buffers of stalledPair
	if !c.Enqueue(wire.NewTextFrame(big)) {
		t.Fatal("enqueue refused")
	}
	// The peer has read nothing, so most of the frame is in flight.
	if st := c.Stats(); st.Frames != 1 || !c.writerBusy() {
		t.Fatalf("after a partial inline write: stats %+v, writer busy %v; want the frame in flight with a writer", st, c.writerBusy())
	}
	for i := range 3 {
		if !c.Enqueue(wire.NewTextFrame([]byte{byte('0' + i)})) {
			t.Fatalf("enqueue %d refused", i)
		}
	}
	if got := readFrame(t, client); !bytes.Equal(got.Payload, big) {
		t.Fatalf("client read %d bytes, want the %d of the big frame", len(got.Payload), len(big))
	}
	for i := range 3 {
		if got := readFrame(t, client); string(got.Payload) != string(rune('0'+i)) {
			t.Fatalf("frame %d after the big one: %q", i, got.Payload)
		}
	}
	if calls := w.waitCalls(t, 2); calls[0].inline || calls[0].frames != 1 || calls[0].bytes != len(wire.NewTextFrame(big).Bytes()) {
		t.Fatalf("writes %+v, want the big frame reported whole, by the writer that finished it", calls)
	}
}

// Producers enqueueing at once on an idle connection, inline writes and
// writer goroutines taking turns, never interleave frames and keep each
// producer's order.
func TestConcurrentEnqueuesWithInlineWritesKeepOrder(t *testing.T) {
	c, client, _ := pair(t, Options{MaxQueueMessages: 1 << 14, MaxQueueBytes: 64 << 20})
	const producers, each = 4, 300
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				pad := strings.Repeat("x", (p*each+i)%2000)
				if !c.Enqueue(wire.NewTextFrame(fmt.Appendf(nil, "%d %d %s", p, i, pad))) {
					t.Errorf("producer %d: enqueue %d refused", p, i)
					return
				}
				if i%50 == 0 {
					runtime.Gosched() // let the writer go idle now and then
				}
			}
		})
	}
	next := make([]int, producers)
	for range producers * each {
		got := readFrame(t, client)
		fields := strings.SplitN(string(got.Payload), " ", 3)
		if len(fields) != 3 {
			t.Fatalf("frame %.40q: not one a producer sent", got.Payload)
		}
		p, err1 := strconv.Atoi(fields[0])
		i, err2 := strconv.Atoi(fields[1])
		pad := fields[2]
		if err1 != nil || err2 != nil || p < 0 || p >= producers || i != next[p] || len(pad) != (p*each+i)%2000 {
			t.Fatalf("frame %.40q: producer %d's frame %d with %d bytes of padding, want its frame %d", got.Payload, p, i, len(pad), next[p])
		}
		next[p]++
	}
	wg.Wait()
}

// A deflate connection writes inline too, the frame's shared compressed
// form, which inflates to the event.
func TestDeflateFrameIsWrittenInline(t *testing.T) {
	var w writes
	c, client := pairConn(t, Options{Written: w.written}, newRecordingHandler(), true)
	f := wire.NewTextFrame(deflateEvent)
	if !c.Enqueue(f) {
		t.Fatal("enqueue refused")
	}
	if calls := w.get(); len(calls) != 1 || !calls[0].inline || calls[0].bytes != len(f.Deflated()) {
		t.Fatalf("writes when Enqueue returned %+v, want one inline write of the %d compressed bytes", calls, len(f.Deflated()))
	}
	got := readFrame(t, client)
	if got.Header.Rsv != ws.Rsv(true, false, false) {
		t.Fatalf("header %+v, want RSV1", got.Header)
	}
	p, err := wire.Inflate(nil, got.Payload, 1<<20)
	if err != nil || !bytes.Equal(p, deflateEvent) {
		t.Fatalf("inflated %q, %v", p, err)
	}
}

// An inline write after the write deadline the last writer goroutine set
// has passed still goes out inline: it needs no deadline, since it never
// waits.
func TestInlineWriteAfterAnExpiredWriteDeadline(t *testing.T) {
	var w writes
	const timeout = 20 * time.Millisecond
	c, client, _ := pair(t, Options{Written: w.written, WriteTimeout: timeout})
	// A held frame is written by a writer goroutine, which sets the
	// deadline.
	if !c.EnqueueHeld(wire.NewTextFrame([]byte("held"))) {
		t.Fatal("enqueue refused")
	}
	c.Flush()
	if got := readFrame(t, client); string(got.Payload) != "held" {
		t.Fatalf("client read %q", got.Payload)
	}
	if calls := w.waitCalls(t, 1); calls[0].inline {
		t.Fatalf("writes %+v, want the held frame written by the writer", calls)
	}
	waitWriterIdle(t, c)
	time.Sleep(3 * timeout) // the condition is the deadline's passing
	sendInline(t, c, client, &w, "late", 2)
}

// waitWriterIdle polls until no writer goroutine runs.
func waitWriterIdle(t *testing.T, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.writerBusy() {
		if time.Now().After(deadline) {
			t.Fatal("the writer still runs after 10s")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

// A connection whose queue overflows while the rest of a frame begun
// inline waits for the socket is reset, never sent a close frame after
// part of a frame (which the peer would read as garbage): it reads its
// connection reset.
func TestOverflowAfterPartialInlineWriteResets(t *testing.T) {
	h := newRecordingHandler()
	c, client := stalledPair(t, Options{MaxQueueMessages: 16, MaxQueueBytes: 16 << 20, WriteTimeout: time.Minute}, h)
	if !c.Enqueue(wire.NewTextFrame(bytes.Repeat([]byte("b"), 4<<20))) {
		t.Fatal("enqueue refused")
	}
	overflowed := false
	for range 100 {
		if overflowed = !c.Enqueue(wire.NewTextFrame([]byte("x"))); overflowed {
			break
		}
	}
	if !overflowed {
		t.Fatal("the queue of 16 frames took 100 more")
	}
	if info := h.waitClosed(t); info.Code != wire.CloseSlowConsumer {
		t.Fatalf("closed with %+v, want 4008", info)
	}
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, client)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the peer read %v, want its connection reset", err)
	}
}

// waitInlineGap polls until inlineGap has passed since c's last write, so
// that its next frame may be written inline.
func waitInlineGap(t *testing.T, c *Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		past := inlineClock()-c.wroteAt >= inlineGapTicks
		c.mu.Unlock()
		switch {
		case past:
			return
		case time.Now().After(deadline):
			t.Fatal("inlineGap not past after 10s")
		}
		time.Sleep(100 * time.Microsecond) // polling with a deadline
	}
}
