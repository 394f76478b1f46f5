package edge

import (
	"context"
	"time"

	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/requester"
	"github.com/roomcast/roomcast/internal/wire"
)

// A connection's requests are handled one at a time, so a message that
// arrives during a subscribe's catch-up waits for it. An unsubscribe, or a
// new subscribe, of the room being caught up makes that catch-up moot:
// Arrived, which the reader calls as soon as a message is complete, cancels
// it, and the subscribe is answered CANCELLED. So a client that gives up on
// a long replay (or starts it over) is answered at once, and the node stops
// reading the stream for it.
//
// The rate limit is decided there too, when a message arrives, so that a
// message over the limit cancels nothing: the verdicts wait in order for
// the handler calls they belong to.

var _ conn.Arriver = (*session)(nil)

// rateVerdict is the rate limit's decision on one message.
type rateVerdict uint8

const (
	admitted    rateVerdict = iota
	rateRefused             // answer RATE_LIMITED
	rateAbusive             // close with 4029
)

// rateQueue is a first in, first out queue of the decisions on messages
// that arrived and are not handled yet: at most three (one handled, one
// waiting, one the reader holds), so a small ring.
type rateQueue struct {
	v    [4]rateVerdict
	head uint8
	n    uint8
}

func (q *rateQueue) push(v rateVerdict) {
	if int(q.n) == len(q.v) {
		return // cannot happen (see above); the message is decided when handled
	}
	q.v[(int(q.head)+int(q.n))%len(q.v)] = v
	q.n++
}

func (q *rateQueue) pop() (rateVerdict, bool) {
	if q.n == 0 {
		return 0, false
	}
	v := q.v[q.head]
	q.head = uint8((int(q.head) + 1) % len(q.v))
	q.n--
	return v, true
}

// joining is a subscribe whose catch-up is in flight. A session points to
// one only meanwhile: most connections are idle, and this is 40 bytes.
type joining struct {
	room      wire.Room
	cancel    context.CancelFunc
	cancelled bool // a later message of the same room cancelled it
}

// Arrived decides a message's rate limit and, for a well-formed
// subscribe or unsubscribe within it whose room is being joined, cancels
// that join.
func (ss *session) Arrived(_ *conn.Conn, p []byte, binary bool) {
	ss.mu.Lock()
	v := ss.decide(time.Now())
	ss.verdicts.push(v)
	inFlight := ss.join != nil
	ss.mu.Unlock()
	if v != admitted || binary || !inFlight {
		return
	}
	req, err := wire.DecodeRequest(p)
	if err != nil || req.Type != wire.TypeRequest || (req.Event != wire.EventSubscribe && req.Event != wire.EventUnsubscribe) {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.join != nil && ss.join.room == req.Room {
		ss.join.cancelled = true
		ss.join.cancel()
	}
}

// decide takes a token for a message at now. Needs mu.
func (ss *session) decide(now time.Time) rateVerdict {
	switch {
	case ss.limit.allow(now):
		return admitted
	case ss.limit.abusive():
		return rateAbusive
	}
	return rateRefused
}

// admit returns the verdict on the message about to be handled: the one
// Arrived took, or one taken now for a message that came another way.
func (ss *session) admit() rateVerdict {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if v, ok := ss.verdicts.pop(); ok {
		return v
	}
	return ss.decide(time.Now())
}

// startJoin records a join of r as in flight and returns its context:
// done when the connection closes or a later message of r cancels it.
// closedContext is a parent without a goroutine (see AfterFunc below).
func (ss *session) startJoin(r wire.Room) context.Context {
	ctx, cancel := context.WithCancel(closedContext{ss.c})
	ss.mu.Lock()
	ss.join = &joining{room: r, cancel: cancel}
	ss.mu.Unlock()
	// The connection is who reads (the bus shares its reads fairly by
	// reader). The value goes on top of the cancel: under it, the cancel
	// would no longer see closedContext's AfterFunc and would start a
	// goroutine to watch the close.
	return requester.With(ctx, ss.c)
}

// endJoin ends the join in flight; it reports whether it was cancelled.
func (ss *session) endJoin() (cancelled bool) {
	ss.mu.Lock()
	j := ss.join
	ss.join = nil
	ss.mu.Unlock()
	j.cancel()
	return j.cancelled
}

// closedContext is a context that is done when its connection closes, so
// work for a connection ends with it. Its AfterFunc lets a context derived
// from it (context.WithCancel) learn of the close without a goroutine
// watching Done.
type closedContext struct{ c *conn.Conn }

func (closedContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (cc closedContext) Done() <-chan struct{}    { return cc.c.Closed() }
func (cc closedContext) Err() error {
	select {
	case <-cc.c.Closed():
		return context.Canceled
	default:
		return nil
	}
}
func (closedContext) Value(any) any { return nil }

// AfterFunc runs f once the connection closes; the context package looks
// for this method on a parent (its afterFuncer).
func (cc closedContext) AfterFunc(f func()) (stop func() bool) { return cc.c.AfterClose(f) }
