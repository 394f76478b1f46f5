package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/wire"
)

// ackTimeout bounds the wait for one publish acknowledgement.
const ackTimeout = 10 * time.Second

// publisher publishes the bench events with JetStream async publish, as
// workers do, with at most cfg.MaxInFlight waiting for acknowledgement; or,
// for the reference (ProtocolNATS) and the floor (ProtocolFloor, on the
// rooms' subjects), with core NATS, where an event counts as acknowledged
// once a flush proves the server has it.
type publisher struct {
	// Set at construction.
	cfg      *Config
	nc       *nats.Conn
	js       jetstream.JetStream // nil: core NATS
	subjects []string            // by room index
	tally    *tally
	// order is the rooms in the order a round publishes to them; nil:
	// by index.
	order []int
}

// publishResult is what the publisher did.
type publishResult struct {
	acked  []int64 // acknowledged events by room index
	errors int64   // events not acknowledged
	start  time.Time
	sent   time.Time // when the last event was sent
}

// newPublisher connects to NATS. The caller closes it.
func newPublisher(cfg *Config, t *tally) (*publisher, error) {
	nc, err := nats.Connect(cfg.NATSURL, append(cfg.NATSOptions, nats.Name("roomcast bench"), nats.Timeout(cfg.DialTimeout))...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", cfg.NATSURL, err)
	}
	p := &publisher{cfg: cfg, nc: nc, tally: t, subjects: make([]string, cfg.Rooms)}
	for i := range p.subjects {
		p.subjects[i] = roomSubject(cfg, i)
	}
	if cfg.Protocol != ProtocolRoomcast { // core NATS: the reference and the floor
		return p, nil
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight+8), // our own bound comes first
		jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p.js = js
	return p, nil
}

// roomSubject is the subject the events of bench room i are published to.
func roomSubject(cfg *Config, i int) string {
	if cfg.Protocol == ProtocolNATS {
		return natsSubject(i)
	}
	return bus.Subjects{Prefix: cfg.Prefix}.Room(wire.MustRoom(RoomName(i)))
}

func (p *publisher) close() { p.nc.Close() }

// pending is one event waiting for its acknowledgement.
type pending struct {
	f    jetstream.PubAckFuture
	room int
}

// run publishes cfg.events() events at cfg.Rate per second, event i to room
// i mod Rooms with that room's counter n = 1, 2, ..., and waits for every
// acknowledgement (each bounded by ackTimeout). It stops early when ctx ends.
func (p *publisher) run(ctx context.Context) publishResult {
	if p.js == nil {
		return p.runCore(ctx)
	}
	res := publishResult{acked: make([]int64, p.cfg.Rooms)}
	futures := make(chan pending, p.cfg.MaxInFlight)
	var ackErrors int64
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		ackErrors = p.collect(ctx, futures, res.acked)
	}()

	res.start = time.Now()
	p.paced(ctx, res.start, func(room int, payload []byte) bool {
		f, err := p.js.PublishAsync(p.subjects[room], payload)
		if err != nil {
			p.tally.add("publish", fmt.Errorf("%s: %w", p.subjects[room], err))
			res.errors++
			return true
		}
		select {
		case futures <- pending{f: f, room: room}: // blocks while MaxInFlight wait
			return true
		case <-ctx.Done():
			res.errors++
			return false
		}
	})
	res.sent = time.Now()
	close(futures)
	<-collected
	res.errors += ackErrors
	return res
}

// runCore is run with core NATS: events are sent at the rate, and counted
// as acknowledged after a flush (a PING answered behind them) succeeds.
func (p *publisher) runCore(ctx context.Context) publishResult {
	res := publishResult{acked: make([]int64, p.cfg.Rooms)}
	sent := make([]int64, p.cfg.Rooms)
	res.start = time.Now()
	p.paced(ctx, res.start, func(room int, payload []byte) bool {
		if err := p.nc.Publish(p.subjects[room], payload); err != nil {
			p.tally.add("publish", fmt.Errorf("%s: %w", p.subjects[room], err))
			res.errors++
			return true
		}
		sent[room]++
		return true
	})
	res.sent = time.Now()
	if err := p.nc.FlushTimeout(ackTimeout); err != nil {
		p.tally.add("publish", fmt.Errorf("flush: %w", err))
		for _, n := range sent {
			res.errors += n
		}
		return res
	}
	copy(res.acked, sent)
	return res
}

// paced calls send with each event of the run at its time from start, the
// rooms in turn (in order, when set), each event carrying its room's next counter, until the
// run's events are sent, ctx ends or send returns false.
func (p *publisher) paced(ctx context.Context, start time.Time, send func(room int, payload []byte) bool) {
	counters := make([]uint64, p.cfg.Rooms)
	for i := range p.cfg.events() {
		if !sleepUntil(ctx, start.Add(time.Duration(float64(i)*float64(time.Second)/p.cfg.Rate))) {
			return
		}
		room := int(i % int64(p.cfg.Rooms))
		if len(p.order) > 0 {
			room = p.order[int(i%int64(len(p.order)))]
		}
		counters[room]++
		if !send(room, tickPayload(time.Now().UnixNano(), counters[room])) {
			return
		}
	}
}

// collect waits for each acknowledgement in publishing order, counting the
// acknowledged events by room, and returns how many failed.
func (p *publisher) collect(ctx context.Context, futures <-chan pending, acked []int64) (failed int64) {
	for pd := range futures {
		select {
		case <-pd.f.Ok():
			acked[pd.room]++
		case err := <-pd.f.Err():
			p.tally.add("publish", fmt.Errorf("%s: %w", p.subjects[pd.room], err))
			failed++
		case <-ctx.Done():
			failed++ // interrupted: not known to be stored
		}
	}
	return failed
}

// tickPayload is the worker payload of one bench event:
// {"event":"bench.tick","data":{"sent_ns":<unix ns>,"n":<counter>}}.
// Each call returns a new slice: the publisher keeps it for retries.
func tickPayload(sentNS int64, n uint64) []byte {
	b := make([]byte, 0, 80)
	b = append(b, `{"event":"`+tickEvent+`","data":{"sent_ns":`...)
	b = strconv.AppendInt(b, sentNS, 10)
	b = append(b, `,"n":`...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, "}}"...)
}

// sleepUntil waits until t; false means ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
