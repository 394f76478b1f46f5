package bus

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// What docs/protocol.md section 2 tells publishers about retries: within
// the duplicate window a retry with the same Nats-Msg-Id is stored once and
// answered with the first copy's seq; after it, the retry is a second copy
// under a new seq, and a replay (as any client) gets the event twice.
func TestRetryAfterTheDuplicateWindowIsStoredTwice(t *testing.T) {
	const window = 300 * time.Millisecond // the stream's is 2 minutes
	b := newBus(t, StreamConfig{DuplicateWindow: window})
	r, _ := wire.ParseRoom("pool:p1")
	payload := []byte(`{"event":"task.assigned","data":{"task_id":"t7"}}`)
	first, err := b.Publish(t.Context(), r, payload, wire.PublishOptions{MsgID: "task-t7-assigned"})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := b.Publish(t.Context(), r, payload, wire.PublishOptions{MsgID: "task-t7-assigned"}); err != nil || again != first {
		t.Fatalf("a retry within the window: seq %d, %v; want the first copy's %d", again, err, first)
	}
	// Retry until the window has passed: each retry inside it is dropped
	// again, the first after it is stored.
	var second uint64
	natstest.WaitFor(t, 10*time.Second, func() error {
		seq, err := b.Publish(t.Context(), r, payload, wire.PublishOptions{MsgID: "task-t7-assigned"})
		if err != nil {
			return err
		}
		if seq == first {
			return fmt.Errorf("still deduplicated")
		}
		second = seq
		return nil
	})
	var got []uint64
	if _, err := b.Replay(t.Context(), r, 0, second, func(ev *wire.Event) error {
		got = append(got, ev.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{first, second}; !slices.Equal(got, want) {
		t.Errorf("the room holds %v, want the event twice: %v", got, want)
	}
}
