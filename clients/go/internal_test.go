package roomcast

import (
	"encoding/base64"
	"testing"
	"time"
)

// The backoff doubles from its minimum to its maximum, times a jitter of
// [0.5, 1.5).
func TestBackoffBounds(t *testing.T) {
	lo, hi := DefaultBackoffMin, DefaultBackoffMax
	for n, want := range map[int]time.Duration{1: 250 * time.Millisecond, 2: 500 * time.Millisecond, 3: time.Second,
		6: 8 * time.Second, 7: 10 * time.Second, 50: 10 * time.Second} {
		if got := backoff(n, lo, hi, 1); got != want {
			t.Errorf("attempt %d: %s, want %s", n, got, want)
		}
		if got := backoff(n, lo, hi, 0.5); got != want/2 {
			t.Errorf("attempt %d, lowest jitter: %s, want %s", n, got, want/2)
		}
		if got := backoff(n, lo, hi, 1.4999); got >= want*3/2 || got < want*7/5 {
			t.Errorf("attempt %d, highest jitter: %s, want just under %s", n, got, want*3/2)
		}
	}
	for range 1000 {
		if j := jitter(); j < 0.5 || j >= 1.5 {
			t.Fatalf("jitter %v out of [0.5, 1.5)", j)
		}
		if d := atOnceJitter(); d < 0 || d >= 100*time.Millisecond {
			t.Fatalf("an attempt at once waits %s", d)
		}
	}
	if got := backoff(3, time.Second, 2*time.Second, 1); got != 2*time.Second {
		t.Errorf("custom bounds: %s", got)
	}
}

// exp is read from the token's payload, unverified; the refresh comes at
// three quarters of the lifetime, at the latest 10 s before exp, and not
// before half of it.
func TestTokenExpiryAndRefreshTime(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u","exp":1800000000}`))
	if got := tokenExpiry("eyJhbGciOiJIUzI1NiJ9." + payload + ".sig"); !got.Equal(time.Unix(1800000000, 0)) {
		t.Fatalf("exp %v", got)
	}
	for _, bad := range []string{"", "a.b", "a.!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":"x"}`)) + ".c"} {
		if got := tokenExpiry(bad); !got.IsZero() {
			t.Errorf("%q: exp %v, want none", bad, got)
		}
	}
	got := time.Unix(1000, 0)
	for life, want := range map[time.Duration]time.Duration{
		time.Hour:        45 * time.Minute,
		40 * time.Second: 30 * time.Second,
		30 * time.Second: 20 * time.Second,
		3 * time.Second:  1500 * time.Millisecond,
	} {
		if at := refreshAt(got, got.Add(life)); at.Sub(got) != want {
			t.Errorf("a token of %s is refreshed after %s, want %s", life, at.Sub(got), want)
		}
	}
	if !refreshAt(got, time.Time{}).IsZero() {
		t.Error("a token without exp is refreshed")
	}
}
