package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

func startNode(t testing.TB, ns *natsserver.Server, edit func(*config.Serve)) *server.Server {
	t.Helper()
	return servertest.Start(t, ns, edit)
}

func wsURL(srv *server.Server) string { return servertest.WSURL(srv) }

// dial connects a client to srv, closed on cleanup.
func dial(t testing.TB, srv *server.Server) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// read returns the next message within a few seconds.
func read(t testing.TB, c *client.Conn) wire.Message {
	t.Helper()
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// subscribe subscribes c to room and returns the response's data; events
// that come before the response are returned too.
func subscribe(t testing.TB, c *client.Conn, room string, since *uint64) (wire.SubscribeResult, []wire.Message) {
	t.Helper()
	id := "sub-" + room
	if err := c.Subscribe(id, room, since); err != nil {
		t.Fatalf("send subscribe: %v", err)
	}
	var before []wire.Message
	for {
		m := read(t, c)
		switch {
		case m.Type == wire.TypeResponse && m.ID == id:
			var r wire.SubscribeResult
			if err := json.Unmarshal(m.Data, &r); err != nil || r.Status != "subscribed" || r.Channel != room || wire.CheckEpoch(r.Epoch) != nil {
				t.Fatalf("subscribe response %s: %+v (%v)", m.Data, r, err)
			}
			return r, before
		case m.Type == wire.TypeEvent:
			before = append(before, m)
		default:
			t.Fatalf("subscribe %s: got %+v (data %s)", room, m, m.Data)
		}
	}
}

// subscribeWhenAvailable subscribes as clients do on a cluster that may
// still be electing the stream's leader: an UNAVAILABLE answer is retried.
func subscribeWhenAvailable(t testing.TB, c *client.Conn, room string) wire.SubscribeResult {
	t.Helper()
	id := "sub-" + room
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := c.Subscribe(id, room, nil); err != nil {
			t.Fatalf("send subscribe: %v", err)
		}
		m := read(t, c)
		switch {
		case m.Type == wire.TypeResponse && m.ID == id:
			var r wire.SubscribeResult
			if err := json.Unmarshal(m.Data, &r); err != nil || r.Status != "subscribed" {
				t.Fatalf("subscribe response %s: %+v (%v)", m.Data, r, err)
			}
			return r
		case m.Type == wire.TypeError && strings.Contains(string(m.Data), wire.CodeUnavailable) && time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond) // a client's back-off before it asks again
		default:
			t.Fatalf("subscribe %s: got %+v (data %s)", room, m, m.Data)
		}
	}
}

// expectError reads the next message and checks it is an error with code
// for the request id.
func expectError(t testing.TB, c *client.Conn, id, code string) {
	t.Helper()
	m := read(t, c)
	if m.Type != wire.TypeError {
		t.Fatalf("want error %s, got %+v (data %s)", code, m, m.Data)
	}
	var e wire.ErrorData
	if err := json.Unmarshal(m.Data, &e); err != nil {
		t.Fatalf("error data %s: %v", m.Data, err)
	}
	if e.Code != code || m.ID != id || e.Message == "" {
		t.Fatalf("want error %s for id %q, got id %q %+v", code, id, m.ID, e)
	}
}

// expectClose reads until the server closes and checks the code.
func expectClose(t testing.TB, c *client.Conn, code int) []wire.Message {
	t.Helper()
	var got []wire.Message
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := c.Read(deadline)
		if err == nil {
			got = append(got, m)
			continue
		}
		ce, ok := err.(*client.CloseError)
		if !ok {
			t.Fatalf("want close %d, got error %v after %d messages", code, err, len(got))
		}
		if int(ce.Code) != code {
			t.Fatalf("want close %d, got %d %q", code, ce.Code, ce.Reason)
		}
		return got
	}
}

// publisher publishes worker events the way workers do: JetStream publish.
type publisher struct {
	t  testing.TB
	js jetstream.JetStream
}

func newPublisher(t testing.TB, natsURL string) *publisher {
	return publisherOn(t, natstest.Connect(t, natsURL))
}

// publisherOn publishes through an open connection.
func publisherOn(t testing.TB, nc *nats.Conn) *publisher {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &publisher{t: t, js: js}
}

// raw stores payload as an event of room and returns its sequence.
func (p *publisher) raw(room string, payload []byte) uint64 {
	p.t.Helper()
	r := wire.MustRoom(room)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, &nats.Msg{Subject: "roomcast.rooms." + r.Token(), Data: payload})
	if err != nil {
		p.t.Fatalf("publish to %s: %v", room, err)
	}
	return ack.Sequence
}

// event stores a worker event with a counter n in its data.
func (p *publisher) event(room, name string, n int) uint64 {
	p.t.Helper()
	return p.raw(room, []byte(fmt.Sprintf(`{"event":%q,"data":{"n":%d,"room":%q}}`, name, n, room)))
}

// counterOf reads the n of an event's data.
func counterOf(t testing.TB, m wire.Message) int {
	t.Helper()
	var d struct{ N int }
	if err := json.Unmarshal(m.Data, &d); err != nil {
		t.Fatalf("event data %s: %v", m.Data, err)
	}
	return d.N
}

// readEvents reads n events, failing on anything else.
func readEvents(t testing.TB, c *client.Conn, n int) []wire.Message {
	t.Helper()
	out := make([]wire.Message, 0, n)
	for len(out) < n {
		m := read(t, c)
		if m.Type != wire.TypeEvent {
			t.Fatalf("want event %d of %d, got %+v (data %s)", len(out)+1, n, m, m.Data)
		}
		out = append(out, m)
	}
	return out
}
