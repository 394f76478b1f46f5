package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A node rebalancing the cluster sheds tail's connection (4012): tail
// reconnects at once, without its backoff, to the next --url, resumes,
// and prints every event once, in order, those published around the move
// included. The node is kept over its share by a crowd that returns to it
// whenever shed, so it goes on shedding at random until tail is picked.
func TestTailReconnectsAtOnceAfterARebalance(t *testing.T) {
	ns := natstest.RunServer(t)
	named := func(name string) func(*config.Serve) { return func(c *config.Serve) { c.ServerName = name } }
	a := servertest.Start(t, ns, named("a"))
	b := servertest.Start(t, ns, named("b"))
	js, err := jetstream.New(natstest.Connect(t, ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	publish := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "roomcast.rooms.pool.rb", Data: []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d}}`, n))}); err != nil {
			t.Fatal(err)
		}
		n++
	}

	tail := runBackground(t, "tail", "--json", "--url", servertest.WSURL(a), "--url", servertest.WSURL(b), "pool:rb")
	out, errb := &tail.out, &tail.errb
	waitOutput(t, errb, "subscribed to pool:rb")
	publish()
	waitOutput(t, out, `"n":0`)

	stopCrowd := servertest.Crowd(t, servertest.WSURL(a), 20)
	// Events go on while a sheds, until tail has moved.
	natstest.WaitFor(t, 60*time.Second, func() error {
		publish()
		if !strings.Contains(errb.String(), "4012") {
			return fmt.Errorf("tail not shed yet")
		}
		return nil
	})
	stopCrowd()
	for range 3 {
		publish()
	}
	waitOutput(t, out, fmt.Sprintf(`"n":%d}`, n-1))
	// A resume's events come before its response, so tail may print the
	// last event before it reports the second subscribe: wait for both.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := strings.Count(errb.String(), "subscribed to pool:rb"); got < 2 {
			return fmt.Errorf("tail subscribed %d times so far:\n%s", got, errb.String())
		}
		return nil
	})
	tail.stop()

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, line := range lines {
		var m wire.Message
		var d struct{ N int }
		if err := json.Unmarshal([]byte(line), &m); err != nil || json.Unmarshal(m.Data, &d) != nil || d.N != i {
			t.Fatalf("line %d is %q, want event n=%d: a gap or a duplicate", i, line, i)
		}
	}
	if len(lines) != n {
		t.Fatalf("tail printed %d events of %d", len(lines), n)
	}
	if !strings.Contains(errb.String(), "reconnecting now") || strings.Contains(errb.String(), "reconnecting in") {
		t.Fatalf("tail's messages: want a 4012 and no backoff:\n%s", errb.String())
	}
	if got := strings.Count(errb.String(), "subscribed to pool:rb"); got != 2 {
		t.Fatalf("tail subscribed %d times, want 2 (once on a, once after the move):\n%s", got, errb.String())
	}
}
