package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// streamRequests scrapes a node's count of requests to JetStream.
func streamRequests(tb testing.TB, srv *server.Server) float64 {
	tb.Helper()
	return scrapeSum(tb, srv, "roomcast_stream_requests_total{")
}

// scrapeSum scrapes a node's metrics and sums the lines that start with
// prefix (a metric's name and "{": all its labels).
func scrapeSum(tb testing.TB, srv *server.Server, prefix string) float64 {
	tb.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			tb.Fatalf("metrics line %q: %v", line, err)
		}
		total += v
	}
	return total
}

// BenchmarkMassResume: the clients of a node that died all resume at once
// on another node, each having missed `missed` events of its room (1,000
// clients in 100 rooms). "warm": the surviving node already had the rooms
// live (other clients of theirs were on it), so the missed events are in
// its rooms' tails; "cold": it had none of the rooms. Reports the time
// until the last client is live again (has every missed event and its
// subscribe response), from the first dial, and the JetStream requests
// per resume.
// One node on embedded NATS, and a node on a three-node cluster (R3).
//
//	go test -run '^$' -bench MassResume -benchtime 1x -count 3 ./internal/server/
func BenchmarkMassResume(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, tc := range []struct {
			name   string
			warm   bool
			missed int
		}{{"warm-100", true, 100}, {"cold-100", false, 100}, {"cold-600", false, 600}} {
			b.Run(fmt.Sprintf("nats%d/%s", nodes, tc.name), func(b *testing.B) {
				for range b.N {
					massResume(b, nodes, tc.warm, tc.missed)
				}
			})
		}
	}
}

func massResume(b *testing.B, nodes int, warm bool, missed int) {
	const rooms, perRoom = 100, 10
	b.StopTimer()
	var srv *server.Server
	var url string
	if nodes == 1 {
		srv = startNode(b, nil, nil)
		url = srv.NATSURL()
	} else {
		cluster := natstest.RunCluster(b, nodes)
		url = cluster.URLs()
		srv = startNode(b, nil, func(c *config.Serve) {
			c.NATS = config.List{url}
			c.StreamReplicas = nodes
		})
	}
	name := func(i int) string { return fmt.Sprintf("pool:m%d", i) }
	pub := newPublisher(b, url)
	since := make([]uint64, rooms)
	last := make([]uint64, rooms)
	for r := range rooms {
		since[r] = pub.event(name(r), "e", 0)
	}
	watchers := make([]*client.Conn, rooms)
	if warm {
		for r := range rooms {
			watchers[r] = dial(b, srv)
			subscribe(b, watchers[r], name(r), nil)
		}
	}
	for r := range rooms {
		last[r] = fillRoomAt(b, url, name(r), missed)
	}
	if warm { // once a watcher has them all, so has its room's tail
		for r := range rooms {
			readEvents(b, watchers[r], missed)
		}
	}

	before := streamRequests(b, srv)
	start := time.Now()
	b.StartTimer()
	var wg sync.WaitGroup
	errs := make(chan error, rooms*perRoom)
	for i := range rooms * perRoom {
		r := i % rooms
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- resumeOne(srv, name(r), since[r], last[r], missed)
		}()
	}
	wg.Wait()
	b.StopTimer()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	requests := streamRequests(b, srv) - before
	b.ReportMetric(float64(elapsed.Milliseconds()), "ms-all-live")
	b.ReportMetric(requests/float64(rooms*perRoom), "requests/resume")
}

// resumeOne resumes room from since and reads until it is live: it has
// every event up to last, with no gap and no duplicate, and the subscribe
// response, which follows the replay. The client reads through a buffer
// and checks each event's seq without decoding the rest, so the figure is
// the node's more than the in-process clients'.
func resumeOne(srv *server.Server, room string, since, last uint64, missed int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := dialBufferedURL(ctx, wsURL(srv), 4<<10)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Subscribe("r", room, &since); err != nil {
		return err
	}
	got, prev, live := 0, since, false
	for prev < last || !live {
		p, err := c.ReadText(time.Now().Add(time.Minute))
		if err != nil {
			return fmt.Errorf("%s after %d events: %w", room, got, err)
		}
		if bytes.HasPrefix(p, []byte(`{"type":"event"`)) {
			seq := rawSeq(p)
			if seq <= prev {
				return fmt.Errorf("%s: seq %d after %d", room, seq, prev)
			}
			prev = seq
			got++
			continue
		}
		var m wire.Message
		if err := json.Unmarshal(p, &m); err != nil || m.Type != wire.TypeResponse {
			return fmt.Errorf("%s: %s", room, p)
		}
		live = true
	}
	if got != missed {
		return fmt.Errorf("%s: %d events, want %d", room, got, missed)
	}
	return nil
}
