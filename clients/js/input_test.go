package roomcastjs_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// badFrames are what a real node never sends, each with whether it is a
// binary frame.
var badFrames = []struct {
	binary bool
	data   string
}{
	{false, "not JSON at all"},
	{true, "\x01\x02\x03"},
	{false, `{"type":"mystery","room":"pool:p1"}`},
	{false, `[1,2,3]`},
	{false, `{"type":"event","event":"test.numbered","seq":7}`},
	{false, `{"type":"event","event":"test.numbered","room":"pool:p1","seq":"8"}`},
}

// fakeNode is a WebSocket server, not a node: it answers the client's
// subscribe as a node would, then sends badFrames, then an event. A fake,
// because a real node never sends such frames and cannot be made to. It
// returns its URL; it stops when the test ends.
func fakeNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			mu.Lock()
			conns = append(conns, c)
			if closed { // accepted as the test ended
				_ = c.Close()
			}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := serveFake(c); err != nil && !errors.Is(err, net.ErrClosed) {
					t.Logf("fake node: %v", err)
				}
			}()
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws"
}

// serveFake answers one client: a subscribe response, then the bad
// frames and an event; it then reads until the client leaves.
func serveFake(c net.Conn) error {
	if _, err := ws.Upgrade(c); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	for {
		data, err := wsutil.ReadClientText(c)
		if err != nil {
			return err
		}
		var req struct {
			Event, ID string
			Data      struct{ Channel string }
		}
		if err := json.Unmarshal(data, &req); err != nil || req.Event != "subscribe" {
			continue
		}
		res := fmt.Sprintf(`{"type":"response","event":"subscribe","id":%q,"data":{"status":"subscribed","channel":%q,"seq":6,"replayed":0,"recovered":true,"epoch":"fake-1"}}`, req.ID, req.Data.Channel)
		if err := wsutil.WriteServerText(c, []byte(res)); err != nil {
			return err
		}
		for _, f := range badFrames {
			op := ws.OpText
			if f.binary {
				op = ws.OpBinary
			}
			if err := wsutil.WriteServerMessage(c, op, []byte(f.data)); err != nil {
				return err
			}
		}
		ev := `{"type":"event","event":"test.numbered","room":"pool:p1","seq":9,"data":{"n":1}}`
		if err := wsutil.WriteServerText(c, []byte(ev)); err != nil {
			return err
		}
	}
}

// What the client cannot read (not JSON, binary, not an object, an
// unknown type, an event without a room or a valid seq) is reported as
// bad input and skipped: the connection goes on, and the next event is
// handed over.
func TestBadInputIsReportedAndSkipped(t *testing.T) {
	t.Parallel()
	r := startRunner(t, site(t, nil), runnerConfig{URLs: []string{fakeNode(t)}, Rooms: []roomConfig{{Room: room}}})
	r.waitFor("the event after the bad input", eventsAre(room, 1))
	bad := kinds(r.records, "notice", "bad_input")
	if len(bad) != len(badFrames) {
		t.Fatalf("%d bad_input notices, want %d:\n%s", len(bad), len(badFrames), lines(r.records))
	}
	for _, b := range bad {
		if b.Text == "" {
			t.Errorf("a bad_input notice says nothing: %+v", b)
		}
	}
	if len(kinds(r.records, "notice", "disconnected")) != 0 || len(kinds(r.records, "stopped", "")) != 0 {
		t.Fatalf("the connection did not go on:\n%s", lines(r.records))
	}
	logRecords(t, r)
}
