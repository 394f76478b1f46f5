package latch

import (
	"sync"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestWaitersBeforeAndAfterFire(t *testing.T) {
	var l Latch
	before := l.Done()
	if closed(before) || l.Fired() {
		t.Fatal("an unfired latch is done")
	}
	if l.Done() != before {
		t.Fatal("two waiters got different channels before the fire")
	}
	l.Fire()
	l.Fire() // twice is fine
	if !closed(before) || !closed(l.Done()) || !l.Fired() {
		t.Fatal("a fired latch is not done")
	}
	var untouched Latch
	untouched.Fire()
	if !closed(untouched.Done()) {
		t.Fatal("a latch fired with nobody waiting is not done")
	}
}

// Waiters and the fire race; every waiter wakes, whoever came first.
func TestConcurrentWaitersAllWake(t *testing.T) {
	for range 200 {
		var l Latch
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				select {
				case <-l.Done():
				case <-time.After(10 * time.Second):
					t.Error("a waiter was not woken")
				}
			})
		}
		wg.Go(l.Fire)
		wg.Wait()
	}
}
