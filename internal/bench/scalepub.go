package bench

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/wire"
)

// scalePublisher publishes the scale-out scenario's events while the
// clients move: one at a time, each retried with the same Nats-Msg-Id until
// it is stored, so every room's counter goes 1, 2, ... with no hole a
// client could mistake for a lost event, and no event stored twice.
type scalePublisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	subjects []string
	every    time.Duration

	cancel context.CancelFunc
	done   chan struct{} // closed when the loop has ended
	// Written by the loop, read after done.
	published int64
	acked     []uint64 // by room: the last counter stored
}

func newScalePublisher(cfg ScaleOutConfig) (*scalePublisher, error) {
	nc, js, err := connectPreloader(cfg.NATSURL, "roomcast bench scale-out")
	if err != nil {
		return nil, err
	}
	subj := bus.Subjects{Prefix: cfg.Prefix}
	p := &scalePublisher{nc: nc, js: js, subjects: make([]string, cfg.Rooms), acked: make([]uint64, cfg.Rooms),
		every: time.Duration(float64(time.Second) / cfg.Rate), done: make(chan struct{})}
	for i := range p.subjects {
		p.subjects[i] = subj.Room(wire.MustRoom(RoomName(i)))
	}
	return p, nil
}

// start publishes until stop (or ctx ends).
func (p *scalePublisher) start(ctx context.Context) {
	ctx, p.cancel = context.WithCancel(ctx)
	go p.run(ctx)
}

func (p *scalePublisher) run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		room := i % len(p.subjects)
		if !p.publish(ctx, room, p.acked[room]+1) {
			return
		}
		p.acked[room]++
		p.published++
	}
}

// publish stores counter n of room, retrying until it is stored; false
// when ctx ended first (the event may or may not be stored).
func (p *scalePublisher) publish(ctx context.Context, room int, n uint64) bool {
	m := nats.NewMsg(p.subjects[room])
	m.Data = tickPayload(time.Now().UnixNano(), n)
	m.Header.Set(jetstream.MsgIDHeader, p.subjects[room]+"/"+strconv.FormatUint(n, 10))
	for {
		actx, cancel := context.WithTimeout(ctx, ackTimeout)
		_, err := p.js.PublishMsg(actx, m)
		cancel()
		if err == nil {
			return true
		}
		if !sleepUntil(ctx, time.Now().Add(50*time.Millisecond)) {
			return false
		}
	}
}

// stop ends publishing and returns the events stored and, by room, the
// last counter stored. An event interrupted by stop was not counted: a
// client that receives it anyway is not wrong, one that does not is not
// counted as missing it.
func (p *scalePublisher) stop() (int64, []uint64) {
	p.cancel()
	<-p.done
	return p.published, p.acked
}

func (p *scalePublisher) close() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	p.nc.Close()
}
