// Package latch is a one-time signal whose channel is made only when
// somebody waits for it. Most of a node's signals (a connection's close, a
// room's set-up) fire with nobody waiting; a latch then costs one word,
// where a channel costs a hundred bytes more for every connection or room.
package latch

import "sync/atomic"

// Latch is fired once; Done returns a channel closed when it is. The zero
// value is an unfired latch. Its methods are safe for concurrent use.
type Latch struct {
	p atomic.Pointer[chan struct{}] // nil: unfired, nobody waiting; &fired: fired
}

// fired is the channel of every fired latch.
var fired = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Done returns a channel that is closed when the latch fires.
func (l *Latch) Done() <-chan struct{} {
	if p := l.p.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{})
	if l.p.CompareAndSwap(nil, &ch) {
		return ch // Fire will swap it out and close it
	}
	return *l.p.Load() // another waiter's channel, or Fire came first
}

// Fire closes the latch's channel, if anybody made it; later calls do
// nothing.
func (l *Latch) Fire() {
	if p := l.p.Swap(&fired); p != nil && p != &fired {
		close(*p)
	}
}

// Fired reports whether the latch has fired.
func (l *Latch) Fired() bool { return l.p.Load() == &fired }
