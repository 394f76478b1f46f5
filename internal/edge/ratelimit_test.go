package edge

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newLimiter(5, 0)
	for i := range 5 {
		if !l.allow(now) {
			t.Fatalf("message %d of the first second's 5 refused", i+1)
		}
	}
	if l.allow(now) {
		t.Fatal("a sixth message in the same instant was allowed")
	}
	now = now.Add(200 * time.Millisecond) // one token back
	if !l.allow(now) || l.allow(now) {
		t.Fatal("after 200 ms at 5/s exactly one more message is allowed")
	}
	if l.abusive() {
		t.Fatal("two refusals are not abuse")
	}
	for range 5 {
		l.allow(now)
	}
	if !l.abusive() {
		t.Fatalf("%d refusals in the window at 5/s: want abusive", l.refused)
	}
	now = now.Add(abuseWindow + time.Second)
	if !l.allow(now) || l.abusive() {
		t.Fatal("after a quiet window the client starts afresh")
	}
	big := newLimiter(5, 100) // a client re-subscribing 100 rooms at once
	for i := range 100 {
		if !big.allow(now) {
			t.Fatalf("message %d of a burst of 100 refused", i+1)
		}
	}
	off := newLimiter(0, 0)
	for range 1000 {
		if !off.allow(now) {
			t.Fatal("rate 0 limits nothing")
		}
	}
}
