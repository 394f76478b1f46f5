package server_test

import (
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/wire"
)

// RFC 6455 conformance seen from a client of a real node: each case ends
// with the close code the RFC asks for, and the node goes on serving.
func TestWebSocketConformance(t *testing.T) {
	srv := startNode(t, nil, nil)
	for _, tc := range []struct {
		name  string
		frame []byte // written raw to the socket
		code  ws.StatusCode
	}{
		{"text not UTF-8", maskedFrame(ws.NewTextFrame([]byte("{\"type\":\"ping\",\"id\":\"\xff\xfe\"}"))), conn.CloseInvalidPayload},
		{"64-bit length with its top bit set", []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, wire.CloseProtocol},
		{"client closes with 1012", maskedFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1012, "restart"))), 1012},
		{"client closes with 1015", maskedFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(1015, ""))), wire.CloseProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, srv)
			if _, err := c.NetConn().Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			// Read raw: gobwas/ws's client refuses close codes 1012-1014
			// from a server as undefined, though RFC 6455's registry has them.
			_ = c.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second))
			f, err := ws.ReadFrame(c.NetConn())
			if err != nil {
				t.Fatalf("want a close frame %d, got %v", tc.code, err)
			}
			if code, reason := ws.ParseCloseFrameData(f.Payload); f.Header.OpCode != ws.OpClose || code != tc.code {
				t.Fatalf("got %v %q (close code %d %q), want close %d", f.Header.OpCode, f.Payload, code, reason, tc.code)
			}
		})
	}
	c := dial(t, srv)
	if err := c.Send(wire.Message{Type: wire.TypePing, ID: "still"}); err != nil {
		t.Fatal(err)
	}
	if m := read(t, c); m.Type != wire.TypePong || m.ID != "still" {
		t.Fatalf("after the cases: %+v, want pong still", m)
	}
}

// maskedFrame is f masked as a client sends it, compiled to bytes.
func maskedFrame(f ws.Frame) []byte {
	return ws.MustCompileFrame(ws.MaskFrame(f))
}
