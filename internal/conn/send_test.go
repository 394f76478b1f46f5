package conn

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// replayHandler runs a replay (a Send loop) inside HandleMessage, as edge does.
type replayHandler struct {
	sendErr chan error
	closed  chan CloseInfo
}

func (h *replayHandler) HandleMessage(c *Conn, _ []byte) {
	f := wire.NewTextFrame(bytes.Repeat([]byte("x"), 32<<10))
	for {
		if err := c.Send(context.Background(), f); err != nil {
			h.sendErr <- err
			return
		}
	}
}
func (h *replayHandler) HandleBinary(*Conn)               {}
func (h *replayHandler) HandleClose(_ *Conn, i CloseInfo) { h.closed <- i }

// A replay blocked in Send returns when the writer dies (the client stopped
// reading), so the reader can finish and HandleClose runs.
func TestSendReturnsWhenTheWriterDies(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	client, _ := net.Dial("tcp", ln.Addr().String())
	defer client.Close()
	server, _ := ln.Accept()
	o := Options{MaxQueueMessages: 4, WriteTimeout: 200 * time.Millisecond}.WithDefaults()
	h := &replayHandler{sendErr: make(chan error, 1), closed: make(chan CloseInfo, 1)}
	c := New(server, h, &o, false)
	c.Serve()
	// The client asks for a "replay" and never reads: the writer's flush
	// times out and the writer exits.
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewTextFrame([]byte(`{}`)))); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.sendErr:
		t.Logf("Send returned %v", err)
	case <-time.After(5 * time.Second):
		c.Abort()
		select {
		case err := <-h.sendErr:
			t.Fatalf("Send returned only after Abort: %v", err)
		case <-time.After(3 * time.Second):
			t.Fatalf("Send still blocked 5s after the writer died and 3s after Abort; closing=%v; HandleClose never runs", c.Closing())
		}
	}
	select {
	case <-h.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("HandleClose not called")
	}
}

func TestCloseCodeEcho(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want ws.StatusCode
	}{
		{nil, 1000},
		{[]byte{3}, 1002},
		{ws.NewCloseFrameBody(1001, "bye"), 1001},
		{ws.NewCloseFrameBody(4000, ""), 4000},
		{ws.NewCloseFrameBody(1005, ""), 1002},
		{ws.NewCloseFrameBody(1006, ""), 1002},
		{ws.NewCloseFrameBody(2999, ""), 1002},
		{ws.NewCloseFrameBody(5000, ""), 1002},
		{append(ws.NewCloseFrameBody(1000, ""), 0xff), 1002},
	} {
		if got := echoCode(tc.p); got != tc.want {
			t.Errorf("echoCode(%v) = %d, want %d", tc.p, got, tc.want)
		}
	}
}
