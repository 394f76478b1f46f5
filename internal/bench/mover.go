package bench

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// A mover's pause before it connects again after anything but a 4012 (a
// refused dial, a drain, a dropped socket): the first try waits
// moverPauseMin, each further one twice as long up to moverPauseMax, with
// jitter, as clients back off.
const (
	moverPauseMin = 100 * time.Millisecond
	moverPauseMax = 2 * time.Second
)

// moverSubscribeID is the id of every subscribe a mover sends.
const moverSubscribeID = "scale"

// mover is one client of the scale-out scenario. It follows one room and,
// whenever its connection ends, connects again to an edge picked at random
// among those running (as a Kubernetes Service routes a new connection) and
// resumes with since and epoch: at once after a 4012, which asks for just
// that, after a pause otherwise. It checks the room's counter (n = 1, 2,
// ... from the publisher) across its connections: no gap, no repeat.
type mover struct {
	room string
	idx  int // the room's index
	so   *scaleOut

	// Owned by the mover's goroutine.
	started bool   // a subscribe was answered
	lastSeq uint64 // the seq of the last event, or of the first answer
	epoch   string // of the stream lastSeq is a position in
	pause   time.Duration

	// Read by the sampler while the mover runs.
	edge  atomic.Int32  // the edge it is subscribed on now, -1 between connections
	lastN atomic.Uint64 // the last counter received

	// Written by the mover's goroutine, read once it ended (or as atomics).
	gaps        atomic.Int64 // counters skipped
	repeats     atomic.Int64 // counters received again or out of order
	unrecovered atomic.Int64 // resumes answered recovered: false
}

// run connects, follows and reconnects until ctx ends. first is taken
// before the first dial and released after it (it bounds the dials of the
// initial crowd).
func (m *mover) run(ctx context.Context, first chan struct{}) {
	m.edge.Store(-1)
	initial := true
	for ctx.Err() == nil {
		if initial {
			select {
			case first <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		edge, url := m.so.pick()
		c, err := m.dial(ctx, url)
		if initial {
			<-first
		}
		if err != nil {
			m.so.dialFailed.Add(1)
			m.wait(ctx)
			continue
		}
		if !initial {
			m.so.reconnects.Add(1)
		}
		initial = false
		code, err := m.session(ctx, c, edge)
		if ctx.Err() != nil {
			return // the bench ended it
		}
		m.so.closed(code, err)
		if wire.ReconnectAtOnce(code) {
			m.pause = 0
			continue // reconnect at once, as the code asks
		}
		m.wait(ctx)
	}
}

// dial connects to url within the dial timeout.
func (m *mover) dial(ctx context.Context, url string) (*client.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultDialTimeout)
	defer cancel()
	return client.DialWith(ctx, ws.Dialer{Timeout: DefaultDialTimeout, NetDial: dialBuffered}, url, nil)
}

// wait pauses before the next connection, backing off.
func (m *mover) wait(ctx context.Context) {
	m.pause = min(max(2*m.pause, moverPauseMin), moverPauseMax)
	d := m.pause/2 + rand.N(m.pause/2+1)
	sleepUntil(ctx, time.Now().Add(d))
}

// session subscribes on c (resuming after the first time) and reads until
// the connection ends, returning its close code (0 without a close frame)
// and the error that ended it.
func (m *mover) session(ctx context.Context, c *client.Conn, edge int) (ws.StatusCode, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.Close() }) // 1000, as a client leaving
	defer stop()
	defer c.NetConn().Close()
	defer m.edge.Store(-1)
	var err error
	if m.started {
		err = c.Resume(moverSubscribeID, m.room, m.lastSeq, m.epoch)
	} else {
		err = c.Subscribe(moverSubscribeID, m.room, nil)
	}
	for err == nil {
		var p []byte
		if p, err = c.ReadText(time.Time{}); err == nil {
			err = m.handle(p, edge)
		}
	}
	var ce *client.CloseError
	if errors.As(err, &ce) {
		return ce.Code, err
	}
	return 0, err
}

// errRefused ends a session whose subscribe was refused.
var errRefused = errors.New("subscribe refused")

// handle records one message.
func (m *mover) handle(p []byte, edge int) error {
	if seq, data, ok := parseEventFrame(p, m.room); ok {
		if d, ok := parseTick(data); ok && d.N > 0 {
			m.event(seq, d.N)
			return nil
		}
	}
	var msg wire.Message
	if err := json.Unmarshal(p, &msg); err != nil {
		return err
	}
	switch {
	case msg.Type == wire.TypeError:
		m.so.refused.Add(1)
		return errRefused
	case msg.Type != wire.TypeResponse || msg.ID != moverSubscribeID:
		return nil // pongs
	}
	var res wire.SubscribeResult
	if err := json.Unmarshal(msg.Data, &res); err != nil {
		return err
	}
	if m.started && !res.Recovered {
		m.unrecovered.Add(1)
	}
	if !m.started {
		m.lastSeq = res.Seq
	}
	m.started, m.epoch = true, res.Epoch
	m.edge.Store(int32(edge))
	return nil
}

// event checks one event's counter against the last.
func (m *mover) event(seq, n uint64) {
	last := m.lastN.Load()
	switch {
	case n <= last:
		m.repeats.Add(1)
		return
	case n > last+1:
		m.gaps.Add(int64(n - last - 1))
	}
	m.lastN.Store(n)
	m.lastSeq = seq
}
