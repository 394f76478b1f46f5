package server_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/wire"
)

// Each malformed client message gets its error and the connection keeps
// working, for this client and for others.
func TestMalformedMessagesGetErrorsAndConnectionKeepsWorking(t *testing.T) {
	srv := startNode(t, nil, nil)
	pub := newPublisher(t, srv.NATSURL())
	c, other := dial(t, srv), dial(t, srv)
	subscribe(t, other, "pool:ok", nil)

	cases := []struct {
		name, msg, id, code string
	}{
		{"not JSON", `hello`, "", wire.CodeBadRequest},
		{"truncated", `{"type":"request"`, "", wire.CodeBadRequest},
		{"array", `[1,2]`, "", wire.CodeBadRequest},
		{"two objects", `{"type":"ping"}{"type":"ping"}`, "", wire.CodeBadRequest},
		{"no type", `{"id":"x1"}`, "x1", wire.CodeBadRequest},
		{"unknown type", `{"type":"shout","id":"x2"}`, "x2", wire.CodeBadRequest},
		{"unknown event", `{"type":"request","event":"dance","id":"x3"}`, "x3", wire.CodeBadRequest},
		{"no channel", `{"type":"request","event":"subscribe","id":"x4","data":{}}`, "x4", wire.CodeBadRequest},
		{"data not object", `{"type":"request","event":"subscribe","id":"x5","data":"pool:a"}`, "x5", wire.CodeBadRequest},
		{"bad since", `{"type":"request","event":"subscribe","id":"x6","data":{"channel":"pool:a","since":-1}}`, "x6", wire.CodeBadRequest},
		{"wildcard room", `{"type":"request","event":"subscribe","id":"x7","data":{"channel":"pool:>"}}`, "x7", wire.CodeInvalidRoom},
		{"dotted room", `{"type":"request","event":"subscribe","id":"x8","data":{"channel":"pool:a.b"}}`, "x8", wire.CodeInvalidRoom},
		{"no kind", `{"type":"request","event":"subscribe","id":"x9","data":{"channel":":a"}}`, "x9", wire.CodeInvalidRoom},
		{"epoch without since", `{"type":"request","event":"subscribe","id":"x11","data":{"channel":"pool:a","epoch":"abc-1"}}`, "x11", wire.CodeBadRequest},
		{"malformed epoch", `{"type":"request","event":"subscribe","id":"x12","data":{"channel":"pool:a","since":1,"epoch":"Not/An Epoch"}}`, "x12", wire.CodeBadRequest},
		{"conflate a string", `{"type":"request","event":"subscribe","id":"x13","data":{"channel":"pool:a","conflate":"yes"}}`, "x13", wire.CodeBadRequest},
		{"conflate a number", `{"type":"request","event":"subscribe","id":"x14","data":{"channel":"pool:a","conflate":1}}`, "x14", wire.CodeBadRequest},
		{"conflate on unsubscribe", `{"type":"request","event":"unsubscribe","id":"x15","data":{"channel":"pool:a","conflate":true}}`, "x15", wire.CodeBadRequest},
		{"auth without keys", `{"type":"request","event":"auth","id":"x10","data":{"token":"abc"}}`, "x10", wire.CodeBadRequest},
	}
	for _, tc := range cases {
		if err := c.SendRaw([]byte(tc.msg)); err != nil {
			t.Fatalf("%s: send: %v", tc.name, err)
		}
		expectError(t, c, tc.id, tc.code)
	}

	// A binary frame is refused the same way.
	if err := wsutil.WriteClientBinary(c.NetConn(), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	expectError(t, c, "", wire.CodeBadRequest)

	// The connection still works: ping, subscribe, events.
	if err := c.Send(wire.Message{Type: wire.TypePing, ID: "p1"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypePong || m.ID != "p1" {
		t.Fatalf("want pong p1, got %+v", m)
	}
	subscribe(t, c, "pool:ok", nil)
	seq := pub.event("pool:ok", "worker.status_changed", 1)
	if m := readEvents(t, c, 1)[0]; m.Seq != seq {
		t.Fatalf("event seq %d, want %d", m.Seq, seq)
	}
	if m := readEvents(t, other, 1)[0]; m.Seq != seq {
		t.Fatalf("other client: event seq %d, want %d", m.Seq, seq)
	}
}

// A payload on NATS that is not a valid event is dropped; the next good one
// is delivered with its own seq.
func TestBadNATSPayloadIsDroppedAndNextEventDelivered(t *testing.T) {
	srv := startNode(t, nil, nil)
	pub := newPublisher(t, srv.NATSURL())
	c := dial(t, srv)
	subscribe(t, c, "pool:bad", nil)
	for _, bad := range []string{`not json`, `{"data":{}}`, `{"event":"a b"}`, `{"event":"x","data":[1]}`, ``} {
		pub.raw("pool:bad", []byte(bad))
	}
	seq := pub.event("pool:bad", "worker.status_changed", 7)
	m := readEvents(t, c, 1)[0]
	if m.Seq != seq || counterOf(t, m) != 7 {
		t.Fatalf("got seq %d n %d, want seq %d n 7", m.Seq, counterOf(t, m), seq)
	}
}

// A frame over the inbound limit closes the connection with 1009, and the
// node goes on serving others.
func TestOversizeFrameClosesWith1009(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.MaxMessageSize = 1024 })
	c, other := dial(t, srv), dial(t, srv)
	big := bytes.Repeat([]byte("x"), 4096)
	if err := c.SendRaw(big); err != nil {
		t.Fatal(err)
	}
	expectClose(t, c, int(wire.CloseTooBig))

	// Fragments that add up to more than the limit count too.
	c2 := dial(t, srv)
	half := bytes.Repeat([]byte("y"), 800)
	for i, op := range []ws.OpCode{ws.OpText, ws.OpContinuation} {
		f := ws.NewFrame(op, i == 1, half)
		if err := ws.WriteFrame(c2.NetConn(), ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	expectClose(t, c2, int(wire.CloseTooBig))

	if err := other.Send(wire.Message{Type: wire.TypePing, ID: "still"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, other); m.Type != wire.TypePong {
		t.Fatalf("other client: %+v", m)
	}
}

// A connection may hold at most --max-subscriptions rooms.
func TestTooManySubscriptions(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.MaxSubscriptions = 2 })
	c := dial(t, srv)
	subscribe(t, c, "pool:one", nil)
	subscribe(t, c, "pool:two", nil)
	subscribe(t, c, "pool:one", nil) // subscribing again does not count twice
	if err := c.Subscribe("third", "pool:three", nil); err != nil {
		t.Fatal(err)
	}
	expectError(t, c, "third", wire.CodeTooManySubscriptions)
}

// A connection over --rate-limit gets RATE_LIMITED errors; one that goes on
// regardless is closed with 4029. Binary frames count too.
func TestRateLimit(t *testing.T) {
	// The burst is the subscription limit and a few: 11 here.
	srv := startNode(t, nil, func(c *config.Serve) { c.RateLimit, c.MaxSubscriptions = 5, 1 })
	c := dial(t, srv)
	for i := range 80 {
		var err error
		if i%4 == 3 {
			err = wsutil.WriteClientBinary(c.NetConn(), []byte{1})
		} else {
			err = c.Send(wire.Message{Type: wire.TypePing, ID: fmt.Sprint(i)})
		}
		if err != nil {
			break // closed by the server already
		}
	}
	pongs, limited, binary := 0, 0, 0
	for _, m := range expectClose(t, c, int(wire.CloseRateLimited)) {
		switch {
		case m.Type == wire.TypePong:
			pongs++
		case m.Type == wire.TypeError && strings.Contains(string(m.Data), wire.CodeRateLimited):
			limited++
		case m.Type == wire.TypeError && strings.Contains(string(m.Data), wire.CodeBadRequest):
			binary++ // a binary frame within the limit
		default:
			t.Fatalf("unexpected %+v %s", m, m.Data)
		}
	}
	// The burst of 11, and a token or two more if sending took a while;
	// binary frames outside the limit would make it many more.
	if answered := pongs + binary; answered < 11 || answered > 13 || limited == 0 {
		t.Fatalf("%d pongs, %d binary refusals and %d RATE_LIMITED errors before the close; want the burst of 11 answered, then refusals", pongs, binary, limited)
	}
}
