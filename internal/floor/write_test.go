package floor

import (
	"io"
	"net"
	"testing"
	"time"
)

// A delivery the socket takes at once allocates nothing: the floor is the
// least a broadcaster can do, so it must not pay for a closure per write.
func TestWriteNowAllocatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := <-accepted
	if c == nil {
		t.Fatal("no connection accepted")
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, peer); close(done) }()
	defer func() { peer.Close(); <-done }()

	m := &member{c: c, raw: raw}
	frame := []byte("\x81\x05hello")
	deadline := time.Now().Add(time.Minute)
	allocs := testing.AllocsPerRun(200, func() {
		if err := m.writeNow(frame, deadline); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("writeNow allocates %.1f times a write, want none", allocs)
	}
}
