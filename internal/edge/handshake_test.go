package edge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
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

// serveEdge runs a Server with o (a quiet logger and fresh metrics added
// unless o has its own) on a loopback listener until the test ends, and
// returns it and its address.
func serveEdge(t *testing.T, o Options) (*Server, string) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewUnregistered()
	}
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
	return dialFrom(t, "", addr)
}

// dialFrom opens a TCP connection from the loopback address from (all of
// 127/8 is loopback on Linux; "": the system's choice), closed on cleanup.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	nc, err := loopbackDialer(from).Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// loopbackDialer dials from the address from ("": any).
func loopbackDialer(from string) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d
}

// startSlow opens a socket from from and sends the start of a request,
// never its end.
func startSlow(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	nc := dialFrom(t, from, addr)
	if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	return nc
}

// upgradeOK reports whether a WebSocket upgrade from from succeeds within
// timeout.
func upgradeOK(from, addr string, timeout time.Duration) error {
	nc, err := dialWS(from, "ws://"+addr+"/", nil, timeout)
	if err != nil {
		return err
	}
	return nc.Close()
}

// dialWS upgrades from the address from to url with the header h within
// timeout.
func dialWS(from, url string, h http.Header, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := ws.Dialer{NetDial: func(ctx context.Context, network, a string) (net.Conn, error) {
		return loopbackDialer(from).DialContext(ctx, network, a)
	}}
	if h != nil {
		d.Header = ws.HandshakeHeaderHTTP(h)
	}
	nc, _, _, err := d.Dial(ctx, url)
	return nc, err
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

// A full gate closes its oldest handshake to make room: a newcomer is
// served (the handshake timeout here is far longer than the test) while
// the slow socket that came first is closed.
func TestAFullGateClosesItsOldestHandshake(t *testing.T) {
	gate, addr := serveGated(t, time.Minute, 2)
	oldest := startSlow(t, "", addr)
	waitFor(t, "1 handshake in progress", func() bool { return gate.inProgress() == 1 })
	startSlow(t, "", addr)
	waitFor(t, "2 handshakes in progress", func() bool { return gate.inProgress() == 2 })

	if err := upgradeOK("", addr, 10*time.Second); err != nil {
		t.Fatalf("upgrade with the gate full: %v", err)
	}
	expectClosedByServer(t, oldest)
	// The evicted handshake leaves the gate when its goroutine ends, which
	// may come a moment after its socket is closed.
	waitFor(t, "the second slow handshake alone in progress", func() bool { return gate.inProgress() == 1 })
}

// A full gate closes the oldest handshake of the source holding the most,
// not the oldest of all: a client whose handshake is slow (far away, on
// TLS) is not cut off by an attacker opening sockets from another address.
func TestAFullGateSparesTheFewOfOtherSources(t *testing.T) {
	gate, addr := serveGated(t, time.Minute, 4)
	client := startSlow(t, "127.0.0.3", addr) // the oldest of all
	waitFor(t, "1 handshake in progress", func() bool { return gate.inProgress() == 1 })
	var attack []net.Conn
	for i := range 3 {
		attack = append(attack, startSlow(t, "127.0.0.2", addr))
		waitFor(t, "the attacker's handshakes in progress", func() bool { return gate.inProgress() == i+2 })
	}
	startSlow(t, "127.0.0.2", addr)
	expectClosedByServer(t, attack[0])
	waitFor(t, "4 handshakes in progress", func() bool { return gate.inProgress() == 4 })
	_ = client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := client.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("the other source's handshake: %v, want it still waiting", err)
	}
}

// A source at its cap of handshakes in progress loses its own oldest one
// to its newcomer; other sources are not touched.
func TestASourceAtItsCapLosesItsOwnOldestHandshake(t *testing.T) {
	s, addr := serveEdge(t, Options{HandshakeTimeout: time.Minute, MaxHandshakesPerSource: 2})
	other := startSlow(t, "127.0.0.3", addr)
	first := startSlow(t, "127.0.0.2", addr)
	waitFor(t, "2 handshakes in progress", func() bool { return s.handshakes.inProgress() == 2 })
	startSlow(t, "127.0.0.2", addr)
	waitFor(t, "3 handshakes in progress", func() bool { return s.handshakes.inProgress() == 3 })
	startSlow(t, "127.0.0.2", addr) // the third of 127.0.0.2
	expectClosedByServer(t, first)
	waitFor(t, "3 handshakes in progress", func() bool { return s.handshakes.inProgress() == 3 })
	_ = other.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := other.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("the other source's handshake: %v, want it still waiting", err)
	}
}

// trickle writes each to nc every 20 ms until nc fails or stop is called;
// stop returns once the writing goroutine has ended.
func trickle(nc net.Conn, each string) (stop func()) {
	done, trickled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(20 * time.Millisecond) // the pace of the trickle, not a synchronisation
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(nc, each); err != nil {
				return
			}
		}
	}()
	return func() {
		close(done)
		<-trickled
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A client that trickles its request is cut off HandshakeTimeout after
// the accept, however often it sends a byte, and its slot is given back.
func TestTricklingHandshakeEndsAtHandshakeTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	gate, addr := serveGated(t, timeout, 2)
	start := time.Now()
	nc := dialRaw(t, addr)
	if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	stop := trickle(nc, "X-Slow: 1\r\n")
	expectClosedByServer(t, nc)
	stop()
	if elapsed := time.Since(start); elapsed < timeout {
		t.Fatalf("closed after %s, before the handshake timeout %s", elapsed, timeout)
	}
	waitFor(t, "the slot given back", func() bool { return gate.inProgress() == 0 })
}

// The gate makes room by closing the oldest handshake of a source at its
// cap, else the oldest of all; a handshake that leaves frees its place,
// and an evicted one learns it from leave. Defaults apply to limits that
// are not positive.
func TestHandshakeGateCounts(t *testing.T) {
	g := newHandshakeGate(3, 2)
	a, ev := g.enter(nil, "a")
	b, _ := g.enter(nil, "b")
	a2, _ := g.enter(nil, "a")
	if ev != nil || g.inProgress() != 3 {
		t.Fatalf("evicted %v within the limits; %d in progress", ev, g.inProgress())
	}
	a3, ev := g.enter(nil, "a")
	if ev != a || ev.evictedBy != metrics.RefusedSource {
		t.Fatalf("the third of source a evicted %+v, want a's oldest for its source", ev)
	}
	// Full, with b older than a's two: a holds the most, and loses its
	// oldest, not b.
	c, ev := g.enter(nil, "c")
	if ev != a2 || ev.evictedBy != metrics.RefusedCapacity {
		t.Fatalf("a newcomer at the limit evicted %+v, want the oldest (a2) of the source holding the most", ev)
	}
	// Full, every source holding one: the oldest of all goes (b).
	if _, ev = g.enter(nil, ""); ev != b || ev.evictedBy != metrics.RefusedCapacity {
		t.Fatalf("a newcomer at the limit, one handshake a source: evicted %+v, want the oldest (b)", ev)
	}
	if g.leave(a) || g.leave(a2) || g.leave(b) {
		t.Fatal("an evicted handshake left as if it had not been")
	}
	if !g.leave(a3) || !g.leave(c) || g.inProgress() != 1 {
		t.Fatalf("leave: %d in progress, want 1", g.inProgress())
	}
	if _, ev = g.enter(nil, "a"); ev != nil {
		t.Fatalf("a place freed by leave: evicted %+v", ev)
	}
	if d := newHandshakeGate(0, 0); d.limit != DefaultMaxHandshakes || d.perSource != DefaultMaxHandshakesPerSource {
		t.Fatalf("defaults %d, %d", d.limit, d.perSource)
	}
}
