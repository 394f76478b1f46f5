package bus_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// A flood of live messages without the stream's headers is counted one by
// one, and logged once per interval with the count held back since the
// last line: whoever can publish to a live subject cannot flood the log.
func TestRefusedLiveMessagesAreLoggedOncePerInterval(t *testing.T) {
	b, nc, m, logBuf := loggedBus(t)
	var skew atomic.Int64 // the test's clock runs ahead of the real one by this
	bus.SetRefusedLogClock(b, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	live := bus.Subjects{Prefix: bus.DefaultPrefix}.Live
	r := wire.MustRoom("pool:flood")
	unsub, err := b.SubscribeLive(r, func(ev *wire.Event) { t.Errorf("a refused message was delivered: %+v", ev) }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	flood := func(n int) {
		t.Helper()
		for i := range n {
			if err := nc.Publish(live(r), []byte(fmt.Sprintf(`{"event":"e","data":{"n":%d}}`, i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// lines waits until the metric counts want messages and the log has
	// n lines, and returns them. The dispatcher takes messages one at a
	// time: once the last is counted, every line before it is written.
	lines := func(want float64, n int) []string {
		t.Helper()
		var got []string
		natstest.WaitFor(t, 10*time.Second, func() error {
			got = strings.Split(strings.TrimSpace(logBuf.String()), "\n")
			if logBuf.String() == "" {
				got = nil
			}
			if c := testutil.ToFloat64(m.ForgedLive); c != want || len(got) < n {
				return fmt.Errorf("%v refused, %d lines; want %v and %d:\n%s", c, len(got), want, n, logBuf.String())
			}
			return nil
		})
		return got
	}

	const burst = 1000
	flood(burst)
	got := lines(burst, 1)
	if len(got) != 1 || !strings.Contains(got[0], "did not republish") || !strings.Contains(got[0], "held_back=0") {
		t.Fatalf("%d messages in one interval, want one line with held_back=0:\n%s", burst, logBuf.String())
	}
	skew.Add(int64(bus.RefusedLogInterval)) // the next interval
	flood(1)
	got = lines(burst+1, 2)
	if len(got) != 2 || !strings.Contains(got[1], fmt.Sprintf("held_back=%d", burst-1)) {
		t.Fatalf("one more in the next interval, want a second line with held_back=%d:\n%s", burst-1, logBuf.String())
	}
}

// Stored events whose payload is not an event are counted at every read and
// logged once per interval: a publisher that stores thousands, read again
// by every resume, cannot flood the log either.
func TestBadPayloadsAreLoggedOncePerInterval(t *testing.T) {
	b, nc, m, logBuf := loggedBus(t)
	var skew atomic.Int64
	bus.SetBadPayloadLogClock(b, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	r := wire.MustRoom("pool:garbage")
	const stored = 300
	var last uint64
	for i := range stored {
		ack, err := js.Publish(t.Context(), bus.Subjects{Prefix: bus.DefaultPrefix}.Room(r), []byte(fmt.Sprintf("not json %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	replay := func() {
		t.Helper()
		if _, err := b.Replay(t.Context(), r, 0, last, func(ev *wire.Event) error {
			if ev.Err == nil {
				t.Errorf("event %d has no error: %+v", ev.Seq, ev)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	lines := func() []string {
		s := strings.TrimSpace(logBuf.String())
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	replay()
	replay()
	if c := testutil.ToFloat64(m.BadPayloads); c != 2*stored {
		t.Fatalf("%v bad payloads counted, want %d", c, 2*stored)
	}
	if got := lines(); len(got) != 1 || !strings.Contains(got[0], "bad payload") || !strings.Contains(got[0], "held_back=0") {
		t.Fatalf("%d bad payloads read in one interval, want one line with held_back=0:\n%s", 2*stored, logBuf.String())
	}
	skew.Add(int64(time.Minute))
	replay()
	if got := lines(); len(got) != 2 || !strings.Contains(got[1], fmt.Sprintf("held_back=%d", 2*stored-1)) {
		t.Fatalf("the next interval: want a second line with held_back=%d:\n%s", 2*stored-1, logBuf.String())
	}
}

// loggedBus is a bus with its stream on a NATS of its own, its metrics and
// its log, and the connection it uses.
func loggedBus(t *testing.T) (*bus.Bus, *nats.Conn, *metrics.Metrics, *servertest.SyncBuffer) {
	t.Helper()
	logBuf := &servertest.SyncBuffer{}
	nc := natstest.Connect(t, natstest.RunServer(t).ClientURL())
	m := metrics.NewUnregistered()
	b, err := bus.New(nc, bus.Options{Logger: slog.New(slog.NewTextHandler(logBuf, nil)), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b, nc, m, logBuf
}
