package roomcast

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"
)

// Options configure a Client. Only URLs is required.
type Options struct {
	// URLs are the nodes' WebSocket URLs (ws:// or wss://), tried in
	// turn, one per attempt.
	URLs []string
	// Token is the first JWT, sent in the upgrade's Authorization header;
	// empty for none.
	Token string
	// Refresh, when set, is asked for a new token: before the current one
	// expires (at three quarters of its lifetime), when the node refuses
	// or expires it (1008, 4001), and when a subscribe gets
	// UNAUTHENTICATED. It must return when ctx ends.
	Refresh func(ctx context.Context) (string, error)
	// Header is sent with every upgrade request (besides Authorization).
	Header http.Header
	// TLSConfig is for wss:// URLs (nil: the system's roots and the
	// URL's host).
	TLSConfig *tls.Config
	// NetDial, when set, opens the TCP connections (a proxy, socket
	// options).
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Compression offers permessage-deflate.
	Compression bool
	// BackoffMin and BackoffMax bound the wait between failed attempts:
	// min(BackoffMax, BackoffMin × 2^(n−1)) × a random factor in
	// [0.5, 1.5) before attempt n. Defaults 250 ms and 10 s.
	BackoffMin, BackoffMax time.Duration
	// Buffer is how many messages wait for Next (default 64). When it is
	// full the client stops reading its socket: an application that
	// falls behind makes the node close the connection (4008), and the
	// client resumes once Next is called again.
	Buffer int
	// DialTimeout bounds one attempt's handshake (default 10 s).
	DialTimeout time.Duration
	// PingAfter is the silence after which the client sends a ping
	// (default 15 s); PingTimeout how long it then waits for anything
	// before it drops the connection as dead (default 10 s).
	PingAfter, PingTimeout time.Duration
}

// SubscribeOptions say how a room is followed.
type SubscribeOptions struct {
	// History asks for every retained event first (since: 0).
	History bool
	// Since and Epoch are a position the application stored (an Event's
	// Seq, and the Epoch of the Subscribed it came after): the room
	// resumes after it. Since wins over History.
	Since *uint64
	Epoch string
	// State asks for the room's state in the Subscribed (the latest event
	// of every key).
	State bool
	// Conflate lets the node skip superseded keyed events of the room
	// when the connection falls behind, instead of closing it.
	Conflate bool
}

// The defaults of Options.
const (
	DefaultBackoffMin  = 250 * time.Millisecond
	DefaultBackoffMax  = 10 * time.Second
	DefaultBuffer      = 64
	DefaultDialTimeout = 10 * time.Second
	DefaultPingAfter   = 15 * time.Second
	DefaultPingTimeout = 10 * time.Second
)

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if len(o.URLs) == 0 {
		return o, errors.New("roomcast: no URL")
	}
	for _, u := range o.URLs {
		if !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
			return o, fmt.Errorf("roomcast: URL %q: want ws:// or wss://", u)
		}
	}
	if strings.ContainsAny(o.Token, " \t\r\n") {
		return o, errors.New("roomcast: the token has white space inside")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.BackoffMin, DefaultBackoffMin)
	def(&o.BackoffMax, DefaultBackoffMax)
	def(&o.DialTimeout, DefaultDialTimeout)
	def(&o.PingAfter, DefaultPingAfter)
	def(&o.PingTimeout, DefaultPingTimeout)
	o.BackoffMax = max(o.BackoffMax, o.BackoffMin)
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	return o, nil
}

// backoff is the wait before attempt n (1 for the first after a
// failure): min(hi, lo × 2^(n−1)) times jitter, which must be in
// [0.5, 1.5).
func backoff(n int, lo, hi time.Duration, jitter float64) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return time.Duration(float64(min(d, hi)) * jitter)
}

// jitter is a random factor in [0.5, 1.5).
func jitter() float64 { return 0.5 + rand.Float64() }

// atOnceJitter is the wait before an attempt made at once (1001, 4012):
// at most 100 ms, so that the clients a node sheds do not come back in
// step.
func atOnceJitter() time.Duration { return time.Duration(rand.Int64N(int64(100 * time.Millisecond))) }
