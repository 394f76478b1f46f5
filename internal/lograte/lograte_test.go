package lograte

import (
	"sync"
	"testing"
	"time"
)

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestOneOccurrencePerIntervalWithTheCountHeldBack(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(time.Minute, c.now)
	if ok, skipped := l.Allow(); !ok || skipped != 0 {
		t.Fatalf("first occurrence: ok %v skipped %d, want true 0", ok, skipped)
	}
	for i := 0; i < 41; i++ {
		c.advance(time.Second)
		if ok, _ := l.Allow(); ok {
			t.Fatalf("occurrence %d within the interval was let through", i+2)
		}
	}
	c.advance(20 * time.Second) // 61 s after the first
	ok, skipped := l.Allow()
	if !ok || skipped != 41 {
		t.Fatalf("after the interval: ok %v skipped %d, want true 41", ok, skipped)
	}
	c.advance(time.Minute)
	if ok, skipped := l.Allow(); !ok || skipped != 0 {
		t.Fatalf("a quiet interval later: ok %v skipped %d, want true 0", ok, skipped)
	}
}

func TestConcurrentOccurrencesAreAllCounted(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	l := New(time.Minute, c.now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	let := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				if ok, _ := l.Allow(); ok {
					mu.Lock()
					let++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if let != 1 {
		t.Fatalf("%d of 800 occurrences in one instant let through, want 1", let)
	}
	c.advance(time.Minute)
	if ok, skipped := l.Allow(); !ok || skipped != 799 {
		t.Fatalf("next interval: ok %v skipped %d, want true 799", ok, skipped)
	}
}
