//go:build linux

package netpoll

import (
	"net"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); s.Close() })
	return s.(*net.TCPConn), client
}

func expect(t *testing.T, fired <-chan struct{}, want bool, what string) {
	t.Helper()
	wait := 50 * time.Millisecond // how long "did not fire" is watched for
	if want {
		wait = 10 * time.Second
	}
	select {
	case <-fired:
		if !want {
			t.Fatalf("fired: %s", what)
		}
	case <-time.After(wait):
		if want {
			t.Fatalf("did not fire within 10s: %s", what)
		}
	}
}

// A watch fires once when data arrives, not again until rearmed, again on
// rearming while the data is still unread, and never after Remove.
func TestWatchIsOneShotAndRearmable(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	server, client := tcpPair(t)
	fired := make(chan struct{}, 10)
	w, err := p.Add(server, func() { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	expect(t, fired, false, "before any data")
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, true, "data arrived")
	if _, err := client.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, false, "more data before the rearm")
	if err := w.Rearm(); err != nil {
		t.Fatal(err)
	}
	expect(t, fired, true, "rearmed with data unread")
	if got := p.Watches(); got != 1 {
		t.Fatalf("Watches() = %d, want 1", got)
	}
	w.Remove()
	if got := p.Watches(); got != 0 {
		t.Fatalf("Watches() = %d after Remove, want 0", got)
	}
	if err := w.Rearm(); err == nil {
		t.Fatal("Rearm after Remove succeeded")
	}
	expect(t, fired, false, "after Remove")
}

// A peer hanging up fires the watch: the reader it starts reads the EOF.
func TestHangUpFires(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	server, client := tcpPair(t)
	fired := make(chan struct{}, 1)
	w, err := p.Add(server, func() { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Remove()
	client.Close()
	expect(t, fired, true, "peer closed")
}
