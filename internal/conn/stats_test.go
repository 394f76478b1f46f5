package conn

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// bigEvent is an event frame of room with a payload of about n bytes.
func bigEvent(room string, seq uint64, n int) *wire.Frame {
	return wire.EventFrame(&wire.Event{Room: wire.MustRoom(room), Seq: seq, Name: "worker.status_changed",
		Time: time.Now(), Data: []byte(`{"pad":"` + string(bytes.Repeat([]byte("x"), n)) + `"}`)})
}

// A connection whose peer reads nothing reports what waits for it: the
// batch its blocked writer holds and the queue behind it, per room, and
// an oldest wait that grows while nothing is written.
func TestStatsCountsQueuedAndInFlightFrames(t *testing.T) {
	c, _ := stalledPair(t, Options{MaxQueueMessages: 256, MaxQueueBytes: 64 << 20, WriteTimeout: time.Minute}, newRecordingHandler())
	if st := c.Stats(); st.Frames != 0 || st.OldestWait != 0 || len(st.Rooms) != 0 {
		t.Fatalf("idle connection: %+v, want nothing queued", st)
	}
	if bl := c.Backlog(); bl != (Backlog{}) {
		t.Fatalf("idle connection's backlog: %+v, want none", bl)
	}
	// Stall the writer on the full socket, as in the overflow test.
	stalled := false
	for i := range 1000 {
		f := bigEvent("pool:a", uint64(i+1), 32<<10)
		if !c.Enqueue(f) {
			t.Fatal("a frame did not fit while the writer kept up")
		}
		if stalled = !queueTaken(c, 500*time.Millisecond); stalled {
			break
		}
	}
	if !stalled {
		t.Fatal("the peer was never stalled")
	}
	// Behind the stalled writer: 3 events of pool:b and one response.
	for i := range 3 {
		if !c.Enqueue(bigEvent("pool:b", uint64(i+1), 100)) {
			t.Fatal("queue refused a frame")
		}
	}
	resp := wire.NewTextFrame([]byte(`{"type":"response"}`))
	if !c.Enqueue(resp) {
		t.Fatal("queue refused a response")
	}
	first := c.Stats()
	// The queue holds the last pool:a frame (not taken) plus the 4 just
	// queued; the writer holds at least one pool:a frame in flight.
	b := roomOf(first, "pool:b")
	if b.Events != 3 {
		t.Fatalf("pool:b: %+v, want 3 events queued", first.Rooms)
	}
	a := roomOf(first, "pool:a")
	if a.Events < 2 {
		t.Fatalf("pool:a: %+v, want the queued frame and the writer's batch in flight", first.Rooms)
	}
	if first.Frames != a.Events+b.Events+1 {
		t.Fatalf("frames %d, want rooms' events %d + %d and the response", first.Frames, a.Events, b.Events)
	}
	if first.Bytes != a.Bytes+b.Bytes+resp.Len() || a.Bytes < a.Events*(32<<10) {
		t.Fatalf("bytes %d (pool:a %d, pool:b %d), want their sum with the response's %d", first.Bytes, a.Bytes, b.Bytes, resp.Len())
	}
	if first.OldestWait < 500*time.Millisecond {
		t.Fatalf("oldest wait %v, want at least the 500ms the queue was seen untaken", first.OldestWait)
	}
	// Backlog's totals are Stats' (the writer holds its batch, so they
	// stand still while both are read).
	if bl := c.Backlog(); bl.Events != a.Events+b.Events || bl.Bytes != first.Bytes || bl.OldestWait < first.OldestWait || !bl.Behind() {
		t.Fatalf("backlog %+v, want %d events, %d bytes, a wait of at least %v", bl, a.Events+b.Events, first.Bytes, first.OldestWait)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if w := c.Stats().OldestWait; w <= first.OldestWait+100*time.Millisecond {
			return fmt.Errorf("oldest wait %v, first read %v: not growing", w, first.OldestWait)
		}
		return nil
	})
	c.Abort()
	<-c.Done()
	if st := c.Stats(); st.Frames != 0 || st.OldestWait != 0 {
		t.Fatalf("after the close: %+v, want nothing queued", st)
	}
	if bl := c.Backlog(); bl.Behind() || bl.OldestWait != 0 {
		t.Fatalf("backlog after the close: %+v, want none", bl)
	}
}

func roomOf(st Stats, room string) RoomQueue {
	for _, r := range st.Rooms {
		if r.Room == room {
			return r
		}
	}
	return RoomQueue{}
}

// A connection whose peer reads everything has nothing waiting once the
// writer is done, and reports the rooms it conflates.
func TestStatsOfAReadingPeer(t *testing.T) {
	c, client, _ := pair(t, Options{})
	c.SetConflate("pool:a", true)
	if !c.Enqueue(bigEvent("pool:a", 1, 10)) {
		t.Fatal("queue refused a frame")
	}
	readFrame(t, client)
	natstest.WaitFor(t, 5*time.Second, func() error {
		if st := c.Stats(); st.Frames != 0 {
			return fmt.Errorf("%+v still queued", st)
		}
		return nil
	})
	st := c.Stats()
	if st.OldestWait != 0 || st.Bytes != 0 || len(st.Rooms) != 0 {
		t.Fatalf("written: %+v, want nothing waiting", st)
	}
	if len(st.Conflating) != 1 || st.Conflating[0] != "pool:a" {
		t.Fatalf("conflating %v, want [pool:a]", st.Conflating)
	}
}
