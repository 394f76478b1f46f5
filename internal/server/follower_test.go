package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// follower is a client that behaves as the protocol asks: it follows one
// room from one node and, when the node closes it, reconnects to another
// node (at once after 4012, after a short pause otherwise) and resumes
// with since and epoch. It checks that the events' counters (the n of
// publisher.event) run 0, 1, 2, ... with neither gap nor duplicate. Its
// goroutine is stopped by the context it was started with; wait for it
// with stopped.
type follower struct {
	urls func() []string // the nodes' URLs now
	room string
	done chan struct{}

	mu         sync.Mutex
	node       int // index in urls() of the node it is on; -1 between connections
	subscribed bool
	seq        uint64 // the last event's seq, or the first response's
	epoch      string
	next       int      // the counter expected next
	bad        []string // gaps, duplicates, resumes that lost events
	atOnce     int      // reconnections after a 4012
}

// startFollower starts a follower of room on urls()[first].
func startFollower(ctx context.Context, urls func() []string, first int, room string) *follower {
	f := &follower{urls: urls, room: room, node: -1, done: make(chan struct{})}
	go f.run(ctx, first)
	return f
}

func (f *follower) run(ctx context.Context, node int) {
	defer close(f.done)
	for ctx.Err() == nil {
		err := f.session(ctx, node)
		f.mu.Lock()
		f.node = -1
		f.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if client.ReconnectAtOnce(err) {
			f.mu.Lock()
			f.atOnce++
			f.mu.Unlock()
		} else {
			select { // a failure: a pause, as a client's backoff
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		// Any other node, as a load balancer would send it.
		if n := len(f.urls()); n > 1 {
			node = (node + 1 + rand.IntN(n-1)) % n
		}
	}
}

// session follows the room on one node until the connection ends.
func (f *follower) session(ctx context.Context, node int) error {
	c, err := client.Dial(ctx, f.urls()[node], nil)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	defer c.Close()
	f.mu.Lock()
	data := client.SubscribeData{Channel: f.room}
	if f.subscribed {
		seq := f.seq
		data.Since, data.Epoch = &seq, f.epoch
	}
	f.node = node
	f.mu.Unlock()
	if err := c.Request(wire.EventSubscribe, "s", data); err != nil {
		return err
	}
	for {
		m, err := c.Read(time.Time{})
		if err != nil {
			return err
		}
		f.handle(m)
	}
}

func (f *follower) handle(m wire.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch m.Type {
	case wire.TypeEvent:
		if m.Room != f.room {
			return // server.draining
		}
		var d struct{ N int }
		if err := json.Unmarshal(m.Data, &d); err != nil || d.N != f.next {
			f.bad = append(f.bad, fmt.Sprintf("event seq %d has n %d, want %d (err %v)", m.Seq, d.N, f.next, err))
		}
		f.next = d.N + 1
		f.seq = m.Seq
	case wire.TypeResponse:
		var r wire.SubscribeResult
		if err := json.Unmarshal(m.Data, &r); err != nil {
			f.bad = append(f.bad, fmt.Sprintf("response %s: %v", m.Data, err))
			return
		}
		if f.subscribed && !r.Recovered {
			f.bad = append(f.bad, fmt.Sprintf("a resume was not recovered: %s", m.Data))
		}
		if !f.subscribed {
			f.seq = r.Seq
		}
		f.subscribed, f.epoch = true, r.Epoch
	case wire.TypeError:
		f.bad = append(f.bad, fmt.Sprintf("error: %s", m.Data))
	}
}

// state is what the follower has seen: the node it is on (-1 between
// connections), whether its first subscribe was answered, the counter it
// expects next and the faults it found.
func (f *follower) state() (node int, subscribed bool, next int, bad []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.node, f.subscribed, f.next, append([]string(nil), f.bad...)
}

// stopped waits for the follower's goroutine once its context is done.
func (f *follower) stopped(t testing.TB) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a follower did not stop")
	}
}
