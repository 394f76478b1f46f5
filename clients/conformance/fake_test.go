package conformance_test

import (
	"encoding/json"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// badInput is what the fake node sends among real messages: each must be
// reported as bad_input and skipped, the connection kept.
var badInput = []struct {
	op      ws.OpCode
	payload string
}{
	{ws.OpText, `this is not JSON`},
	{ws.OpText, `{"type": "mystery", "data": {}}`},
	{ws.OpBinary, "\x01\x02\x03"},
	{ws.OpText, `[1, 2, 3]`},
	{ws.OpText, `{"type": "event", "event": "test.numbered", "room": "pool:fake", "seq": "seven", "data": {"n": 99}}`},
}

// fakeNode is a WebSocket server that speaks just enough of the protocol
// to answer subscribes as answer says, for what a real node does too
// rarely to be caught in the act or never does (bad input).
type fakeNode struct {
	ln     net.Listener
	wg     sync.WaitGroup
	answer func(f *fakeNode, c net.Conn, id, room string, nth int)
	// leave answers an unsubscribe; nil: with its response at once.
	leave func(f *fakeNode, c net.Conn, id, room string)

	subscribes atomic.Int32 // subscribes read, over every connection

	mu   sync.Mutex
	read []string // the requests read, over every connection: "event data", data as Go marshals it
}

// startFakeNode listens on loopback until the test ends; answer answers
// the nth (from 1) subscribe read.
func startFakeNode(t testing.TB, answer func(f *fakeNode, c net.Conn, id, room string, nth int)) *fakeNode {
	t.Helper()
	return startFakeNodeLeaving(t, answer, nil)
}

// startFakeNodeLeaving is startFakeNode with leave answering unsubscribes.
func startFakeNodeLeaving(t testing.TB, answer func(f *fakeNode, c net.Conn, id, room string, nth int),
	leave func(f *fakeNode, c net.Conn, id, room string)) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeNode{ln: ln, answer: answer, leave: leave}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		_ = ln.Close()
		f.wg.Wait()
	})
	return f
}

// URL is the fake node's WebSocket URL.
func (f *fakeNode) URL() string { return "ws://" + f.ln.Addr().String() + "/ws" }

func (f *fakeNode) accept() {
	defer f.wg.Done()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		conns = append(conns, c)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.serve(c)
		}()
	}
}

// serve answers subscribes with f.answer, unsubscribes, and pings; it
// closes the connection when the client did (or the fake sent a close,
// which the client answered).
func (f *fakeNode) serve(c net.Conn) {
	defer c.Close()
	if _, err := ws.Upgrade(c); err != nil {
		return
	}
	for {
		p, op, err := wsutil.ReadClientData(c)
		if err != nil {
			return
		}
		if op != ws.OpText {
			continue
		}
		var m struct {
			Type, Event, ID string
			Data            struct{ Channel string }
		}
		if json.Unmarshal(p, &m) != nil {
			continue
		}
		if m.Type == "request" {
			f.record(m.Event, p)
		}
		switch {
		case m.Type == "request" && m.Event == "unsubscribe" && f.leave != nil:
			f.leave(f, c, m.ID, m.Data.Channel)
		case m.Type == "request" && m.Event == "unsubscribe":
			f.send(c, ws.OpText, unsubscribed(m.ID, m.Data.Channel))
		case m.Type == "ping":
			f.send(c, ws.OpText, map[string]any{"type": "pong", "id": m.ID})
		case m.Type == "request" && m.Event == "auth":
			f.send(c, ws.OpText, map[string]any{"type": "response", "event": "auth", "id": m.ID,
				"data": map[string]any{"status": "authenticated", "user_id": "fake", "expires_at": "2099-01-01T00:00:00Z"}})
		case m.Type == "request" && m.Event == "subscribe":
			f.answer(f, c, m.ID, m.Data.Channel, int(f.subscribes.Add(1)))
		}
	}
}

// withBadInput answers a subscribe of room with the events n=0..2 (seq
// 1..3) replayed, its response, then the live event n=3 (seq 4), with the
// bad input spread among them. A real node never sends any of it: a frame
// that is not JSON, an unknown type, a binary frame, an event without a
// valid seq.
func withBadInput(f *fakeNode, c net.Conn, id, room string, _ int) {
	f.raw(c, badInput[0].op, badInput[0].payload)
	f.send(c, ws.OpText, fakeEvent(room, 1, 0))
	f.raw(c, badInput[1].op, badInput[1].payload)
	f.send(c, ws.OpText, fakeEvent(room, 2, 1))
	f.raw(c, badInput[2].op, badInput[2].payload)
	f.send(c, ws.OpText, fakeEvent(room, 3, 2))
	f.send(c, ws.OpText, fakeResponse(id, room, 3, 3))
	f.raw(c, badInput[3].op, badInput[3].payload)
	f.raw(c, badInput[4].op, badInput[4].payload)
	f.send(c, ws.OpText, fakeEvent(room, 4, 3))
}

// withLateUnavailable answers the first subscribe with its response, then
// fails it with UNAVAILABLE under the same id, as a node does when the
// catch-up after a response cannot read the room (docs/protocol.md
// section 3, "State"): the node left the room. A later subscribe is
// answered, and the event n=0 (seq 7) follows.
func withLateUnavailable(f *fakeNode, c net.Conn, id, room string, nth int) {
	f.send(c, ws.OpText, fakeResponse(id, room, 6, 0))
	if nth == 1 {
		f.send(c, ws.OpText, fakeError("subscribe", id, "UNAVAILABLE", "the room cannot be read now"))
		return
	}
	f.send(c, ws.OpText, fakeEvent(room, 7, 0))
}

// record keeps a request read: its event and its data, marshalled again
// so that the libraries' spellings of one object compare equal.
func (f *fakeNode) record(event string, p []byte) {
	var m struct{ Data map[string]any }
	_ = json.Unmarshal(p, &m)
	data, _ := json.Marshal(m.Data)
	f.mu.Lock()
	f.read = append(f.read, event+" "+string(data))
	f.mu.Unlock()
}

// requests are the requests read so far (see record).
func (f *fakeNode) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.read...)
}

// unsubscribed answers unsubscribe id of room.
func unsubscribed(id, room string) map[string]any {
	return map[string]any{"type": "response", "event": "unsubscribe", "id": id,
		"data": map[string]any{"status": "unsubscribed", "channel": room}}
}

// fakeEvent is the event n of room at seq.
func fakeEvent(room string, seq, n int) map[string]any {
	return map[string]any{"type": "event", "event": "test.numbered", "room": room, "seq": seq,
		"ts": "2026-12-07T10:00:00.000Z", "data": map[string]any{"n": n}}
}

// fakeError refuses request id of event with code.
func fakeError(event, id, code, message string) map[string]any {
	return map[string]any{"type": "error", "event": event, "id": id,
		"data": map[string]any{"code": code, "message": message}}
}

// fakeResponse answers subscribe id of room at seq, after replayed events.
func fakeResponse(id, room string, seq, replayed int) map[string]any {
	return map[string]any{"type": "response", "event": "subscribe", "id": id, "data": map[string]any{
		"status": "subscribed", "channel": room, "seq": seq, "replayed": replayed, "recovered": true, "epoch": "fake-1"}}
}

func (f *fakeNode) send(c net.Conn, op ws.OpCode, m any) {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // maps of strings and numbers
	}
	f.raw(c, op, string(b))
}

func (f *fakeNode) raw(c net.Conn, op ws.OpCode, p string) {
	_ = wsutil.WriteServerMessage(c, op, []byte(p))
}
