package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// A client that stops reading is closed with 4008 once its send queue
// overflows; a reading client in the same room receives every event.
func TestSlowConsumerIsClosedWith4008(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) {
		c.SendQueueMessages = 64
		c.SendQueueBytes = 2 << 20
		// The slow client reads nothing until the fast one has everything,
		// which can take a while on a busy machine; without a reader no
		// close frame gets through once a write times out.
		c.WriteTimeout = time.Minute
	})
	pub := newPublisher(t, srv.NATSURL())
	slow := dialSmallBuffer(t, srv)
	fast := dial(t, srv)
	subscribe(t, slow, "pool:slow", nil)
	subscribe(t, fast, "pool:slow", nil)

	// 300 events of 40 KiB: far more than the socket buffers and the queue
	// hold while the slow client reads nothing.
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

	// Now the slow client reads: what was in flight, then the 4008 close.
	got := expectClose(t, slow, int(wire.CloseSlowConsumer))
	if len(got) >= n {
		t.Fatalf("slow client got all %d events; it was never slow", len(got))
	}
	for i, m := range got {
		if m.Type != wire.TypeEvent || counterOf(t, m) != i {
			t.Fatalf("slow client: message %d is %+v; events must be a gapless prefix", i, m)
		}
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
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialWith(ctx, ws.Dialer{NetDial: d.DialContext}, wsURL(srv), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
