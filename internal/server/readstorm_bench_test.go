package server_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// BenchmarkReplayStorm: attackers, each on its own connection, loop
// subscribe with since 0 on a room of 20,000 events, read 100 events,
// unsubscribe (and read what the node still sends until the unsubscribe's
// answer), again. Meanwhile a victim on another connection resumes a room
// of 2,000 events from the start, once per iteration: ms-victim is the
// median time until it is live (every event and its subscribe response).
// The last case paces each connection to 1,000 events a second read from
// the stream (--replay-rate) instead of the default 5,000.
// requests/event is the node's JetStream requests per event delivered to
// anyone over the run: the read amplification.
//
//	go test -run '^$' -bench ReplayStorm -benchtime 10x -count 3 ./internal/server/
func BenchmarkReplayStorm(b *testing.B) {
	const big, small = 20_000, 2_000
	for _, tc := range []struct{ attackers, rate int }{{0, 0}, {20, 0}, {20, 1000}} {
		attackers := tc.attackers
		name := fmt.Sprintf("attackers-%d", attackers)
		if tc.rate > 0 {
			name += fmt.Sprintf("/replay-rate-%d", tc.rate)
		}
		b.Run(name, func(b *testing.B) {
			srv := startNode(b, nil, func(c *config.Serve) {
				c.RetentionMaxPerRoom = big
				if tc.rate > 0 {
					c.ReplayRate = tc.rate
				}
			})
			fillRoom(b, srv, "pool:storm", big)
			fillRoom(b, srv, "pool:victim", small)
			ctx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
			var delivered atomic.Int64
			var wg sync.WaitGroup
			for range attackers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = loopReplays(ctx, srv, "pool:storm", 100, &delivered)
				}()
			}
			defer func() { stop(); wg.Wait() }()
			time.Sleep(time.Second) // the storm under way (a benchmark's warm-up, not a wait for a condition)
			before := streamRequests(b, srv)
			d0 := delivered.Load()
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				c := dialBuffered(b, srv)
				since := uint64(0)
				if err := c.Subscribe("v", "pool:victim", &since); err != nil {
					b.Fatal(err)
				}
				if got := readReplay(b, c, true); got != small {
					b.Fatalf("victim replayed %d, want %d", got, small)
				}
				times = append(times, time.Since(start))
				delivered.Add(small)
				_ = c.Close()
			}
			b.StopTimer()
			requests := streamRequests(b, srv) - before
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-victim")
			b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "ms-victim-max")
			b.ReportMetric(requests/float64(max(delivered.Load()-d0, 1)), "requests/event")
		})
	}
}

// loopReplays is one attacker: on one connection, subscribe from the start,
// read take events, unsubscribe, read until the unsubscribe's answer,
// again, until ctx ends. It counts the events it receives in delivered.
func loopReplays(ctx context.Context, srv *server.Server, room string, take int, delivered *atomic.Int64) error {
	c, err := dialBufferedURL(ctx, wsURL(srv), 32<<10)
	if err != nil {
		return err
	}
	defer c.Close()
	for ctx.Err() == nil {
		since := uint64(0)
		if err := c.Subscribe("s", room, &since); err != nil {
			return err
		}
		if err := drainReplay(ctx, c, room, take, delivered); err != nil {
			return err
		}
	}
	return nil
}

// drainReplay reads a replay's events, unsubscribes after take of them (or
// at the subscribe response, if sooner) and reads until the answer.
func drainReplay(ctx context.Context, c *client.Conn, room string, take int, delivered *atomic.Int64) error {
	n, unsubscribed := 0, false
	unsubscribe := func() error {
		unsubscribed = true
		return c.Request(wire.EventUnsubscribe, "u", map[string]string{"channel": room})
	}
	for ctx.Err() == nil {
		p, err := c.ReadText(time.Now().Add(30 * time.Second))
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(p, []byte(`{"type":"event"`)):
			delivered.Add(1)
			if n++; n == take && !unsubscribed {
				err = unsubscribe()
			}
		case bytes.Contains(p, []byte(`"id":"u"`)):
			return nil
		case !unsubscribed:
			err = unsubscribe()
		}
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// BenchmarkLeavingReplays: a client subscribes with since 0 to a room of
// 20,000 events, takes 100 events and leaves (closes its connection, which
// ends its catch-up), one after another. requests/leave is the JetStream
// requests each cost: what the stream was made to answer for 100 events
// used.
//
//	go test -run '^$' -bench LeavingReplays -benchtime 50x -count 3 ./internal/server/
func BenchmarkLeavingReplays(b *testing.B) {
	const big = 20_000
	srv := startNode(b, nil, func(c *config.Serve) { c.RetentionMaxPerRoom = big })
	fillRoom(b, srv, "pool:leave", big)
	before := streamRequests(b, srv)
	b.ResetTimer()
	for range b.N {
		c := dialBuffered(b, srv)
		since := uint64(0)
		if err := c.Subscribe("s", "pool:leave", &since); err != nil {
			b.Fatal(err)
		}
		for range 100 {
			if m := read(b, c); m.Type != wire.TypeEvent {
				b.Fatalf("got %+v, want an event", m)
			}
		}
		_ = c.Close()
	}
	b.StopTimer()
	b.ReportMetric((streamRequests(b, srv)-before)/float64(b.N), "requests/leave")
}
