package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// tail --since with the --epoch it printed, after an operator recreated the
// stream (sequences start at 1 again), prints every event of the new
// stream, the ones at or below since included, and says so.
func TestTailWithAnEpochOfARecreatedStream(t *testing.T) {
	ns := natstest.RunServer(t)
	srv := servertest.Start(t, ns, nil)
	publish := func(n int) {
		t.Helper()
		if code, _, stderr := runCmd(t.Context(), "", "publish", "--nats", ns.ClientURL(), "pool:ep", "e", fmt.Sprintf(`{"n":%d}`, n)); code != 0 {
			t.Fatalf("publish %d: %s", n, stderr)
		}
	}
	c, err := client.Dial(t.Context(), servertest.WSURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe("s", "pool:ep", nil); err != nil {
		t.Fatal(err)
	}
	var old wire.SubscribeResult
	if m, err := c.Read(time.Now().Add(10 * time.Second)); err != nil || json.Unmarshal(m.Data, &old) != nil || old.Epoch == "" {
		t.Fatalf("subscribe response %+v: %v", m, err)
	}
	publish(0)
	publish(1)

	js, err := jetstream.New(natstest.Connect(t, ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	natstest.RecreateStream(t, js, bus.DefaultStream, nil)
	for _, err := c.Read(time.Now().Add(20 * time.Second)); ; _, err = c.Read(time.Now().Add(20 * time.Second)) {
		var ce *client.CloseError
		if errors.As(err, &ce) && ce.Code == wire.CloseStreamReset {
			break
		}
		if err != nil {
			t.Fatalf("the node did not close the old stream's client with 4010: %v", err)
		}
	}
	for i := 10; i < 13; i++ {
		publish(i) // seqs 1, 2 and 3 of the new stream
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb servertest.SyncBuffer
	done := make(chan int)
	go func() {
		done <- runWith(ctx, &out, &errb, "", "tail", "--json", "--url", servertest.WSURL(srv), "--since", "2", "--epoch", old.Epoch, "pool:ep")
	}()
	waitOutput(t, &errb, "stream was recreated")
	waitOutput(t, &out, `"n":12`)
	cancel()
	<-done
	if got := strings.Count(out.String(), "\n"); got != 3 || !strings.Contains(out.String(), `"n":10`) {
		t.Fatalf("tail printed %d lines, want the new stream's 3:\n%s", got, out.String())
	}
	if strings.Contains(errb.String(), "epoch "+old.Epoch+")") {
		t.Fatalf("the response named the old epoch: %s", errb.String())
	}
}
