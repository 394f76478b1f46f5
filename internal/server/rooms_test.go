package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/edge"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// listRooms sends a rooms request and returns its response's data.
func listRooms(t *testing.T, c *client.Conn, id string) wire.RoomsResult {
	t.Helper()
	if err := c.Request(wire.EventRooms, id, nil); err != nil {
		t.Fatal(err)
	}
	m := read(t, c)
	var res wire.RoomsResult
	if m.Type != wire.TypeResponse || m.Event != wire.EventRooms || m.ID != id {
		t.Fatalf("rooms: got %+v (data %s)", m, m.Data)
	}
	if err := json.Unmarshal(m.Data, &res); err != nil {
		t.Fatalf("rooms data %s: %v", m.Data, err)
	}
	return res
}

func names(res wire.RoomsResult) []string {
	out := make([]string, len(res.Rooms))
	for i, r := range res.Rooms {
		out[i] = r.Room
	}
	return out
}

// A rooms request lists the rooms with recent events, newest first, each
// with its latest event's seq and time, and only those the token may
// read: the same permissions as a subscribe.
func TestRoomsListsOnlyReadableRooms(t *testing.T) {
	srv, signer := authNode(t, nil)
	pub := newPublisher(t, srv.NATSURL())
	pub.event("pool:p1", "worker.status_changed", 1)
	pub.event("chat:x", "said", 1)
	pub.event("pool:p2", "worker.status_changed", 1)
	p1 := pub.event("pool:p1", "worker.status_changed", 2)
	w1 := pub.event("workflow:w1", "workflow.started", 1)

	tok := mint(t, signer, time.Hour, "pool:read:p1", "workflow:read")
	c := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + tok}})
	res := listRooms(t, c, "r1")
	if got := fmt.Sprint(names(res)); got != "[workflow:w1 pool:p1]" || res.Truncated {
		t.Fatalf("rooms for pool:read:p1 + workflow:read: %s truncated=%v, want [workflow:w1 pool:p1]", got, res.Truncated)
	}
	if res.Rooms[0].Seq != w1 || res.Rooms[1].Seq != p1 {
		t.Fatalf("seqs %+v, want %d and %d", res.Rooms, w1, p1)
	}
	for _, r := range res.Rooms {
		ts, err := time.Parse(time.RFC3339, r.TS)
		if err != nil || time.Since(ts) > time.Minute {
			t.Fatalf("ts %q of %s: %v", r.TS, r.Room, err)
		}
	}

	admin := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + mint(t, signer, time.Hour, "admin")}})
	if got := fmt.Sprint(names(listRooms(t, admin, "r2"))); got != "[workflow:w1 pool:p1 pool:p2 chat:x]" {
		t.Fatalf("rooms for admin: %s", got)
	}
	none := dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + mint(t, signer, time.Hour, "adapter:read")}})
	if res := listRooms(t, none, "r3"); len(res.Rooms) != 0 {
		t.Fatalf("rooms for adapter:read: %+v", res)
	}
}

// Before a token, the list is refused as a subscribe is; malformed
// requests get BAD_REQUEST and the connection goes on.
func TestRoomsRefusesBadRequests(t *testing.T) {
	srv, signer := authNode(t, nil)
	c := dial(t, srv)
	if err := c.Request(wire.EventRooms, "early", nil); err != nil {
		t.Fatal(err)
	}
	expectError(t, c, "early", wire.CodeUnauthenticated)

	c = dialWith(t, srv, "", http.Header{"Authorization": {"Bearer " + mint(t, signer, time.Hour, "admin")}})
	for id, raw := range map[string]string{
		"channel": `{"type":"request","event":"rooms","id":"channel","data":{"channel":"pool:p1"}}`,
		"since":   `{"type":"request","event":"rooms","id":"since","data":{"since":3}}`,
		"array":   `{"type":"request","event":"rooms","id":"array","data":[1]}`,
	} {
		if err := c.SendRaw([]byte(raw)); err != nil {
			t.Fatal(err)
		}
		expectError(t, c, id, wire.CodeBadRequest)
	}
	if res := listRooms(t, c, "ok"); len(res.Rooms) != 0 || res.Truncated {
		t.Fatalf("an empty stream lists %+v", res)
	}
}

// The answer is bounded: at most edge.MaxListedRooms rooms, the newest,
// marked truncated; past the 1,024 rooms one multi_last answers, the list
// is read from the window's events instead, and still right.
func TestRoomsAnswerIsBounded(t *testing.T) {
	srv := startNode(t, nil, nil)
	nc := natstest.Connect(t, srv.NATSURL())
	const n = 1100
	publishRooms(t, nc, n)
	res := listRooms(t, dial(t, srv), "all")
	if len(res.Rooms) != edge.MaxListedRooms || !res.Truncated {
		t.Fatalf("%d rooms stored: listed %d, truncated=%v; want %d and true", n, len(res.Rooms), res.Truncated, edge.MaxListedRooms)
	}
	for i, r := range res.Rooms {
		if want := fmt.Sprintf("pool:r%d", n-1-i); r.Room != want {
			t.Fatalf("room %d is %s, want %s (newest first)", i, r.Room, want)
		}
	}
}

// publishRooms stores one event in each of n rooms pool:r0..., in order,
// each acknowledged before the next.
func publishRooms(t *testing.T, nc *nats.Conn, n int) {
	t.Helper()
	pub := publisherOn(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		// One at a time keeps the stream's order the rooms' order (the
		// test's "newest first" depends on it).
		if _, err := pub.js.Publish(ctx, fmt.Sprintf("roomcast.rooms.pool.r%d", i), []byte(`{"event":"x"}`)); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}
