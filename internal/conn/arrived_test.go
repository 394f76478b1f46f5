package conn

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// arrivingHandler is a gateHandler that also logs Arrived.
type arrivingHandler struct{ *gateHandler }

func (h arrivingHandler) Arrived(_ *Conn, p []byte, binary bool) {
	if binary {
		h.record("arrived binary")
		return
	}
	h.record("arrived " + string(p))
}

// An Arriver hears of each message as the reader has it, in order, and
// before its handler call: also of one that waits behind a running call,
// which is what lets a session cancel that call's work.
func TestArrivedComesBeforeTheMessageWaits(t *testing.T) {
	h := arrivingHandler{newGateHandler()}
	_, client := pairWith(t, Options{}, h)
	t.Cleanup(func() { close(h.release) })
	send := func(f ws.Frame) {
		t.Helper()
		if err := ws.WriteFrame(client, ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	send(ws.NewTextFrame([]byte("1")))
	h.waitStarted(t, "1")
	send(ws.NewTextFrame([]byte("2")))
	send(ws.NewBinaryFrame([]byte("b")))
	want := []string{"arrived 1", "start 1", "arrived 2", "arrived binary"}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(h.calls(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("calls %q, want %q while message 1 is handled", h.calls(), want)
		}
		time.Sleep(time.Millisecond)
	}
	h.release <- struct{}{}
	h.waitStarted(t, "2")
}

// A context derived from one that AfterClose serves is cancelled when the
// connection closes; one cancelled before that stops its registration,
// which frees the connection's one goroutine-free hook for the next.
func TestAfterCloseCancelsDerivedContexts(t *testing.T) {
	c, client := pairWith(t, Options{}, newGateHandler())
	parent := closedCtx{c}
	_, cancelGone := context.WithCancel(parent) // takes the hook
	if hook(c) == nil {
		t.Fatal("the first registration did not take the close hook")
	}
	cancelGone() // stops its registration
	if h := hook(c); h != nil {
		t.Fatal("a cancelled context still holds the close hook")
	}
	live, cancelLive := context.WithCancel(parent) // takes the freed hook
	defer cancelLive()
	if hook(c) == nil {
		t.Fatal("the next registration did not take the freed close hook")
	}
	second, cancelSecond := context.WithCancel(parent) // a second registration at once
	defer cancelSecond()
	c.Close(wire.CloseNormal, "done")
	for _, ctx := range []context.Context{live, second} {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a derived context outlived the connection")
		}
	}
	expectClose(t, client, wire.CloseNormal)
}

// hook is c's close hook, nil if no registration holds it.
func hook(c *Conn) *func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeHook
}

// closedCtx is the edge's closedContext, as far as the context package
// sees it: done when c closes, with an AfterFunc.
type closedCtx struct{ c *Conn }

func (closedCtx) Deadline() (time.Time, bool)             { return time.Time{}, false }
func (x closedCtx) Done() <-chan struct{}                 { return x.c.Closed() }
func (closedCtx) Value(any) any                           { return nil }
func (x closedCtx) AfterFunc(f func()) (stop func() bool) { return x.c.AfterClose(f) }
func (x closedCtx) Err() error {
	if x.c.Closing() {
		return context.Canceled
	}
	return nil
}
