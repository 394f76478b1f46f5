package bus

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/requester"
	"github.com/roomcast/roomcast/internal/wire"
)

// Many callers at once share one read of the room list, which is the
// node's own read: it waits for a slot like any read (the scheduler
// counts it, in the node's queue, not a client's), and the list it gives
// is kept for the TTL.
func TestRecentRoomsShareOneScheduledRead(t *testing.T) {
	b := newBus(t, StreamConfig{})
	b.recent.ttl = time.Hour // no second read within the test, however slow the machine
	p1, w1 := wire.MustRoom("pool:p1"), wire.MustRoom("workflow:w1")
	b.mustPublish(t, p1, 1)
	last := b.mustPublish(t, w1, 1)

	// Hold every slot: a read must wait.
	var releases []func()
	for i := range DefaultMaxConcurrentReads / 2 {
		for range 2 {
			releases = append(releases, mustAcquire(t, b.reads, fmt.Sprint("hog", i), ""))
		}
	}
	const callers = 5
	got := make(chan wire.RecentRooms, callers)
	for i := range callers {
		go func() {
			ctx, cancel := context.WithTimeout(requester.With(t.Context(), fmt.Sprint("conn", i)), 30*time.Second)
			defer cancel()
			list, err := b.RecentRooms(ctx)
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
			got <- list
		}()
	}
	waitFor(t, "the list's read to queue", func() bool { return b.reads.waitingNow() == 1 })
	b.reads.mu.Lock()
	nodeQueued := len(b.reads.node.queue)
	b.reads.mu.Unlock()
	if nodeQueued != 1 {
		t.Fatalf("the node's queue holds %d reads, want the list's one", nodeQueued)
	}
	if len(got) != 0 {
		t.Fatal("a caller got the list while every slot was held")
	}
	for _, release := range releases {
		release()
	}
	for range callers {
		list := <-got
		if len(list.Rooms) != 2 || list.Rooms[0].Room != w1 || list.Rooms[0].Seq != last || list.Rooms[1].Room != p1 || list.Truncated {
			t.Fatalf("list %+v, want workflow:w1 (seq %d) then pool:p1", list, last)
		}
	}
	if n := testutil.ToFloat64(b.m.StreamCalls.WithLabelValues("multi_last")); n != 1 {
		t.Fatalf("%v multi_last requests for %d callers, want 1", n, callers)
	}
	if _, err := b.RecentRooms(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(b.m.StreamCalls.WithLabelValues("multi_last")); n != 1 {
		t.Fatalf("%v multi_last requests after a call within the TTL, want 1 (the kept list)", n)
	}
}

// BenchmarkRecentRooms reads the room list of a stream of 1,000 rooms:
// "read" from the stream every time (the TTL off), "kept" within the TTL.
func BenchmarkRecentRooms(b *testing.B) {
	for _, bc := range []struct {
		name string
		ttl  time.Duration
	}{{"read", 0}, {"kept", time.Hour}} {
		b.Run(bc.name, func(b *testing.B) {
			bus := newBus(b, StreamConfig{})
			for i := range 1000 {
				if _, err := bus.Publish(b.Context(), wire.MustRoom(fmt.Sprintf("pool:r%d", i)), []byte(`{"event":"e"}`), wire.PublishOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			bus.recent.ttl = bc.ttl
			b.ResetTimer()
			for b.Loop() {
				list, err := bus.RecentRooms(b.Context())
				if err != nil || len(list.Rooms) != 1000 {
					b.Fatalf("%d rooms, %v", len(list.Rooms), err)
				}
			}
		})
	}
}
