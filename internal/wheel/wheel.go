// Package wheel is a hashed timer wheel: one goroutine and one ticker serve
// every timer of a node (keep-alive checks of tens of thousands of idle
// connections, their token expiries), where a runtime timer each would cost
// a heap entry and a wake-up per connection.
//
// Timers are lazy: a timer's function, run when the timer is due, returns
// when it next wants to run. A connection that stays busy therefore costs
// the wheel nothing per message, only one look per keep-alive period, when
// its function finds the connection was active and asks to be woken later.
// Timers fire up to one tick late, never early.
package wheel

import (
	"sync"
	"sync/atomic"
	"time"
)

// slots is the wheel's size: timers further ahead than slots ticks wait
// in their slot for as many turns as they need.
const slots = 1024

// Wheel runs timers to a tick's precision. Its methods and its timers'
// methods are safe for concurrent use.
type Wheel struct {
	tick  time.Duration
	start time.Time

	mu    sync.Mutex
	slots [slots][]entry // guarded by mu
	now   int64          // guarded by mu: the last tick processed

	// clock is the time of the last tick, Unix ns (Now).
	clock atomic.Int64

	stop chan struct{}
	done chan struct{}
}

// entry is a timer's place in a slot. A timer rescheduled earlier leaves
// its old entry behind; at says which of them is current.
type entry struct {
	t  *Timer
	at int64
}

// Timer is one lazily rescheduled timer.
type Timer struct {
	w       *Wheel
	fn      func(now time.Time) time.Time
	at      int64 // guarded by w.mu: the tick it is due at; 0 when not scheduled
	stopped bool  // guarded by w.mu: Stop was called, and Schedule not since
}

// New starts a wheel whose timers fire at multiples of tick; Close stops it.
func New(tick time.Duration) *Wheel {
	if tick <= 0 {
		tick = 100 * time.Millisecond
	}
	w := &Wheel{tick: tick, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	w.clock.Store(w.start.UnixNano())
	go w.run()
	return w
}

// Now is the time of the wheel's last tick in Unix nanoseconds: a clock
// up to a tick behind that costs one atomic load, for what is read far
// more often than it needs precision (a send queue's age is stamped on
// every delivery to an idle connection; time.Now costs 170-250 ns on a
// VM whose clock source is kvm-clock).
func (w *Wheel) Now() int64 { return w.clock.Load() }

// Close stops the wheel; no timer fires after it returns.
func (w *Wheel) Close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// NewTimer returns a timer that calls fn when due, on the wheel's
// goroutine, with the time; fn returns when the timer is next due, or the
// zero time to stop. fn must be quick and must not block: every timer of
// the node waits for it. The timer starts stopped; Schedule starts it.
func (w *Wheel) NewTimer(fn func(now time.Time) time.Time) *Timer {
	return &Timer{w: w, fn: fn}
}

// Schedule makes t due at the tick at or after at, unless it is already
// due sooner.
func (t *Timer) Schedule(at time.Time) {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	t.stopped = false
	t.scheduleLocked(at)
}

// scheduleLocked needs w.mu.
func (t *Timer) scheduleLocked(at time.Time) {
	w := t.w
	tick := max(w.tickOf(at), w.now+1)
	if t.at != 0 && t.at <= tick {
		return
	}
	t.at = tick
	s := &w.slots[tick%slots]
	*s = append(*s, entry{t: t, at: tick})
}

// Stop keeps t from firing until it is scheduled again, also when its
// function is running now: what that returns is ignored.
func (t *Timer) Stop() {
	t.w.mu.Lock()
	t.at = 0
	t.stopped = true
	t.w.mu.Unlock()
}

// reschedule is Schedule for what the timer's function returned, unless
// the timer was stopped while it ran.
func (t *Timer) reschedule(at time.Time) {
	t.w.mu.Lock()
	defer t.w.mu.Unlock()
	if !t.stopped {
		t.scheduleLocked(at)
	}
}

// tickOf is the tick at or after at.
func (w *Wheel) tickOf(at time.Time) int64 {
	d := at.Sub(w.start)
	return int64((d + w.tick - 1) / w.tick)
}

// run is the wheel's goroutine: each tick it fires what is due.
func (w *Wheel) run() {
	defer close(w.done)
	ticker := time.NewTicker(w.tick)
	defer ticker.Stop()
	var due []*Timer
	for {
		select {
		case <-w.stop:
			return
		case now := <-ticker.C:
			w.clock.Store(now.UnixNano())
			// Rounded down: the ticks that have wholly passed, so no
			// timer fires before its time.
			due = w.collect(int64(now.Sub(w.start)/w.tick), due[:0])
			for i, t := range due {
				if next := t.fn(now); !next.IsZero() {
					t.reschedule(next)
				}
				due[i] = nil
			}
		}
	}
}

// collect takes the timers due up to tick out of the wheel, catching up
// with ticks the goroutine missed.
func (w *Wheel) collect(tick int64, due []*Timer) []*Timer {
	w.mu.Lock()
	defer w.mu.Unlock()
	if tick-w.now > slots {
		// Far behind (the process was stopped): one turn of the wheel
		// visits every slot, and fires whatever is overdue in each.
		w.now = tick - slots
	}
	for ; w.now < tick; w.now++ {
		n := w.now + 1
		s := &w.slots[n%slots]
		kept := (*s)[:0]
		for _, e := range *s {
			switch {
			case e.t.at != e.at: // stopped or rescheduled: stale
			case e.at > n: // due in a later turn of the wheel
				kept = append(kept, e)
			default:
				e.t.at = 0
				due = append(due, e.t)
			}
		}
		clear((*s)[len(kept):])
		*s = kept
		if len(kept) == 0 && cap(kept) > 64 {
			*s = nil // give back what a crowd of timers left
		}
	}
	return due
}
