// Package relaytest relays loopback TCP connections to a target, for tests
// of network faults that no API of a client or server can fake: Cut resets
// every connection (and refuses new ones until Allow), Silence keeps them
// open but passes nothing either way, as a frozen peer or a partition does,
// and Stall stops reading until Flow, so that the senders' writes back up,
// as behind a congested path.
package relaytest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Relay is a running relay; the test's cleanup stops it.
type Relay struct {
	ln    net.Listener
	quiet chan struct{} // closed by Silence
	done  chan struct{} // closed when the test ends
	wg    sync.WaitGroup

	mu       sync.Mutex
	target   string                // where new connections go
	conns    map[net.Conn]struct{} // both sides of every relayed connection
	refused  bool                  // new connections are closed at once
	silenced bool
	stalled  chan struct{} // non-nil while stalled; closed by Flow
}

// Start relays a new loopback port to target until the test ends.
func Start(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: target, conns: map[net.Conn]struct{}{},
		quiet: make(chan struct{}), done: make(chan struct{})}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(func() {
		close(r.done)
		_ = ln.Close()
		r.Cut(true)
		r.wg.Wait()
	})
	return r
}

// Addr is the relay's address.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Retarget sends new connections to target; open ones stay where they are.
func (r *Relay) Retarget(target string) {
	r.mu.Lock()
	r.target = target
	r.mu.Unlock()
}

// Cut resets every relayed connection; with refuse, new ones are closed
// at once too, until Allow.
func (r *Relay) Cut(refuse bool) {
	r.mu.Lock()
	r.refused = refuse
	conns := make([]net.Conn, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		r.drop(c)
	}
}

// Allow lets new connections through again after Cut(true).
func (r *Relay) Allow() {
	r.mu.Lock()
	r.refused = false
	r.mu.Unlock()
}

// Silence stops all forwarding for good: what either side sends is
// swallowed, so its writes never block and nothing arrives, and no close
// passes either.
func (r *Relay) Silence() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.silenced {
		r.silenced = true
		close(r.quiet)
	}
}

// Stall stops reading from either side of every connection, new ones
// included, until Flow: what a side sends waits in the sockets' buffers,
// and once they are full its writes block, as a peer that stopped reading
// makes them.
func (r *Relay) Stall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stalled == nil {
		r.stalled = make(chan struct{})
	}
}

// Flow ends a Stall.
func (r *Relay) Flow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stalled != nil {
		close(r.stalled)
		r.stalled = nil
	}
}

// waitFlowing waits while the relay is stalled; false when the test ended.
func (r *Relay) waitFlowing() bool {
	r.mu.Lock()
	stalled := r.stalled
	r.mu.Unlock()
	if stalled == nil {
		return true
	}
	select {
	case <-stalled:
		return true
	case <-r.done:
		return false
	}
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		target := r.target
		r.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		if r.refused {
			r.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		r.conns[c], r.conns[up] = struct{}{}, struct{}{}
		r.wg.Add(2)
		r.mu.Unlock()
		go r.pipe(c, up)
		go r.pipe(up, c)
	}
}

// pipe copies from src to dst, or swallows once silenced; when src ends,
// both sides are reset, unless silenced, when the end is swallowed too.
func (r *Relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for r.waitFlowing() {
		n, err := src.Read(buf)
		if n > 0 && !r.isSilent() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			if err == io.EOF && r.isSilent() {
				<-r.done
			}
			break
		}
	}
	r.drop(dst)
	r.drop(src)
}

func (r *Relay) isSilent() bool {
	select {
	case <-r.quiet:
		return true
	default:
		return false
	}
}

// drop resets c (a reset rather than a FIN: a failed connection) and
// forgets it.
func (r *Relay) drop(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
