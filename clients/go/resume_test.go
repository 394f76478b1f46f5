package roomcast_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	roomcast "github.com/roomcast/roomcast/clients/go"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// publishWhile publishes numbered events to room every few milliseconds
// on a goroutine of its own until stop, which returns how many it
// published.
func publishWhile(t *testing.T, p *publisher, room string) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			p.publish(room, "")
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
		return p.n
	}
	t.Cleanup(func() { stop() })
	return stop
}

// A node restarted (drained: 1001, then a new node on the same address
// and the same NATS) while a publisher publishes: the client reconnects
// at once after the drain, backs off while the address refuses, resumes,
// and hands over every event once, in order.
func TestResumesAcrossANodeRestart(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	a := servertest.Start(t, ns, nil)
	addr := a.WSAddr()
	const room = "pool:restart"
	f := follow(t, roomcast.Options{URLs: []string{"ws://" + addr + "/ws"}, BackoffMax: time.Second}, roomcast.SubscribeOptions{}, room)
	f.waitSubscribed(t, 1)
	pub := newPublisher(t, ns)
	stop := publishWhile(t, pub, room)
	f.waitEvents(t, 5)

	a.Shutdown()
	drained := f.waitNotice(t, roomcast.Disconnected, 1)
	if drained.Code != 1001 || drained.Retry >= 100*time.Millisecond {
		t.Fatalf("after the drain: %+v; want 1001 and an attempt within 100 ms", drained)
	}
	if len(f.notices(roomcast.Draining)) != 1 {
		t.Fatal("server.draining was not told")
	}
	f.waitNotice(t, roomcast.Disconnected, 2) // the address refuses meanwhile
	servertest.Start(t, ns, func(c *config.Serve) { c.Listen = addr })
	again := f.waitSubscribed(t, 2)
	if !again.Resumed || !again.Recovered {
		t.Fatalf("the resume: %+v; want resumed and recovered", again)
	}
	seen := len(f.events())
	waitFor(t, "events after the restart", func() error {
		if got := len(f.events()); got < seen+5 {
			return fmt.Errorf("%d events", got)
		}
		return nil
	})
	n := stop()
	f.waitEvents(t, n)
	checkOnceInOrder(t, f.events(), n)
}

// A node rebalancing the cluster sheds the client (4012): it reconnects
// at once, to the next URL, and resumes, every event once, in order. A
// crowd that returns to the node whenever shed keeps it over its share
// until the client is picked.
func TestReconnectsAtOnceAfterARebalance(t *testing.T) {
	t.Parallel()
	ns := natstest.RunServer(t)
	named := func(name string) func(*config.Serve) { return func(c *config.Serve) { c.ServerName = name } }
	a := servertest.Start(t, ns, named("a"))
	b := servertest.Start(t, ns, named("b"))
	const room = "pool:rebalance"
	f := follow(t, roomcast.Options{URLs: []string{servertest.WSURL(a), servertest.WSURL(b)}}, roomcast.SubscribeOptions{}, room)
	f.waitSubscribed(t, 1)
	pub := newPublisher(t, ns)
	stop := publishWhile(t, pub, room)

	stopCrowd := servertest.Crowd(t, servertest.WSURL(a), 20)
	shed := f.waitNotice(t, roomcast.Disconnected, 1)
	stopCrowd()
	if shed.Code != 4012 || shed.Retry >= 100*time.Millisecond || shed.URL != servertest.WSURL(a) {
		t.Fatalf("shed: %+v; want 4012 on a and an attempt within 100 ms", shed)
	}
	if s := f.waitSubscribed(t, 2); !s.Resumed || !s.Recovered {
		t.Fatalf("the resume: %+v", s)
	}
	if c := f.waitNotice(t, roomcast.Connected, 2); c.URL != servertest.WSURL(b) {
		t.Fatalf("reconnected to %s, want the next URL %s", c.URL, servertest.WSURL(b))
	}
	seen := len(f.events())
	waitFor(t, "events after the move", func() error {
		if got := len(f.events()); got < seen+3 {
			return fmt.Errorf("%d events", got)
		}
		return nil
	})
	n := stop()
	f.waitEvents(t, n)
	checkOnceInOrder(t, f.events(), n)
}
