package server_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// dialCompressed connects a client offering permessage-deflate, closed on
// cleanup.
func dialCompressed(t testing.TB, srv *server.Server) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.DialCompressed(ctx, ws.Dialer{Timeout: 10 * time.Second}, wsURL(srv), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// With --compression, members that negotiated deflate and members that did
// not share a room: each event reaches all of them intact, and is
// compressed once for all the deflate members. Their subscribes came
// compressed and were inflated.
func TestCompressedAndPlainMembersShareEvents(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.Compression = true })
	pub := newPublisher(t, srv.NATSURL())
	z1, z2, plain := dialCompressed(t, srv), dialCompressed(t, srv), dial(t, srv)
	if !z1.Compressed() || !z2.Compressed() || plain.Compressed() {
		t.Fatalf("negotiated: %v %v %v, want true true false", z1.Compressed(), z2.Compressed(), plain.Compressed())
	}
	for _, c := range []*client.Conn{z1, z2, plain} {
		subscribe(t, c, "pool:p1", nil)
	}

	const n = 5
	detail := strings.Repeat("queue depth rising; ", 20) // long enough to be compressed
	before := wire.Compressions()
	for i := range n {
		pub.raw("pool:p1", fmt.Appendf(nil, `{"event":"worker.status_changed","data":{"n":%d,"worker_id":"w-17","status":"busy","pool_id":"p1","detail":%q}}`, i, detail))
	}
	var want [][]byte
	for _, c := range []*client.Conn{plain, z1, z2} {
		for i := range n {
			p, err := c.ReadText(time.Now().Add(10 * time.Second))
			if err != nil {
				t.Fatalf("read event %d: %v", i, err)
			}
			if len(want) < n {
				want = append(want, p)
				if !bytes.Contains(p, []byte(detail)) || !bytes.Contains(p, fmt.Appendf(nil, `"n":%d`, i)) {
					t.Fatalf("event %d: %s", i, p)
				}
			} else if !bytes.Equal(p, want[i]) {
				t.Fatalf("event %d differs:\n%s\n%s", i, p, want[i])
			}
		}
	}
	if got := wire.Compressions() - before; got != n {
		t.Fatalf("%d events to 2 deflate members were compressed %d times, want %d", n, got, n)
	}
}

// Without --compression a client offering deflate gets a plain connection.
func TestCompressionOffByDefault(t *testing.T) {
	srv := startNode(t, nil, nil)
	pub := newPublisher(t, srv.NATSURL())
	c := dialCompressed(t, srv)
	if c.Compressed() {
		t.Fatal("permessage-deflate negotiated with --compression off")
	}
	subscribe(t, c, "pool:p1", nil)
	pub.event("pool:p1", "worker.status_changed", 7)
	if m := readEvents(t, c, 1)[0]; counterOf(t, m) != 7 {
		t.Fatalf("event %+v", m)
	}
}
