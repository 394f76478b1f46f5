package conformance_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The stream and subjects of a node with the default settings
// (docs/protocol.md section 2).
const (
	streamName  = "ROOMCAST"
	roomSubject = "roomcast.rooms."
)

// publisher publishes numbered events ({"n": i}) to one room, as a pool
// worker does: straight to NATS, whether any node is up or not.
type publisher struct {
	t    testing.TB
	js   jetstream.JetStream
	room string
	// next is the n of the next event. One goroutine publishes at a time
	// (the test's, or flow's); others read it.
	next atomic.Int64

	// Owned by the test's goroutine: flow's, while it runs.
	stop chan struct{}
	done chan struct{}
}

func newPublisher(t testing.TB, ns *server.Server, room string) *publisher {
	t.Helper()
	nc := natstest.Connect(t, ns.ClientURL(), nats.MaxReconnects(-1))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &publisher{t: t, js: js, room: room}
}

// publish stores one event with n and the data fields of extra; the
// first node may still be creating the stream, so it retries a while.
func (p *publisher) publish(extra map[string]any) int {
	p.t.Helper()
	return p.publishKeyed(extra, "", false)
}

// publishKeyed is publish with the key headers (docs/protocol.md section
// 2, "Keys"): the event is the state of key, or ends it; "" for none.
func (p *publisher) publishKeyed(extra map[string]any, key string, deleted bool) int {
	p.t.Helper()
	n := int(p.next.Load())
	data := map[string]any{"n": n}
	for k, v := range extra {
		data[k] = v
	}
	body, err := json.Marshal(map[string]any{"event": "test.numbered", "data": data})
	if err != nil {
		p.t.Errorf("encode event n=%d: %v", n, err)
		return -1
	}
	msg := nats.NewMsg(roomSubject + strings.Replace(p.room, ":", ".", 1))
	msg.Data = body
	if key != "" {
		msg.Header.Set(wire.HeaderKey, key)
	}
	if deleted {
		msg.Header.Set(wire.HeaderKeyDeleted, "true")
	}
	subject := msg.Subject
	deadline := time.Now().Add(nodeWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = p.js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.t.Errorf("publish n=%d to %s: %v", n, subject, err)
			return -1
		}
		time.Sleep(20 * time.Millisecond) // the stream is being created
	}
	p.next.Add(1)
	return n
}

// publishN publishes count events.
func (p *publisher) publishN(count int) {
	p.t.Helper()
	for range count {
		if p.publish(nil) < 0 {
			p.t.FailNow()
		}
	}
}

// flow publishes an event every interval in the background until
// stopFlow; the scenario breaks things meanwhile.
func (p *publisher) flow(interval time.Duration) {
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if p.publish(nil) < 0 {
					return // reported
				}
			}
		}
	}(p.stop, p.done)
	p.t.Cleanup(func() { p.stopFlow() })
}

// stopFlow stops the background publishing and returns how many events
// were published in all.
func (p *publisher) stopFlow() int {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
	return p.published()
}

// published is how many events were published so far.
func (p *publisher) published() int { return int(p.next.Load()) }

// purge removes every event from the stream, as retention would.
func (p *publisher) purge() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.js.Stream(ctx, streamName)
	if err != nil {
		p.t.Fatalf("stream %s: %v", streamName, err)
	}
	if err := s.Purge(ctx); err != nil {
		p.t.Fatalf("purge %s: %v", streamName, err)
	}
}
