package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// TestContainerBroadcastAndDrain runs one edge node in a container and
// checks the path a pool worker's event takes to a monitor, the operations
// endpoints, and a graceful stop: a WebSocket client subscribes to pool:it,
// an event published to JetStream through the mapped NATS port reaches it
// with the stored sequence, and `docker stop` (SIGTERM) makes the node send
// server.draining, close with 1001 and exit with status 0.
func TestContainerBroadcastAndDrain(t *testing.T) {
	start := time.Now()
	image := requireImage(t)
	t.Logf("image %s ready after %v", image, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Workers outside the container need the publisher password on a NATS
	// port beyond its loopback (issue 17).
	const workerPassword = "integration-worker-password-0123"
	n := startNode(ctx, t, image, map[string]string{"ROOMCAST_NATS_PUBLISHER_PASSWORD": workerPassword},
		"--listen", "0.0.0.0:8690",
		"--admin-listen", "0.0.0.0:9090",
		"--nats-listen", "0.0.0.0:4222",
		"--data-dir", "/data",
		"--allow-anonymous",
		"--log-format", "json",
		"--drain-timeout", "5s",
	)
	t.Logf("node ready after %v: ws %s, admin %s, nats %s", time.Since(start).Round(time.Millisecond), n.wsURL, n.adminURL, n.natsURL)

	for _, path := range []string{"/healthz", "/readyz"} {
		code, body, err := get(ctx, n.adminURL+path)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: status %d, body %q, err %v; want 200", path, code, body, err)
		}
	}

	c, err := client.Dial(ctx, n.wsURL, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", n.wsURL, err)
	}
	t.Cleanup(func() { _ = c.Close() })

	const room = "pool:it"
	if err := c.Subscribe("sub-1", room, nil); err != nil {
		t.Fatalf("send subscribe: %v", err)
	}
	resp := read(t, c, 10*time.Second)
	if resp.Type != wire.TypeResponse || resp.ID != "sub-1" {
		t.Fatalf("want the response to sub-1, got %+v (data %s)", resp, resp.Data)
	}
	var sub struct {
		Status  string `json:"status"`
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal(resp.Data, &sub); err != nil || sub.Status != "subscribed" || sub.Channel != room {
		t.Fatalf("subscribe response data %s (err %v), want status subscribed, channel %s", resp.Data, err, room)
	}

	eventually(t, 10*time.Second, "/metrics counts the client", func() error {
		code, body, err := get(ctx, n.adminURL+"/metrics")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("status %d", code)
		}
		return hasLine(body, `websocket_connections{server="roomcast"} 1`)
	})

	// A pool worker's publish, through the mapped NATS port.
	if anon, err := nats.Connect(n.natsURL, nats.Timeout(10*time.Second), nats.IgnoreDiscoveredServers()); err == nil {
		anon.Close()
		t.Fatal("a worker without the password connected to the node's NATS")
	}
	nc, err := nats.Connect(n.natsURL, nats.Name("integration test worker"), nats.UserInfo("publisher", workerPassword),
		nats.Timeout(10*time.Second), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatalf("connect to NATS at %s: %v", n.natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	payload := []byte(`{"event":"worker.status_changed","data":{"worker_id":"w1","status":"busy","pool_id":"it"}}`)
	msg := nats.NewMsg("roomcast.rooms.pool.it")
	msg.Data = payload
	msg.Header.Set(jetstream.MsgIDHeader, "integration-w1-busy")
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("JetStream publish: %v", err)
	}
	if ack.Stream != "ROOMCAST" || ack.Sequence == 0 || ack.Duplicate {
		t.Fatalf("publish ack %+v, want a new message in stream ROOMCAST", ack)
	}

	ev := read(t, c, 10*time.Second)
	if ev.Type != wire.TypeEvent || ev.Event != "worker.status_changed" || ev.Room != room {
		t.Fatalf("want event worker.status_changed in %s, got %+v (data %s)", room, ev, ev.Data)
	}
	if ev.Seq != ack.Sequence {
		t.Errorf("event seq %d, want the publish ack's sequence %d", ev.Seq, ack.Sequence)
	}
	if ts, err := time.Parse(time.RFC3339Nano, ev.TS); err != nil || ts.IsZero() {
		t.Errorf("event ts %q: want an RFC 3339 time (%v)", ev.TS, err)
	}
	assertJSONEqual(t, "event data", ev.Data, []byte(`{"worker_id":"w1","status":"busy","pool_id":"it"}`))

	// docker stop: SIGTERM, then SIGKILL only if the node is not gone
	// within the timeout (well above --drain-timeout).
	stopStart := time.Now()
	stopped := make(chan error, 1)
	go func() {
		timeout := 30 * time.Second
		stopped <- n.ctr.Stop(ctx, &timeout)
	}()
	drain := read(t, c, 15*time.Second)
	if drain.Type != wire.TypeEvent || drain.Event != wire.EventDraining {
		t.Fatalf("after SIGTERM want event %s, got %+v", wire.EventDraining, drain)
	}
	if m, err := c.Read(time.Now().Add(15 * time.Second)); !isClose(err, ws.StatusGoingAway) {
		t.Fatalf("after %s want a close with code 1001, got message %+v, err %v", wire.EventDraining, m, err)
	}
	// Read has answered the close frame; end the socket as a browser does,
	// or the node waits out its close grace for our EOF.
	_ = c.NetConn().Close()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop container: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("container did not stop: %v", ctx.Err())
	}
	info, err := n.ctr.Inspect(ctx)
	if err != nil {
		t.Fatalf("inspect stopped container: %v", err)
	}
	if st := info.State; st.Running || st.ExitCode != 0 || st.OOMKilled {
		t.Fatalf("container state after stop: running %v, exit code %d, OOM killed %v; want exited with 0",
			st.Running, st.ExitCode, st.OOMKilled)
	}
	t.Logf("node drained and exited with 0 in %v", time.Since(stopStart).Round(time.Millisecond))
}

// read returns the client's next message, failing the test if none comes
// within timeout or the connection ends.
func read(t *testing.T, c *client.Conn, timeout time.Duration) wire.Message {
	t.Helper()
	m, err := c.Read(time.Now().Add(timeout))
	if err != nil {
		t.Fatalf("read from WebSocket: %v", err)
	}
	return m
}

// isClose reports whether err is a close from the server with code.
func isClose(err error, code ws.StatusCode) bool {
	var ce *client.CloseError
	return errors.As(err, &ce) && ce.Code == code
}

// assertJSONEqual compares two JSON documents by value.
func assertJSONEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: %s is not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: bad expectation %s: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s = %s, want %s", what, bytes.TrimSpace(got), want)
	}
}
