package wheel

import (
	"sync"
	"testing"
	"time"
)

// fired records when each timer fires.
type fired struct {
	mu sync.Mutex
	at map[int][]time.Time
}

func (f *fired) record(i int, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.at == nil {
		f.at = make(map[int][]time.Time)
	}
	f.at[i] = append(f.at[i], now)
}

func (f *fired) times(i int) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at[i]...)
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}

func TestTimersFireNotEarlyAndInOrderOfDue(t *testing.T) {
	w := New(5 * time.Millisecond)
	defer w.Close()
	var f fired
	start := time.Now()
	delays := []time.Duration{40 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond}
	for i, d := range delays {
		tm := w.NewTimer(func(now time.Time) time.Time { f.record(i, now); return time.Time{} })
		tm.Schedule(start.Add(d))
	}
	waitFor(t, "every timer fired", func() bool {
		return len(f.times(0)) == 1 && len(f.times(1)) == 1 && len(f.times(2)) == 1
	})
	for i, d := range delays {
		if got := f.times(i)[0].Sub(start); got < d {
			t.Errorf("timer %d fired after %s, want at least %s", i, got, d)
		}
	}
	if !f.times(1)[0].Before(f.times(2)[0]) || !f.times(2)[0].Before(f.times(0)[0]) {
		t.Errorf("fired out of order of due: %v", f.at)
	}
}

// A timer's function reschedules it by returning the next time; zero stops
// it. A timer further ahead than one turn of the wheel waits its turns.
func TestLazyReschedulingAndLongDelays(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Close()
	var f fired
	n := 0
	tm := w.NewTimer(func(now time.Time) time.Time {
		f.record(0, now)
		n++
		if n == 3 {
			return time.Time{}
		}
		return now.Add(2 * time.Millisecond)
	})
	tm.Schedule(time.Now())
	far := w.NewTimer(func(now time.Time) time.Time { f.record(1, now); return time.Time{} })
	start := time.Now()
	far.Schedule(start.Add(slots * 3 / 2 * time.Millisecond)) // a turn and a half
	waitFor(t, "the far timer fired", func() bool { return len(f.times(1)) == 1 })
	if got := f.times(1)[0].Sub(start); got < slots*3/2*time.Millisecond {
		t.Errorf("far timer fired after %s, before its turn", got)
	}
	if got := len(f.times(0)); got != 3 {
		t.Errorf("rescheduled timer fired %d times, want 3", got)
	}
}

// Stop keeps a timer from firing; scheduling it earlier moves it up, and
// scheduling it later than it is due changes nothing.
func TestStopAndScheduleEarlier(t *testing.T) {
	w := New(2 * time.Millisecond)
	defer w.Close()
	var f fired
	stopped := w.NewTimer(func(now time.Time) time.Time { f.record(0, now); return time.Time{} })
	stopped.Schedule(time.Now().Add(10 * time.Millisecond))
	stopped.Stop()
	moved := w.NewTimer(func(now time.Time) time.Time { f.record(1, now); return time.Time{} })
	start := time.Now()
	moved.Schedule(start.Add(time.Hour))
	moved.Schedule(start.Add(20 * time.Millisecond))
	moved.Schedule(start.Add(time.Hour)) // later than due: ignored
	marker := w.NewTimer(func(now time.Time) time.Time { f.record(2, now); return time.Time{} })
	marker.Schedule(start.Add(60 * time.Millisecond))
	waitFor(t, "the moved timer and the marker fired", func() bool { return len(f.times(1)) == 1 && len(f.times(2)) == 1 })
	if got := len(f.times(0)); got != 0 {
		t.Errorf("stopped timer fired %d times", got)
	}
	if got := len(f.times(1)); got != 1 {
		t.Errorf("moved timer fired %d times, want once (its stale entry must not fire)", got)
	}
}

// Close waits for the goroutine: no timer fires after it.
func TestNoTimerFiresAfterClose(t *testing.T) {
	w := New(time.Millisecond)
	var f fired
	tm := w.NewTimer(func(now time.Time) time.Time { f.record(0, now); return now })
	tm.Schedule(time.Now())
	waitFor(t, "the timer fired", func() bool { return len(f.times(0)) > 0 })
	w.Close()
	n := len(f.times(0))
	time.Sleep(10 * time.Millisecond) // a quiet period in which nothing may fire
	if got := len(f.times(0)); got != n {
		t.Fatalf("fired %d times after Close", got-n)
	}
	w.Close() // twice is fine
}

func BenchmarkScheduleAndFire(b *testing.B) {
	w := New(time.Millisecond)
	defer w.Close()
	timers := make([]*Timer, 10000)
	for i := range timers {
		timers[i] = w.NewTimer(func(time.Time) time.Time { return time.Time{} })
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		timers[i%len(timers)].Schedule(time.Now().Add(time.Duration(i%100) * time.Millisecond))
	}
}

// A timer stopped while its function runs stays stopped: what the function
// returns does not schedule it again.
func TestStopDuringTheFunctionSticks(t *testing.T) {
	w := New(time.Millisecond)
	defer w.Close()
	var f fired
	running, stopped := make(chan struct{}), make(chan struct{})
	var tm *Timer
	tm = w.NewTimer(func(now time.Time) time.Time {
		f.record(0, now)
		if len(f.times(0)) == 1 {
			close(running)
			<-stopped
		}
		return now.Add(time.Millisecond)
	})
	tm.Schedule(time.Now())
	<-running
	tm.Stop()
	close(stopped)
	marker := w.NewTimer(func(now time.Time) time.Time { f.record(1, now); return time.Time{} })
	marker.Schedule(time.Now().Add(20 * time.Millisecond))
	waitFor(t, "the marker fired", func() bool { return len(f.times(1)) == 1 })
	if got := len(f.times(0)); got != 1 {
		t.Fatalf("a timer stopped while running fired %d times", got)
	}
}
