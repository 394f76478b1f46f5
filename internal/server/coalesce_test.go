package server_test

import (
	"encoding/json"
	"testing"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// Clients of a room the node has not seen, resuming at once from one
// position (their node died), each get every missed event once, in order,
// recovered, and then live events; the node reads the missed events from
// the stream about once, not once per client.
func TestManyColdResumesFromOnePosition(t *testing.T) {
	srv := startNode(t, nil, nil)
	pub := newPublisher(t, srv.NATSURL())
	const room, clients = "pool:takeover", 20
	since := pub.event(room, "e", 0)
	missed := make([]uint64, 0, 200)
	for i := range 200 {
		missed = append(missed, pub.event(room, "e", 1+i))
	}
	conns := make([]*client.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, srv)
	}
	before := streamRequests(t, srv)
	// The requests go out together; the node handles them concurrently
	// while the answers wait in the sockets to be read one client at a time.
	for _, c := range conns {
		s := since
		if err := c.Subscribe("sub-"+room, room, &s); err != nil {
			t.Fatal(err)
		}
	}
	results := make([]wire.SubscribeResult, clients)
	replays := make([][]wire.Message, clients)
	for i, c := range conns {
		results[i], replays[i] = readUntilResponse(t, c, "sub-"+room)
	}
	requests := streamRequests(t, srv) - before
	for i := range conns {
		res, replay := results[i], replays[i]
		if !res.Recovered || res.Replayed != len(missed) || res.Seq != missed[len(missed)-1] || len(replay) != len(missed) {
			t.Fatalf("client %d: response %+v with %d events, want recovered, %d replayed, seq %d", i, res, len(replay), len(missed), missed[len(missed)-1])
		}
		for k, m := range replay {
			if m.Seq != missed[k] || counterOf(t, m) != 1+k {
				t.Fatalf("client %d, event %d: seq %d n %d, want seq %d n %d", i, k, m.Seq, counterOf(t, m), missed[k], 1+k)
			}
		}
	}
	if requests > clients/2 {
		t.Fatalf("%v stream requests for %d resumes of one room from one position; want them to share reads", requests, clients)
	}
	next := pub.event(room, "e", 201)
	for i, c := range conns {
		if m := readEvents(t, c, 1)[0]; m.Seq != next {
			t.Fatalf("client %d live after resume: seq %d, want %d", i, m.Seq, next)
		}
	}
}

// readUntilResponse reads the events that come before the response to
// request id, and the response's data.
func readUntilResponse(t *testing.T, c *client.Conn, id string) (wire.SubscribeResult, []wire.Message) {
	t.Helper()
	var events []wire.Message
	for {
		m := read(t, c)
		switch {
		case m.Type == wire.TypeEvent:
			events = append(events, m)
		case m.Type == wire.TypeResponse && m.ID == id:
			var r wire.SubscribeResult
			if err := json.Unmarshal(m.Data, &r); err != nil {
				t.Fatalf("response %s: %v", m.Data, err)
			}
			return r, events
		default:
			t.Fatalf("got %+v (data %s)", m, m.Data)
		}
	}
}
