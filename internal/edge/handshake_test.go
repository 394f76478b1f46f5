package edge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/metrics"
)

// serveGated runs a Server admitting at most limit handshakes at once on a
// loopback listener. Cleanup stops the listener and drains the server,
// which waits for every handshake.
func serveGated(t *testing.T, handshakeTimeout time.Duration, limit int) (*handshakeGate, string) {
	t.Helper()
	s, addr := serveEdge(t, Options{HandshakeTimeout: handshakeTimeout, MaxHandshakes: limit})
	return s.handshakes, addr
}

// serveEdge runs a Server with o (a quiet logger and fresh metrics added)
// on a loopback listener until the test ends, and returns it and its
// address.
func serveEdge(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Metrics = metrics.NewUnregistered()
	s := New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-served
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Drain(ctx, 0)
	})
	return s, ln.Addr().String()
}

// dialRaw opens a TCP connection, closed on cleanup (before the server's).
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: not %s", what)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

// expectClosedByServer reads nc until the server closes it; a read that
// times out instead fails the test.
func expectClosedByServer(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the socket open for 10s")
	}
}

// Past the limit of handshakes in progress, a new socket is closed at
// once (the handshake timeout here is far longer than the test), and a
// slot freed lets the next client upgrade.
func TestHandshakesPastTheLimitAreClosedAtOnce(t *testing.T) {
	gate, addr := serveGated(t, time.Minute, 2)
	var slow []net.Conn
	for range 2 {
		nc := dialRaw(t, addr)
		if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil { // and never the rest
			t.Fatal(err)
		}
		slow = append(slow, nc)
	}
	waitFor(t, "2 handshakes in progress", func() bool { return len(gate.slots) == 2 })

	expectClosedByServer(t, dialRaw(t, addr))
	if n := len(gate.slots); n != 2 {
		t.Fatalf("%d handshakes in progress after the refusal, want the 2 slow ones", n)
	}

	slow[0].Close()
	waitFor(t, "a slot freed", func() bool { return len(gate.slots) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, _, _, err := ws.Dialer{}.Dial(ctx, "ws://"+addr+"/")
	if err != nil {
		t.Fatalf("upgrade with a slot free: %v", err)
	}
	nc.Close()
}

// A client that trickles its request is cut off HandshakeTimeout after
// the accept, however often it sends a byte, and its slot is given back.
func TestTricklingHandshakeEndsAtHandshakeTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	gate, addr := serveGated(t, timeout, 2)
	start := time.Now()
	nc := dialRaw(t, addr)
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond) // the pace of the trickle, not a synchronisation
		defer tick.Stop()
		if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\n"); err != nil {
			return
		}
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(nc, "X-Slow: 1\r\n"); err != nil {
				return
			}
		}
	}()
	expectClosedByServer(t, nc)
	close(stop)
	<-trickled
	if elapsed := time.Since(start); elapsed < timeout {
		t.Fatalf("closed after %s, before the handshake timeout %s", elapsed, timeout)
	}
	waitFor(t, "the slot given back", func() bool { return len(gate.slots) == 0 })
}

// The gate admits up to its limit, refuses past it, and admits again once
// a slot is given back; a limit that is not positive takes the default.
func TestHandshakeGateCounts(t *testing.T) {
	g := newHandshakeGate(2)
	if !g.enter() || !g.enter() {
		t.Fatal("refused within the limit")
	}
	if g.enter() {
		t.Fatal("admitted past the limit")
	}
	g.leave()
	if !g.enter() {
		t.Fatal("refused after a slot was given back")
	}
	if n := cap(newHandshakeGate(0).slots); n != DefaultMaxHandshakes {
		t.Fatalf("default limit %d, want %d", n, DefaultMaxHandshakes)
	}
}
