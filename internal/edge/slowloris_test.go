package edge

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"
)

// slowloris holds sockets that send an upgrade request a byte at a time
// and never finish it, from several source addresses, reopening those the
// server closes, as an attacker does.
type slowloris struct {
	addr    string
	sources []string

	socks []net.Conn // nil where a socket could not be reopened
	dials int
}

// maxSlowDials bounds the sockets a slowloris opens in all, reopenings
// included.
const maxSlowDials = 20000

// open dials n sockets, spread over the sources, each sending the start of
// a request; a socket the server refuses is kept to be reopened.
func (s *slowloris) open(n int) {
	s.socks = make([]net.Conn, n)
	for i := range n {
		s.socks[i] = s.dial(i)
	}
}

// dial opens socket i and sends the start of its request; nil if that
// failed or maxSlowDials was reached.
func (s *slowloris) dial(i int) net.Conn {
	if s.dials >= maxSlowDials {
		return nil
	}
	s.dials++
	nc, err := loopbackDialer(s.sources[i%len(s.sources)]).Dial("tcp", s.addr)
	if err != nil {
		return nil
	}
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		_ = nc.Close()
		return nil
	}
	return nc
}

// trickle sends one more byte on every socket each second, reopening
// those that fail, until ctx is done; then it closes every socket.
func (s *slowloris) trickle(ctx context.Context) {
	tick := time.NewTicker(time.Second) // the attack's pace, not a synchronisation
	defer tick.Stop()
	defer s.closeAll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i, nc := range s.socks {
			if ctx.Err() != nil {
				return
			}
			if nc != nil {
				_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := io.WriteString(nc, "X"); err == nil {
					continue
				}
				_ = nc.Close()
			}
			s.socks[i] = s.dial(i)
		}
	}
}

func (s *slowloris) closeAll() {
	for i, nc := range s.socks {
		if nc != nil {
			_ = nc.Close()
			s.socks[i] = nil
		}
	}
}

// 1,500 sockets trickling their requests from eight source addresses
// leave clients from another address able to connect: at least nine in
// ten attempts upgrade within a deadline of 2 s each. The node runs with
// the defaults (a gate of 1,024 handshakes), and again with no effective
// cap per source, where the gate's eviction of its oldest handshake alone
// must let clients in. Before the fix the slow sockets held every slot for
// the whole handshake timeout and every newcomer was closed at once.
func TestSlowHandshakesDoNotStarveClients(t *testing.T) {
	t.Run("defaults", func(t *testing.T) { slowHandshakesAgainst(t, Options{}) })
	t.Run("eviction alone", func(t *testing.T) { slowHandshakesAgainst(t, Options{MaxHandshakesPerSource: 1 << 20}) })
}

func slowHandshakesAgainst(t *testing.T, o Options) {
	s, addr := serveEdge(t, o)
	const slowSockets, attempts = 1500, 50
	attack := &slowloris{addr: addr}
	for i := 2; i <= 9; i++ {
		attack.sources = append(attack.sources, fmt.Sprintf("127.0.0.%d", i))
	}
	attack.open(slowSockets)
	ctx, stop := context.WithCancel(context.Background())
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		attack.trickle(ctx)
	}()
	defer func() {
		stop()
		<-trickled
	}()
	// The attack holds what the gate lets it: every source at its cap.
	held := min(len(attack.sources)*s.handshakes.perSource, s.handshakes.limit)
	waitFor(t, "the slow sockets holding their handshakes", func() bool { return s.handshakes.inProgress() >= held })

	ok := 0
	var lastErr error
	for range attempts {
		if err := upgradeOK("127.0.0.1", addr, 2*time.Second); err != nil {
			lastErr = err
		} else {
			ok++
		}
		time.Sleep(40 * time.Millisecond) // spread the attempts over the attack's trickle
	}
	stop()
	<-trickled
	t.Logf("%d of %d upgrades succeeded against %d slow sockets (%d opened in all)", ok, attempts, slowSockets, attack.dials)
	if ok < attempts*9/10 {
		t.Fatalf("%d of %d upgrades during the attack succeeded, want 9 in 10 (last error: %v)", ok, attempts, lastErr)
	}
}

// A client trickling its request head is cut off HeadTimeout after the
// accept however often it sends a byte, long before the handshake timeout
// (a minute here, beyond the test's 10 s wait).
func TestTrickledHeadEndsAtTheHeadTimeout(t *testing.T) {
	s, addr := serveEdge(t, Options{HandshakeTimeout: time.Minute, HeadTimeout: 300 * time.Millisecond})
	nc := startSlow(t, "", addr)
	stop := trickle(nc, "X")
	expectClosedByServer(t, nc)
	stop()
	waitFor(t, "the slot given back", func() bool { return s.handshakes.inProgress() == 0 })
}
