package roomcastjs_test

import (
	"encoding/json"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// lateErrorNode is a FAKE node: it answers the first subscribe with a
// state, then fails that subscribe's catch-up with an UNAVAILABLE error
// of the same id, as a node does when it cannot read the room after the
// response (docs/protocol.md section 3, "State"); it answers later
// subscribes plainly. subscribes counts the subscribes it read.
func lateErrorNode(t *testing.T, subscribes *atomic.Int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		go func() {
			<-t.Context().Done()
			_ = c.Close()
		}()
		if _, err := ws.Upgrade(c); err != nil {
			return
		}
		for {
			data, err := wsutil.ReadClientText(c)
			if err != nil {
				return
			}
			var req struct{ Type, Event, ID string }
			_ = json.Unmarshal(data, &req)
			if req.Type == "ping" {
				_ = wsutil.WriteServerText(c, []byte(fmt.Sprintf(`{"type":"pong","id":%q}`, req.ID)))
				continue
			}
			if req.Event != "subscribe" {
				continue
			}
			n := subscribes.Add(1)
			res := fmt.Sprintf(`{"type":"response","event":"subscribe","id":%q,"data":{"status":"subscribed","channel":"pool:p1","seq":6,"replayed":0,"recovered":true,"epoch":"fake-1","state":[]}}`, req.ID)
			_ = wsutil.WriteServerText(c, []byte(res))
			if n == 1 {
				e := fmt.Sprintf(`{"type":"error","event":"subscribe","id":%q,"data":{"code":"UNAVAILABLE","message":"the room cannot be read now"}}`, req.ID)
				_ = wsutil.WriteServerText(c, []byte(e))
			}
		}
	}()
	return "ws://" + ln.Addr().String() + "/ws"
}

// A subscribe whose catch-up fails after its response (an error with its
// id after the response: the node left the room) is told and subscribed
// again after 1 s, as any UNAVAILABLE subscribe; not taken for an unasked
// error that leaves the room unfollowed while the connection lasts.
func TestUnavailableAfterTheResponseIsRetried(t *testing.T) {
	t.Parallel()
	var subscribes atomic.Int32
	r := startRunner(t, site(t, nil), runnerConfig{URLs: []string{lateErrorNode(t, &subscribes)}, Rooms: []roomConfig{{Room: room, State: true}}})
	r.waitFor("a second subscribe response", func(rs []record) error {
		if n := len(kinds(rs, "subscribed", "")); n < 2 {
			return fmt.Errorf("%d subscribe responses, %d subscribes read by the node", n, subscribes.Load())
		}
		return nil
	})
	errs := kinds(r.records, "notice", "request_error")
	if len(errs) != 1 || errs[0].Error != "UNAVAILABLE" || errs[0].Room != room {
		t.Fatalf("request errors told: %v; want one UNAVAILABLE of %s:\n%s", errs, room, lines(r.records))
	}
}
