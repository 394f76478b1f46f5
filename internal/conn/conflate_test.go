package conn

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// frameSpec names a test frame: "room/key/n" (an event of room with key
// and data n; key "-" for an unkeyed event), or "resp" (a frame that is
// not an event).
func specFrame(t *testing.T, spec string, pad int) *wire.Frame {
	t.Helper()
	if spec == "resp" {
		return wire.NewTextFrame([]byte(`{"type":"response","event":"subscribe"}`))
	}
	var room, key string
	var n int
	if _, err := fmt.Sscanf(strings.ReplaceAll(spec, "/", " "), "%s %s %d", &room, &key, &n); err != nil {
		t.Fatalf("spec %q: %v", spec, err)
	}
	if key == "-" {
		key = ""
	}
	return wire.EventFrame(&wire.Event{Room: wire.MustRoom("pool:" + room), Seq: uint64(n), Name: "e", Key: key,
		Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"pad":%q}`, n, strings.Repeat("p", pad)))})
}

// got is what the client read of one frame: its spec, as specFrame names
// it, with "+c" for a conflated count c.
func readSpec(t *testing.T, nc net.Conn) string {
	t.Helper()
	fr := readFrame(t, nc)
	if fr.Header.OpCode != ws.OpText {
		t.Fatalf("frame of op %v, want text", fr.Header.OpCode)
	}
	var m struct {
		Type, Room, Key string
		Data            struct{ N int }
		Conflated       *int
	}
	if err := json.Unmarshal(fr.Payload, &m); err != nil {
		t.Fatalf("frame %s: %v", fr.Payload, err)
	}
	if m.Type != "event" {
		return "resp"
	}
	key := m.Key
	if key == "" {
		key = "-"
	}
	s := fmt.Sprintf("%s/%s/%d", strings.TrimPrefix(m.Room, "pool:"), key, m.Data.N)
	if m.Conflated != nil {
		s += fmt.Sprintf("+%d", *m.Conflated)
	}
	return s
}

// compactNow runs a compaction as a push past the threshold would.
func compactNow(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.compactLocked()
}

// A compaction keeps the newest frame of each key of the rooms the
// connection conflates, never an unkeyed frame or one of another room or
// a frame that is not an event, keeps the order, and counts each dropped
// frame on the next kept frame of its room (a later compaction adds to a
// count, or passes on that of a copy it drops). What the client reads is
// exactly that.
func TestCompactionKeepsTheNewestOfEachKey(t *testing.T) {
	// Limits far above what is queued: no push compacts or starts the
	// writer by itself; the frames wait, held, for compactNow and Flush.
	c, client, _ := pair(t, Options{MaxQueueMessages: 1 << 16})
	c.SetConflate("pool:a", true)
	c.SetConflate("pool:c", true)
	c.SetConflate("pool:c", false) // cleared: c is not conflated
	rounds := []struct {
		push    []string
		dropped int
		want    []string // the queue after the compaction
	}{{
		push: []string{"a/k1/1", "a/k2/2", "b/k1/3", "a/-/4", "a/k1/5", "b/k1/6", "c/k1/7", "a/k1/8", "a/k2/9", "resp", "c/k1/10", "a/k3/11", "a/k1/12"},
		// a/k1/1 and a/k2/2 count on a/-/4; a/k1/5 and a/k1/8 on a/k2/9.
		dropped: 4,
		want:    []string{"b/k1/3", "a/-/4+2", "b/k1/6", "c/k1/7", "a/k2/9+2", "resp", "c/k1/10", "a/k3/11", "a/k1/12"},
	}, {
		// a/k2/9 (with the 2 it carries) and a/k3/11 count on
		// a/k1/12; a/k2/13 and a/k3/14 on a/k2/15.
		push:    []string{"a/k2/13", "a/k3/14", "a/k2/15", "a/-/16", "a/k3/17"},
		dropped: 4,
		want:    []string{"b/k1/3", "a/-/4+2", "b/k1/6", "c/k1/7", "resp", "c/k1/10", "a/k1/12+4", "a/k2/15+2", "a/-/16", "a/k3/17"},
	}, {
		// a/k2/15 passes its 2 and itself on to a/-/16.
		push:    []string{"a/k2/18"},
		dropped: 1,
		want:    []string{"b/k1/3", "a/-/4+2", "b/k1/6", "c/k1/7", "resp", "c/k1/10", "a/k1/12+4", "a/-/16+3", "a/k3/17", "a/k2/18"},
	}, {
		// a/k3/17 counts on a/k2/18, and a/k1/12 with its 4 on a/-/16,
		// which had 3: the sum.
		push:    []string{"a/k1/19", "a/k3/20"},
		dropped: 2,
		want:    []string{"b/k1/3", "a/-/4+2", "b/k1/6", "c/k1/7", "resp", "c/k1/10", "a/-/16+8", "a/k2/18+1", "a/k1/19", "a/k3/20"},
	}}
	for i, r := range rounds {
		for _, s := range r.push {
			if !c.EnqueueHeld(specFrame(t, s, 0)) {
				t.Fatalf("round %d: %s refused", i, s)
			}
		}
		if got := compactNow(c); got != r.dropped {
			t.Errorf("round %d: dropped %d frames, want %d", i, got, r.dropped)
		}
		c.mu.Lock()
		var got []string
		bytes := 0
		for _, f := range c.queue {
			bytes += f.Len()
			if f.Room == "" {
				got = append(got, "resp")
				continue
			}
			key := f.Key
			if key == "" {
				key = "-"
			}
			s := fmt.Sprintf("%s/%s/%d", strings.TrimPrefix(f.Room, "pool:"), key, f.Seq)
			if f.Conflated > 0 {
				s += fmt.Sprintf("+%d", f.Conflated)
			}
			got = append(got, s)
		}
		if bytes != c.queueBytes {
			t.Errorf("round %d: queue bytes %d, its frames have %d", i, c.queueBytes, bytes)
		}
		c.mu.Unlock()
		if fmt.Sprint(got) != fmt.Sprint(r.want) {
			t.Fatalf("round %d: queue\n %v\nwant\n %v", i, got, r.want)
		}
	}
	c.Flush()
	want := rounds[len(rounds)-1].want
	for i, w := range want {
		if got := readSpec(t, client); got != w {
			t.Fatalf("frame %d read as %s, want %s", i, got, w)
		}
	}
}

// A connection that conflates nothing is never compacted: its queue
// overflows into 4008 as before, however many frames one key supersedes.
func TestWithoutConflationOverflowCloses(t *testing.T) {
	h := newRecordingHandler()
	c, _ := stalledPair(t, Options{MaxQueueMessages: 64, WriteTimeout: time.Minute}, h)
	c.SetConflate("pool:a", true)
	c.SetConflate("pool:a", false)
	overflowed := false
	for i := range 100_000 {
		if overflowed = !c.Enqueue(specFrame(t, fmt.Sprintf("a/k1/%d", i+1), 1<<10)); overflowed {
			break
		}
	}
	if !overflowed {
		t.Fatal("100,000 frames of 1 KiB fit in a stalled queue of 64")
	}
	if info := h.waitClosed(t); info.Code != wire.CloseSlowConsumer {
		t.Fatalf("closed with %+v, want 4008", info)
	}
}

// A conflating connection whose peer reads nothing stays open while its
// queue holds only the newest frame of each key, and still closes with
// 4008 once what it cannot drop (unkeyed frames, other rooms) overflows.
func TestConflationOverflowsOnlyWithWhatItCannotDrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec func(i int) string
	}{
		{"unkeyed", func(i int) string { return fmt.Sprintf("a/-/%d", i) }},
		{"every key new", func(i int) string { return fmt.Sprintf("a/k%d/%d", i, i) }},
		{"another room", func(i int) string { return fmt.Sprintf("b/k1/%d", i) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newRecordingHandler()
			var conflated atomic.Int64
			c, _ := stalledPair(t, Options{MaxQueueMessages: 64, WriteTimeout: time.Minute,
				Conflated: func(n int) { conflated.Add(int64(n)) }}, h)
			c.SetConflate("pool:a", true)
			// 10,000 frames of 1 KiB over 8 keys: far more than the
			// socket and a queue of 64 hold; compaction keeps it open.
			const keyed = 10_000
			for i := range keyed {
				if !c.Enqueue(specFrame(t, fmt.Sprintf("a/k%d/%d", i%8, i+1), 1<<10)) {
					t.Fatalf("keyed frame %d refused: the queue overflowed", i)
				}
			}
			if c.Closing() || conflated.Load() == 0 {
				t.Fatalf("after %d keyed frames: closing %v, %d conflated", keyed, c.Closing(), conflated.Load())
			}
			overflowed := false
			for i := range 1000 {
				if overflowed = !c.Enqueue(specFrame(t, tc.spec(keyed+i+1), 1<<10)); overflowed {
					break
				}
			}
			if !overflowed {
				t.Fatal("1,000 frames that cannot be dropped fit in a queue of 64")
			}
			if info := h.waitClosed(t); info.Code != wire.CloseSlowConsumer {
				t.Fatalf("closed with %+v, want 4008", info)
			}
		})
	}
}

// A peer that reads slowly behind a conflating connection gets every
// frame it was sent or a count of it: what it reads plus the conflated
// counts it reads is every frame queued, it ends with the newest frame of
// each key, in order of seq within each key, and the node counted the
// frames it dropped.
func TestConflatedPeerGetsEveryFrameOrItsCount(t *testing.T) {
	var conflated atomic.Int64
	h := newRecordingHandler()
	c, client := stalledPair(t, Options{MaxQueueMessages: 1024, WriteTimeout: time.Minute,
		Conflated: func(n int) { conflated.Add(int64(n)) }}, h)
	c.SetConflate("pool:a", true)
	const n, keys = 5000, 8
	read := make(chan error, 1)
	var got, counted int
	newest := make(map[string]int)
	go func() {
		read <- func() error {
			for got+counted < n {
				_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
				fr, err := ws.ReadFrame(client)
				if err != nil {
					return err
				}
				var m struct {
					Key       string
					Data      struct{ N int }
					Conflated int
				}
				if err := json.Unmarshal(fr.Payload, &m); err != nil {
					return err
				}
				if m.Data.N <= newest[m.Key] {
					return fmt.Errorf("%s: %d after %d", m.Key, m.Data.N, newest[m.Key])
				}
				newest[m.Key] = m.Data.N
				got++
				counted += m.Conflated
				if got%64 == 0 {
					time.Sleep(time.Millisecond) // a slow reader, not a stalled one
				}
			}
			return nil
		}()
	}()
	for i := range n {
		if !c.Enqueue(specFrame(t, fmt.Sprintf("a/k%d/%d", i%keys, i+1), 1<<10)) {
			t.Fatalf("frame %d refused", i)
		}
	}
	if err := <-read; err != nil {
		t.Fatalf("after %d frames and %d counted: %v", got, counted, err)
	}
	if got+counted != n || int64(counted) != conflated.Load() {
		t.Fatalf("read %d frames with %d counted (the node counted %d), want %d in all", got, counted, conflated.Load(), n)
	}
	for k := range keys {
		if key := fmt.Sprintf("k%d", k); newest[key] != n-keys+k+1 {
			t.Errorf("key %s ends at %d, want %d", key, newest[key], n-keys+k+1)
		}
	}
	if counted == 0 {
		t.Error("nothing conflated: the peer was never behind")
	}
	select {
	case info := <-h.closed:
		t.Fatalf("closed: %+v", info)
	default:
	}
}

// A push compacts a conflating queue once it holds a sixteenth of its
// frame limit more than after the last compaction, long before it would
// overflow; below that, nothing is dropped.
func TestCompactionStartsPastTheThreshold(t *testing.T) {
	// A limit of 160 frames: a step of 10, and the writer held to 40.
	c, client, _ := pair(t, Options{MaxQueueMessages: 160})
	c.SetConflate("pool:a", true)
	queued := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.queue)
	}
	for i := range 10 {
		c.EnqueueHeld(specFrame(t, fmt.Sprintf("a/k1/%d", i+1), 0))
	}
	if n := queued(); n != 10 {
		t.Fatalf("%d frames queued below the threshold, want 10", n)
	}
	c.EnqueueHeld(specFrame(t, "a/k1/11", 0)) // the queue holds 10: compact
	for i := 12; i <= 20; i++ {
		c.EnqueueHeld(specFrame(t, fmt.Sprintf("a/k1/%d", i), 0))
	}
	if n := queued(); n != 10 {
		t.Fatalf("%d frames queued after the compaction and 9 more, want 10", n)
	}
	// The writer compacts what it takes: nothing it writes is superseded.
	c.Flush()
	if got := readSpec(t, client); got != "a/k1/20+19" {
		t.Fatalf("read %s, want a/k1/20+19", got)
	}
}

// A conflating connection closed after a flush (a drain, an expired
// token) writes everything queued before its close frame, though its
// writer otherwise takes a few KiB at a time.
func TestConflatingCloseAfterFlushWritesEverything(t *testing.T) {
	c, client, _ := pair(t, Options{MaxQueueMessages: 1024})
	c.SetConflate("pool:a", true)
	const n = 20
	for i := range n {
		if !c.EnqueueHeld(specFrame(t, fmt.Sprintf("a/-/%d", i+1), 1<<10)) {
			t.Fatal("refused")
		}
	}
	c.Force(specFrame(t, "resp", 0))
	c.CloseAfterFlush(wire.CloseGoingAway, "draining")
	got := 0
	for readFrame(t, client).Header.OpCode != ws.OpClose {
		got++
	}
	if got != n+1 {
		t.Fatalf("read %d frames before the close, want %d", got, n+1)
	}
}
