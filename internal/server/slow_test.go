package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// Clients that stop reading are closed once their send queues overflow,
// at once rather than after the write timeout (a minute here), and counted
// as 4008 (slow_consumer); a reading client in the same room receives
// every event, in order, meanwhile. A stalled client gets no close frame
// (its buffers are full): it reads a gapless prefix of the events, then
// the end of its connection.
func TestSlowConsumerIsClosedWith4008(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) {
		c.SendQueueMessages = 64
		c.SendQueueBytes = 2 << 20
		c.WriteTimeout = time.Minute
	})
	pub := newPublisher(t, srv.NATSURL())
	const stalled = 20
	var slow []*client.Conn
	for range stalled {
		c := dialSmallBuffer(t, srv)
		subscribe(t, c, "pool:slow", nil)
		slow = append(slow, c)
	}
	fast := dial(t, srv)
	subscribe(t, fast, "pool:slow", nil)

	// 300 events of 40 KiB: far more than the socket buffers and the queue
	// hold while the slow clients read nothing.
	const n = 300
	pad := strings.Repeat("p", 40<<10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			pub.raw("pool:slow", []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d,"pad":%q}}`, i, pad)))
		}
	}()
	for i, m := range readEvents(t, fast, n) {
		if got := counterOf(t, m); got != i {
			t.Fatalf("fast client: event %d has n %d", i, got)
		}
	}
	<-done

	// Closed (HandleClose ran: the writer ended, the socket is closed)
	// while the slow clients still read nothing.
	natstest.WaitFor(t, 10*time.Second, func() error {
		if got := servertest.Closes(t, srv.AdminAddr(), "slow_consumer"); got != stalled {
			return fmt.Errorf("%v of %d stalled clients closed as slow consumers", got, stalled)
		}
		return nil
	})
	for _, c := range slow {
		got, err := readUntilEnd(c)
		if len(got) >= n {
			t.Fatalf("slow client got all %d events; it was never slow", len(got))
		}
		for i, m := range got {
			if m.Type != wire.TypeEvent || counterOf(t, m) != i {
				t.Fatalf("slow client: message %d is %+v; events must be a gapless prefix", i, m)
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("slow client: connection still open after %d events", len(got))
		}
	}
}

// readUntilEnd reads messages until the connection ends, or for at most
// 10 seconds, and returns them with the error that ended it.
func readUntilEnd(c *client.Conn) ([]wire.Message, error) {
	var got []wire.Message
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := c.Read(deadline)
		if err != nil {
			return got, err
		}
		got = append(got, m)
	}
}

// dialSmallBuffer connects with a small receive buffer, so a client that
// does not read fills up quickly.
func dialSmallBuffer(t testing.TB, srv *server.Server) *client.Conn {
	t.Helper()
	return dialBuffer(t, srv, 8<<10)
}

// dialBuffer connects with a receive buffer of size bytes.
func dialBuffer(t testing.TB, srv *server.Server, size int) *client.Conn {
	t.Helper()
	d := bufferDialer(size)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialWith(ctx, ws.Dialer{NetDial: d.DialContext}, wsURL(srv), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// bufferDialer dials with a receive buffer of size bytes, set before the
// connection so the window never grows.
func bufferDialer(size int) *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		if err != nil {
			return err
		}
		return serr
	}}
}
