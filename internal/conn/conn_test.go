package conn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/roomcast/roomcast/internal/wire"
)

// recordingHandler keeps what a connection hands up.
type recordingHandler struct {
	mu     sync.Mutex
	msgs   [][]byte
	closed chan CloseInfo
}

func newRecordingHandler() *recordingHandler {
	return &recordingHandler{closed: make(chan CloseInfo, 1)}
}

func (h *recordingHandler) HandleMessage(_ *Conn, p []byte) {
	h.mu.Lock()
	h.msgs = append(h.msgs, append([]byte(nil), p...))
	h.mu.Unlock()
}
func (h *recordingHandler) HandleBinary(*Conn)               {}
func (h *recordingHandler) HandleClose(_ *Conn, i CloseInfo) { h.closed <- i }

// waitMessages polls until n messages arrived and returns them; more than
// n, or the connection closing first, fails the test.
func (h *recordingHandler) waitMessages(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case info := <-h.closed:
			t.Fatalf("connection closed waiting for %d messages: %+v", n, info)
		default:
		}
		h.mu.Lock()
		msgs := h.msgs
		h.mu.Unlock()
		switch {
		case len(msgs) > n:
			t.Fatalf("messages %q, want %d", msgs, n)
		case len(msgs) == n:
			return msgs
		case time.Now().After(deadline):
			t.Fatalf("%d messages after 10s, want %d", len(msgs), n)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

func (h *recordingHandler) waitClosed(t *testing.T) CloseInfo {
	t.Helper()
	select {
	case i := <-h.closed:
		return i
	case <-time.After(10 * time.Second):
		t.Fatal("connection did not close")
		return CloseInfo{}
	}
}

// pair serves a Conn with a recordingHandler on one end of a loopback TCP
// connection and returns the client's raw end.
func pair(t *testing.T, opts Options) (*Conn, net.Conn, *recordingHandler) {
	t.Helper()
	h := newRecordingHandler()
	c, client := pairWith(t, opts, h)
	return c, client, h
}

// pairWith serves a Conn with h on one end of a loopback TCP connection and
// returns the client's raw end. The connection is aborted on cleanup, and
// the cleanup waits until it is done.
func pairWith(t *testing.T, opts Options, h Handler) (*Conn, net.Conn) {
	t.Helper()
	return pairConn(t, opts, h, false)
}

// pairConn is pairWith, with permessage-deflate negotiated or not.
func pairConn(t *testing.T, opts Options, h Handler, deflate bool) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if opts.Poller == nil {
		opts.Poller, opts.Wheel = testPoll.poller, testPoll.wheel
	}
	o := opts.WithDefaults()
	c := New(server, h, &o, deflate)
	c.Serve()
	t.Cleanup(func() {
		c.Abort()
		<-c.Done()
	})
	return c, client
}

func readFrame(t *testing.T, nc net.Conn) ws.Frame {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	f, err := ws.ReadFrame(nc)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}

func TestPingIsAnsweredWithPongBySameWriter(t *testing.T) {
	_, client, _ := pair(t, Options{})
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewPingFrame([]byte("hi")))); err != nil {
		t.Fatal(err)
	}
	f := readFrame(t, client)
	if f.Header.OpCode != ws.OpPong || string(f.Payload) != "hi" {
		t.Fatalf("got %v %q, want pong hi", f.Header.OpCode, f.Payload)
	}
}

func TestFragmentedTextIsReassembled(t *testing.T) {
	_, client, h := pair(t, Options{})
	for i, part := range []string{`{"type":`, `"ping"}`} {
		op := ws.OpText
		if i > 0 {
			op = ws.OpContinuation
		}
		if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewFrame(op, i == 1, []byte(part)))); err != nil {
			t.Fatal(err)
		}
	}
	if msgs := h.waitMessages(t, 1); string(msgs[0]) != `{"type":"ping"}` {
		t.Fatalf("messages %q", msgs)
	}
}

func TestClientCloseIsEchoed(t *testing.T) {
	_, client, h := pair(t, Options{})
	body := ws.NewCloseFrameBody(ws.StatusNormalClosure, "bye")
	if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewCloseFrame(body))); err != nil {
		t.Fatal(err)
	}
	f := readFrame(t, client)
	code, _ := ws.ParseCloseFrameData(f.Payload)
	if f.Header.OpCode != ws.OpClose || code != ws.StatusNormalClosure {
		t.Fatalf("got %v code %d, want close 1000", f.Header.OpCode, code)
	}
	client.Close() // the close handshake is done
	if info := h.waitClosed(t); !info.ByPeer {
		t.Fatalf("close info %+v: want by peer", info)
	}
}

func TestUnmaskedFrameIsAProtocolError(t *testing.T) {
	_, client, _ := pair(t, Options{})
	if err := wsutil.WriteServerText(client, []byte(`{"type":"ping"}`)); err != nil { // unmasked
		t.Fatal(err)
	}
	f := readFrame(t, client)
	code, _ := ws.ParseCloseFrameData(f.Payload)
	if f.Header.OpCode != ws.OpClose || code != wire.CloseProtocol {
		t.Fatalf("got %v code %d, want close 1002", f.Header.OpCode, code)
	}
}

// A peer that answers no ping is reaped after the keep-alive deadline.
func TestSilentPeerIsReaped(t *testing.T) {
	_, client, h := pair(t, Options{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond})
	go func() { _, _ = io.Copy(io.Discard, client) }() // reads, never answers
	info := h.waitClosed(t)
	if !info.Timeout {
		t.Fatalf("close info %+v: want a keep-alive timeout", info)
	}
}

// CloseAfterFlush writes what was queued before the close frame.
func TestCloseAfterFlushSendsQueuedFramesFirst(t *testing.T) {
	c, client, _ := pair(t, Options{})
	c.Enqueue(wire.DrainingFrame())
	c.CloseAfterFlush(wire.CloseGoingAway, "draining")
	f := readFrame(t, client)
	if f.Header.OpCode != ws.OpText || !bytes.Contains(f.Payload, []byte(wire.EventDraining)) {
		t.Fatalf("first frame %v %q, want the draining event", f.Header.OpCode, f.Payload)
	}
	f = readFrame(t, client)
	code, _ := ws.ParseCloseFrameData(f.Payload)
	if f.Header.OpCode != ws.OpClose || code != wire.CloseGoingAway {
		t.Fatalf("then %v code %d, want close 1001", f.Header.OpCode, code)
	}
	if c.Enqueue(wire.PongFrame("late")) {
		t.Fatal("a closing connection accepted a frame")
	}
}

// Send waits for room in a full queue instead of overflowing it.
func TestSendWaitsForRoomInsteadOfOverflowing(t *testing.T) {
	c, client, _ := pair(t, Options{MaxQueueMessages: 2})
	go func() { _, _ = io.Copy(io.Discard, client) }()
	for i := range 50 {
		if err := c.Send(t.Context(), wire.PongFrame("x")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if c.Closing() {
		t.Fatal("Send overflowed the queue")
	}
	c.Abort()
	<-c.Done()
	if err := c.Send(t.Context(), wire.PongFrame("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send on a closed connection: %v, want ErrClosed", err)
	}
}

// answerPings answers the server's pings on client until it closes, and
// reports each on the returned channel.
func answerPings(client net.Conn) <-chan struct{} {
	pings := make(chan struct{}, 100)
	go func() {
		for {
			f, err := ws.ReadFrame(client)
			if err != nil {
				return
			}
			if f.Header.OpCode == ws.OpPing {
				_ = ws.WriteFrame(client, ws.MaskFrame(ws.NewPongFrame(f.Payload)))
				pings <- struct{}{}
			}
		}
	}()
	return pings
}

// A peer that answers the keep-alive pings stays connected however quiet it
// is otherwise.
func TestPeerAnsweringPingsStays(t *testing.T) {
	_, client, h := pair(t, Options{PingInterval: 30 * time.Millisecond, PongTimeout: 200 * time.Millisecond})
	pings := answerPings(client)
	for i := range 5 {
		select {
		case <-pings:
		case info := <-h.closed:
			t.Fatalf("closed after %d pings: %+v", i, info)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d pings in 10s", i)
		}
	}
}

// A frame whose header arrives just before the keep-alive deadline and its
// payload just after is read whole, not cut off.
func TestFrameStraddlingTheKeepAliveDeadline(t *testing.T) {
	_, client, h := pair(t, Options{PingInterval: 300 * time.Millisecond, PongTimeout: 2 * time.Second})
	time.Sleep(280 * time.Millisecond) // quiet for almost a ping interval: the scenario itself
	fr := ws.MaskFrame(ws.NewTextFrame(bytes.Repeat([]byte("x"), 1000)))
	if err := ws.WriteHeader(client, fr.Header); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the payload comes after the deadline: the scenario itself
	if _, err := client.Write(fr.Payload); err != nil {
		t.Fatal(err)
	}
	h.waitMessages(t, 1)
}

// An idle polled connection costs no goroutine: nothing reads it until the
// poller sees data. A connection with a reader goroutine costs one.
func TestIdleConnectionGoroutines(t *testing.T) {
	const n = 200
	before := runtime.NumGoroutine()
	clients := make([]net.Conn, n)
	for i := range clients {
		_, clients[i], _ = pair(t, Options{})
	}
	grown := runtime.NumGoroutine() - before
	if testPoll.poller != nil && grown > n/10 {
		t.Fatalf("%d idle polled connections added %d goroutines", n, grown)
	}
	if testPoll.poller == nil && grown < n*9/10 {
		t.Fatalf("%d idle connections with reader goroutines added only %d goroutines", n, grown)
	}
	// Every one of them still reads: a ping on each is answered.
	for _, client := range clients {
		if err := ws.WriteFrame(client, ws.MaskFrame(ws.NewPingFrame([]byte("p")))); err != nil {
			t.Fatal(err)
		}
	}
	for _, client := range clients {
		if f := readFrame(t, client); f.Header.OpCode != ws.OpPong {
			t.Fatalf("got %v, want a pong", f.Header.OpCode)
		}
	}
}
