package conn

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// gateHandler holds each HandleMessage until the test releases it, and
// logs the calls in the order they happen.
type gateHandler struct {
	started chan string   // a message's text, as its HandleMessage starts
	release chan struct{} // one receive lets one HandleMessage return
	closed  chan CloseInfo

	mu  sync.Mutex
	log []string // "start 1", "end 1", "close"
}

func newGateHandler() *gateHandler {
	return &gateHandler{started: make(chan string, 16), release: make(chan struct{}), closed: make(chan CloseInfo, 1)}
}

func (h *gateHandler) record(s string) {
	h.mu.Lock()
	h.log = append(h.log, s)
	h.mu.Unlock()
}

func (h *gateHandler) HandleMessage(_ *Conn, p []byte) {
	h.record("start " + string(p))
	h.started <- string(p)
	<-h.release
	h.record("end " + string(p))
}
func (h *gateHandler) HandleBinary(*Conn) {}
func (h *gateHandler) HandleClose(_ *Conn, i CloseInfo) {
	h.record("close")
	h.closed <- i
}

func (h *gateHandler) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// waitStarted waits for the HandleMessage of want to start.
func (h *gateHandler) waitStarted(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-h.started:
		if got != want {
			t.Fatalf("HandleMessage(%q) started, want %q; calls %q", got, want, h.calls())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("HandleMessage(%q) did not start; calls %q", want, h.calls())
	}
}

// While a handler runs, the reader goes on reading: pings are answered,
// with one more message waiting for the handler too.
func TestPingIsAnsweredWhileAHandlerRuns(t *testing.T) {
	h := newGateHandler()
	_, client := pairWith(t, Options{}, h)
	t.Cleanup(func() { close(h.release) }) // runs before pairWith's teardown
	send := func(f ws.Frame) {
		t.Helper()
		if err := ws.WriteFrame(client, ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	expectPong := func(payload string) {
		t.Helper()
		if f := readFrame(t, client); f.Header.OpCode != ws.OpPong || string(f.Payload) != payload {
			t.Fatalf("got %v %q, want pong %q", f.Header.OpCode, f.Payload, payload)
		}
	}
	send(ws.NewTextFrame([]byte("1")))
	h.waitStarted(t, "1")
	send(ws.NewPingFrame([]byte("p")))
	expectPong("p")
	send(ws.NewTextFrame([]byte("2"))) // waits for the handler
	send(ws.NewPingFrame([]byte("q")))
	expectPong("q")

	h.release <- struct{}{}
	h.waitStarted(t, "2")
	h.release <- struct{}{}
	want := []string{"start 1", "end 1", "start 2"}
	if got := h.calls(); !slices.Equal(got[:min(len(got), 3)], want) {
		t.Fatalf("calls %q, want %q first", got, want)
	}
}

// While a handler runs, a client's close frame is noticed at once, so the
// handler's work can stop; HandleClose still comes after HandleMessage
// returned, and a message still waiting is dropped.
func TestClientCloseIsNoticedWhileAHandlerRuns(t *testing.T) {
	h := newGateHandler()
	c, client := pairWith(t, Options{}, h)
	t.Cleanup(func() { close(h.release) })
	for _, p := range []string{"1", "2"} {
		if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewTextFrame([]byte(p)))); err != nil {
			t.Fatal(err)
		}
	}
	h.waitStarted(t, "1")
	body := ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewCloseFrame(body))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("Closed did not fire while the handler ran")
	}
	expectClose(t, client, ws.StatusNormalClosure) // the echo, written at once too
	client.Close()                                 // the close handshake is done
	if got := h.calls(); slices.Contains(got, "close") {
		t.Fatalf("HandleClose ran while HandleMessage still did: %q", got)
	}

	h.release <- struct{}{}
	if info := h.waitClosedInfo(t); !info.ByPeer || info.Code != ws.StatusNormalClosure {
		t.Fatalf("close info %+v, want 1000 by peer", info)
	}
	if got, want := h.calls(), []string{"start 1", "end 1", "close"}; !slices.Equal(got, want) {
		t.Fatalf("calls %q, want %q", got, want)
	}
}

func (h *gateHandler) waitClosedInfo(t *testing.T) CloseInfo {
	t.Helper()
	select {
	case i := <-h.closed:
		return i
	case <-time.After(10 * time.Second):
		t.Fatalf("HandleClose not called; calls %q", h.calls())
		return CloseInfo{}
	}
}

// Messages that arrive while a handler runs are handled one at a time, in
// the order they came.
func TestMessagesAreHandledInOrderWhileHandlersBlock(t *testing.T) {
	h := newGateHandler()
	c, client := pairWith(t, Options{}, h)
	t.Cleanup(func() { close(h.release) })
	want := []string{"1", "2", "3", "4", "5"}
	for _, p := range want {
		if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewTextFrame([]byte(p)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range want {
		h.waitStarted(t, p)
		h.release <- struct{}{}
	}
	c.Close(wire.CloseNormal, "done")
	expectClose(t, client, wire.CloseNormal)
	client.Close()
	h.waitClosedInfo(t)
	var wantLog []string
	for _, p := range want {
		wantLog = append(wantLog, "start "+p, "end "+p)
	}
	if got := h.calls(); !slices.Equal(got, append(wantLog, "close")) {
		t.Fatalf("calls %q, want %q then close", got, wantLog)
	}
}
