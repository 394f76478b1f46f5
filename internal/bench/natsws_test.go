package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/natstest"
)

// startReference starts a NATS server with a WebSocket listener on loopback,
// the reference target, and returns its WebSocket and client URLs.
func startReference(t *testing.T) (wsURL, natsURL string) {
	t.Helper()
	s := natstest.RunServerWith(t, func(o *server.Options) {
		o.Websocket.Host, o.Websocket.Port, o.Websocket.NoTLS = "127.0.0.1", -1, true
	})
	ports := s.PortsInfo(10 * time.Second)
	if ports == nil || len(ports.WebSocket) == 0 {
		t.Fatal("the NATS server has no WebSocket listener")
	}
	return ports.WebSocket[0], s.ClientURL()
}

func TestNATSParser(t *testing.T) {
	type msg struct{ subject, payload string }
	var got []msg
	var pings, pongs int
	var errs []string
	p := natsParser{
		onMsg:  func(s, b []byte) { got = append(got, msg{string(s), string(b)}) },
		onPing: func() { pings++ },
		onPong: func() { pongs++ },
		onErr:  func(m string) { errs = append(errs, m) },
	}
	frames := []string{
		"INFO {\"server_id\":\"x\"}\r\n+OK\r\n",
		// Several messages in one frame, one with a reply subject.
		"MSG bench.r0 1 5\r\nhello\r\nMSG bench.r1 2 _INBOX.x 3\r\nabc\r\nPING\r\n",
		// One message split over three frames, inside the line and the payload.
		"MSG bench.r", "2 1 11\r\nhello ", "world\r\nPONG\r\n",
		// An empty payload, and a payload holding CRLF.
		"MSG a 1 0\r\n\r\nMSG b 1 4\r\n\r\n\r\n\r\n",
		"-ERR 'Slow Consumer'\r\n",
	}
	for _, f := range frames {
		if err := p.feed([]byte(f)); err != nil {
			t.Fatalf("feed %q: %v", f, err)
		}
	}
	want := []msg{{"bench.r0", "hello"}, {"bench.r1", "abc"}, {"bench.r2", "hello world"}, {"a", ""}, {"b", "\r\n\r\n"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("messages %q, want %q", got, want)
	}
	if pings != 1 || pongs != 1 || len(errs) != 1 || len(p.buf) != 0 {
		t.Errorf("pings %d, pongs %d, errors %q, %d bytes left; want 1, 1, one, 0", pings, pongs, errs, len(p.buf))
	}
	for _, bad := range []string{"MSG x 1 nope\r\n", "BOGUS\r\n", "MSG x\r\n", "MSG a 1 b c 5\r\n"} {
		var q natsParser
		if err := q.feed([]byte(bad)); err == nil {
			t.Errorf("feed %q: no error", bad)
		}
	}
}

// A load run against the reference delivers every event over NATS/WebSocket
// and measures the server's CPU (here the test process's own).
func TestBenchAgainstReference(t *testing.T) {
	wsURL, natsURL := startReference(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep := runBench(ctx, t, Config{
		URLs: []string{wsURL}, NATSURL: natsURL, Protocol: ProtocolNATS, ServerPID: os.Getpid(),
		Conns: 6, Rooms: 2, Rate: 40, Duration: 500 * time.Millisecond, Grace: 15 * time.Second,
	})
	if rep.Published != 20 || rep.Expected != 60 || rep.Received != 60 || rep.Lost != 0 || rep.Gaps != 0 || rep.OutOfOrder != 0 {
		t.Errorf("published %d, expected %d, received %d, lost %d, gaps %d, out of order %d; want 20, 60, 60, 0, 0, 0",
			rep.Published, rep.Expected, rep.Received, rep.Lost, rep.Gaps, rep.OutOfOrder)
	}
	// CPU time comes in 10ms ticks, which this short run may not fill:
	// TestProcStat checks that it moves.
	if rep.ServerCPUSeconds < 0 || rep.ServerCPUSeconds > 0 && rep.CPUMicrosPerDelivery != rep.ServerCPUSeconds*1e6/float64(rep.Received) {
		t.Errorf("server CPU %vs, %vµs per delivery", rep.ServerCPUSeconds, rep.CPUMicrosPerDelivery)
	}
}

func TestProcStat(t *testing.T) {
	cpu, err := procCPU(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("procCPU: %v, %v", cpu, err)
	}
	// Work until the next tick counts it.
	deadline := time.Now().Add(10 * time.Second)
	var sink uint64
	for now := cpu; now <= cpu; now, err = procCPU(os.Getpid()) {
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("procCPU stayed at %v: %v", cpu, err)
		}
		for i := range 100_000 {
			sink += uint64(i) * sink
		}
	}
	_ = sink
	rss, err := procRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("procRSS: %v, %v", rss, err)
	}
	if _, err := procRSS(1 << 30); err == nil || !strings.Contains(err.Error(), "server memory") {
		t.Fatalf("a missing process: %v", err)
	}
}
