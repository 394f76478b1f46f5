package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// fillRoom stores n events in room with async publishes.
func fillRoom(b testing.TB, srv *server.Server, room string, n int) {
	b.Helper()
	fillRoomAt(b, srv.NATSURL(), room, n)
}

// fillRoomAt stores n events in room through the NATS at url and returns
// the sequence of the last.
func fillRoomAt(b testing.TB, url, room string, n int) uint64 {
	b.Helper()
	subject := "roomcast.rooms." + wire.MustRoom(room).Token()
	return publishAll(b, url, n, func(i int) *nats.Msg {
		return &nats.Msg{Subject: subject, Data: fmt.Appendf(nil, `{"event":"task.assigned","data":{"n":%d,"task_id":"t%d","pool_id":"p1"}}`, i, i)}
	})
}

// publishAll stores the n messages msg makes with async publishes through
// the NATS at url, and returns the last one's sequence.
func publishAll(b testing.TB, url string, n int, msg func(i int) *nats.Msg) uint64 {
	b.Helper()
	js, err := jetstream.New(natstest.Connect(b, url), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	var last jetstream.PubAckFuture
	for i := range n {
		if last, err = js.PublishMsgAsync(msg(i), jetstream.WithStallWait(30*time.Second)); err != nil {
			b.Fatal(err)
		}
		if i%2048 == 2047 {
			// In steps, well within the pending limit: a slow server
			// (under -race, say) would stall the publisher otherwise.
			waitPublished(b, js)
		}
	}
	waitPublished(b, js)
	select {
	case ack := <-last.Ok():
		return ack.Sequence
	case err := <-last.Err():
		b.Fatal(err)
	}
	return 0
}

// waitPublished waits until js has every acknowledgement it waits for.
func waitPublished(b testing.TB, js jetstream.JetStream) {
	b.Helper()
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("publishing did not complete")
	}
}

// BenchmarkReplay100k replays a 100,000-event room to one client from the
// start: events/s is the replay throughput. The client runs in the same
// process, on the same cores, so what it spends per event is taken from
// the node: it reads through a buffer, as the bench command does. "decode"
// decodes every event with encoding/json (as client.Read does); "raw"
// checks each event's seq and order without decoding the rest, so the
// figure is the node's, not the test client's.
//
//	go test -run '^$' -bench Replay100k -count 5 ./internal/server/
func BenchmarkReplay100k(b *testing.B) {
	const n = 100_000
	srv := startNode(b, nil, func(c *config.Serve) { c.RetentionMaxPerRoom = n })
	fillRoom(b, srv, "pool:big", n)
	for _, mode := range []string{"decode", "raw"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				c := dialBuffered(b, srv)
				since := uint64(0)
				if err := c.Subscribe("r", "pool:big", &since); err != nil {
					b.Fatal(err)
				}
				if got := readReplay(b, c, mode == "raw"); got != n {
					b.Fatalf("replayed %d, want %d", got, n)
				}
				_ = c.Close()
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// readReplay reads events, checking that their seqs grow, until the
// subscribe response, which it checks against the count; it returns the
// count.
func readReplay(b *testing.B, c *client.Conn, raw bool) int {
	b.Helper()
	got, prev := 0, uint64(0)
	_ = c.NetConn().SetReadDeadline(time.Now().Add(time.Minute))
	for {
		p, err := c.NextText() // valid until the next read: checked, not kept
		if err != nil {
			b.Fatalf("after %d events: %v", got, err)
		}
		if !bytes.HasPrefix(p, []byte(`{"type":"event"`)) {
			var m wire.Message
			var r wire.SubscribeResult
			if err := json.Unmarshal(p, &m); err != nil || m.Type != wire.TypeResponse || json.Unmarshal(m.Data, &r) != nil || r.Replayed != got {
				b.Fatalf("after %d events: %s", got, p)
			}
			return got
		}
		seq := rawSeq(p)
		if !raw {
			var m wire.Message
			if err := json.Unmarshal(p, &m); err != nil {
				b.Fatal(err)
			}
			seq = m.Seq
		}
		if seq <= prev {
			b.Fatalf("seq %d after %d", seq, prev)
		}
		prev = seq
		got++
	}
}

// rawSeq finds the seq of an event the node encoded (wire.EventFrame puts
// it before ts and data, so the first "seq": is the event's).
func rawSeq(p []byte) uint64 {
	i := bytes.Index(p, []byte(`,"seq":`))
	if i < 0 {
		return 0
	}
	p = p[i+len(`,"seq":`):]
	var seq uint64
	for _, c := range p {
		if c < '0' || c > '9' {
			break
		}
		seq = seq*10 + uint64(c-'0')
	}
	return seq
}

// dialBuffered connects a client that reads through a 32 KiB buffer, so
// a stream of small frames costs few syscalls.
func dialBuffered(b *testing.B, srv *server.Server) *client.Conn {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := dialBufferedURL(ctx, wsURL(srv), 32<<10)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// dialBufferedURL connects a client that reads through a buffer of size.
func dialBufferedURL(ctx context.Context, url string, size int) (*client.Conn, error) {
	d := ws.Dialer{Timeout: 10 * time.Second, NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: nc, br: bufio.NewReaderSize(nc, size)}, nil
	}}
	return client.DialWith(ctx, d, url, nil)
}

// bufferedConn is a socket that reads through a buffer.
type bufferedConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// BenchmarkSubscribe measures a subscribe's round trip: live only, and
// resuming 10 events back, on a room with members already (so neither pays
// for setting up the room's feed). The difference is the resume's extra
// latency.
func BenchmarkSubscribe(b *testing.B) {
	srv := startNode(b, nil, nil)
	fillRoom(b, srv, "pool:sub", 1000)
	keep := dial(b, srv)
	res, _ := subscribe(b, keep, "pool:sub", nil)
	for _, mode := range []string{"live", "resume10"} {
		b.Run(mode, func(b *testing.B) {
			c := dial(b, srv)
			for range b.N {
				var since *uint64
				if mode == "resume10" {
					s := res.Seq - 10
					since = &s
				}
				subscribe(b, c, "pool:sub", since)
			}
		})
	}
}
