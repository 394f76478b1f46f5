package conn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// A peer that never reads fills its socket buffers, so the writer blocks;
// once the queue overflows, the connection is closed with 4008 at once,
// not after the write timeout (a minute here): HandleClose runs, which
// comes after the writer has ended and the socket is closed, and the peer
// sees its connection reset once it reads what reached it.
//
// A queue not taken for a second is taken for a blocked writer; a writer
// only slow on a busy machine instead writes the 4008 close frame at the
// overflow, and the peer reads it and then EOF, not a reset. Such an
// attempt shows nothing about a blocked writer and is made again.
func TestOverflowClosesAStalledPeerAtOnce(t *testing.T) {
	for attempt := 1; attempt <= 5; attempt++ {
		err := overflowAStalledPeer(t)
		if errors.Is(err, syscall.ECONNRESET) {
			return
		}
		if err != nil {
			t.Fatalf("the peer read %v, want its connection reset", err)
		}
		t.Logf("attempt %d: the peer read to EOF, not a reset: the writer was only slow", attempt)
	}
	t.Fatal("5 attempts in a row ended with EOF, not a reset: the blocked writer's socket was never reset")
}

// overflowAStalledPeer stalls a pair's writer on a peer that reads
// nothing, overflows its queue, checks the close, and returns what the
// peer's reading of what reached it ended with (nil for EOF).
func overflowAStalledPeer(t *testing.T) error {
	t.Helper()
	h := newRecordingHandler()
	c, client := stalledPair(t, Options{MaxQueueMessages: 16, WriteTimeout: time.Minute}, h)
	f := wire.NewTextFrame(bytes.Repeat([]byte("x"), 64<<10))
	// One frame at a time until the writer no longer takes them: it is
	// blocked on the full socket. Then overflow the queue behind it.
	stalled := false
	for range 1000 { // the socket buffers take a few
		if !c.Enqueue(f) {
			t.Fatal("a frame did not fit while the writer kept up")
		}
		if stalled = !queueTaken(c, time.Second); stalled {
			break
		}
	}
	if !stalled {
		t.Fatal("1,000 frames of 64 KiB written; the peer was never stalled")
	}
	overflowed := false
	for range 100 {
		if overflowed = !c.Enqueue(f); overflowed {
			break
		}
	}
	if !overflowed {
		t.Fatal("the queue of 16 frames took 100 more")
	}
	if info := h.waitClosed(t); info.Code != wire.CloseSlowConsumer || info.Timeout {
		t.Fatalf("closed with %+v, want 4008 and no timeout", info)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("connection not done 10s after HandleClose")
	}
	// The peer reads what reached it, then the connection's end.
	_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, client)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the peer's connection is still open 10s after the close")
	}
	return err
}

// queueTaken waits up to wait for the writer to take the queue.
func queueTaken(c *Conn, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n := len(c.queue)
		c.mu.Unlock()
		if n == 0 {
			return true
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	return false
}

// stalledPair is pairConn with a client that has a 4 KiB receive buffer,
// set before it connects so the window never grows, and a server socket
// with a 64 KiB send buffer: a client that reads nothing stalls the
// server's writes after a few frames.
func stalledPair(t *testing.T, opts Options, h Handler) (*Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	client, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.(*net.TCPConn).SetWriteBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	opts.Poller, opts.Wheel = testPoll.poller, testPoll.wheel
	opts.Resets = new(sync.Mutex) // as a node's connections have
	o := opts.WithDefaults()
	c := New(server, h, &o, false)
	c.Serve()
	t.Cleanup(func() {
		c.Abort()
		<-c.Done()
	})
	return c, client
}

// A queue that overflows while the socket has room (the peer reads, only
// more slowly than frames come) still ends with the 4008 close frame, after
// the frames the writer had taken. The frames are held, as a room's burst
// is: a live frame for an idle writer would be written inline, and only
// frames that wait for a writer goroutine can overflow the queue.
func TestOverflowWithRoomInTheSocketSends4008(t *testing.T) {
	// Held frames wait for a writer goroutine; live ones may go out
	// inline until the peer's unread bytes fill the socket, and then
	// queue and overflow the same way.
	for _, mode := range []struct {
		name    string
		enqueue func(*Conn, *wire.Frame) bool
	}{{"held", (*Conn).EnqueueHeld}, {"live", (*Conn).Enqueue}} {
		t.Run(mode.name, func(t *testing.T) {
			c, client, h := pair(t, Options{MaxQueueMessages: 16, WriteTimeout: time.Minute})
			f := wire.NewTextFrame([]byte(`{"type":"event"}`))
			overflowed := false
			for range 1_000_000 { // bounded: the peer reads nothing
				if overflowed = !mode.enqueue(c, f); overflowed {
					break
				}
			}
			if !overflowed {
				t.Fatal("1,000,000 frames fit in a queue of 16")
			}
			for range 1_000_000 {
				fr := readFrame(t, client)
				if fr.Header.OpCode == ws.OpText {
					continue
				}
				if fr.Header.OpCode != ws.OpClose {
					t.Fatalf("got a frame of op %v, want text or close", fr.Header.OpCode)
				}
				if code, _ := ws.ParseCloseFrameData(fr.Payload); code != wire.CloseSlowConsumer {
					t.Fatalf("close code %d, want 4008", code)
				}
				break
			}
			if info := h.waitClosed(t); info.Code != wire.CloseSlowConsumer {
				t.Fatalf("closed with %+v, want 4008", info)
			}
		})
	}
}

// The socket's send buffer is fixed at SocketSendBuffer (the kernel may
// double it) instead of growing with the kernel's autotuning, which gives
// a peer that reads nothing megabytes before the writer blocks.
func TestSocketSendBufferIsFixed(t *testing.T) {
	c, _, _ := pair(t, Options{})
	rc, err := c.nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		got, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if got < DefaultSocketSendBuffer || got > 2*DefaultSocketSendBuffer {
		t.Fatalf("SO_SNDBUF is %d, want %d (or double)", got, DefaultSocketSendBuffer)
	}
}
