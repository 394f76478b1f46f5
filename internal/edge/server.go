// Package edge is the WebSocket front of a node: it accepts connections,
// checks and upgrades them, runs the session protocol of docs/protocol.md section 3
// on each (subscribe, unsubscribe, ping) and drains them on shutdown. Rooms
// and the bus are reached through room.Hub; socket I/O stays in package conn.
package edge

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roomcast/roomcast/internal/conn"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/room"
	"github.com/roomcast/roomcast/internal/wire"
)

// Options configure a Server.
type Options struct {
	Hub     *room.Hub
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Conn    conn.Options

	MaxConnections   int           // 0: unlimited
	MaxSubscriptions int           // per connection; 0: DefaultMaxSubscriptions
	RateLimit        int           // messages a second per connection; 0: none
	Auth             Verifier      // nil: anonymous, every room readable
	AuthTimeout      time.Duration // to send a token when the upgrade had none; 0: DefaultAuthTimeout
	AllowedOrigins   []string      // browser origins (patterns, see CheckOrigins); empty: the same host and loopback
	HandshakeTimeout time.Duration // 0: DefaultHandshakeTimeout
	MaxHandshakes    int           // handshakes in progress; 0: DefaultMaxHandshakes
	// HeadTimeout bounds the time from the accept to the end of the
	// request head (TLS handshake included), however the bytes trickle
	// in; 0: DefaultHeadTimeout. It is capped by HandshakeTimeout.
	HeadTimeout            time.Duration
	MaxHandshakesPerSource int // from one source; 0: DefaultMaxHandshakesPerSource
	// MaxUnauthenticated bounds the connections upgraded without a token
	// that have not authenticated yet (0: see unauthLimit);
	// MaxUnauthenticatedPerSource those from one source (0:
	// DefaultMaxUnauthenticatedPerSource). Without Auth they do not apply:
	// there is nothing to authenticate.
	MaxUnauthenticated          int
	MaxUnauthenticatedPerSource int
	// TrustedProxies are addresses or CIDRs of proxies whose
	// X-Forwarded-For names the client for the caps per source (checked
	// by CheckTrustedProxies); empty: the header is never read.
	TrustedProxies []string
	// RefusalLogInterval is how often at most a refused upgrade of each
	// reason is logged; 0: DefaultRefusalLogInterval. Now is the clock of
	// that rate (nil: time.Now), for tests.
	RefusalLogInterval time.Duration
	Now                func() time.Time
	// Compression lets clients negotiate permessage-deflate (RFC 7692)
	// without context takeover; off, the extension is never accepted.
	Compression bool
	// Pages answer plain HTTP requests on the WebSocket port ("/" is
	// index.html): the dashboard. nil: such requests are refused as
	// failed upgrades.
	Pages fs.FS
	// Available reports whether the bus can serve new subscriptions; nil
	// means always.
	Available func() bool
	// Rooms lists the rooms with recent events for rooms requests; nil:
	// they are answered UNAVAILABLE.
	Rooms RoomLister
	// Cluster gathers the cluster's view for cluster requests (the
	// server's, over NATS: the edge knows nothing of how); nil: they are
	// answered UNAVAILABLE.
	Cluster ClusterViewer
}

// Defaults of Options.
const (
	DefaultMaxSubscriptions = 100
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultHeadTimeout      = 5 * time.Second
	DefaultAuthTimeout      = 10 * time.Second
)

// Server accepts and serves WebSocket clients.
type Server struct {
	// Set at construction.
	opts       Options
	connOpts   conn.Options
	log        *slog.Logger
	m          *metrics.Metrics
	msgCount   map[string]prometheus.Counter // websocket_messages_total by type
	drainedCh  chan struct{}                 // closed when the last connection ends while draining
	handshakes *handshakeGate                // bounds the handshakes in progress
	origins    originPolicy                  // which browser pages may connect
	sources    sourcePolicy                  // whom the caps per source count against
	refused    refusals                      // counts and logs refused upgrades
	heads      headReaders                   // peek request heads when Pages are served

	wg      sync.WaitGroup // accept loops and handshakes
	nextID  atomic.Uint64  // the last connection id given
	written atomic.Uint64  // frames written to clients (FramesWritten)

	mu       sync.Mutex
	conns    map[*conn.Conn]*session // guarded by mu
	pending  int                     // guarded by mu: upgrades admitted, not yet registered
	unauth   unauthCount             // guarded by mu
	draining bool                    // guarded by mu
	shedding int                     // guarded by mu: sessions in conns marked shed (Shed)
}

// New returns a Server; call Serve with a listener.
func New(o Options) *Server {
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	if o.HeadTimeout <= 0 {
		o.HeadTimeout = DefaultHeadTimeout
	}
	o.HeadTimeout = min(o.HeadTimeout, o.HandshakeTimeout)
	o.MaxUnauthenticated = unauthLimit(o.MaxUnauthenticated, o.MaxConnections)
	if o.MaxUnauthenticatedPerSource <= 0 {
		o.MaxUnauthenticatedPerSource = DefaultMaxUnauthenticatedPerSource
	}
	if o.Auth != nil && o.Conn.Wheel == nil {
		panic("edge: Options.Conn.Wheel is required with Auth: token deadlines run on it")
	}
	s := &Server{
		opts:       o,
		connOpts:   o.Conn.WithDefaults(),
		log:        o.Logger,
		m:          o.Metrics,
		msgCount:   make(map[string]prometheus.Counter),
		drainedCh:  make(chan struct{}),
		conns:      make(map[*conn.Conn]*session),
		handshakes: newHandshakeGate(o.MaxHandshakes, o.MaxHandshakesPerSource),
		refused:    newRefusals(o.Logger, o.Metrics, o.RefusalLogInterval, o.Now),
		unauth:     unauthCount{bySource: make(map[string]int)},
	}
	s.connOpts.Written = func(frames, bytes int, firstStored time.Time) {
		s.written.Add(uint64(frames)) // one atomic add per write, not per frame
		o.Metrics.QueueDepth.Observe(float64(frames))
		o.Metrics.Written.Add(float64(bytes))
		if !firstStored.IsZero() {
			o.Metrics.Latency.Observe(time.Since(firstStored).Seconds())
		}
	}
	s.connOpts.Conflated = func(frames int) { o.Metrics.Conflated.Add(float64(frames)) }
	var err error
	if s.sources, err = newSourcePolicy(o.TrustedProxies); err != nil {
		// Checked before too (CheckTrustedProxies); if one slips
		// through, no proxy is believed rather than any.
		o.Logger.Error("trusted proxies refused; X-Forwarded-For will not be read", "err", err)
		s.sources = sourcePolicy{}
	}
	if s.origins, err = newOriginPolicy(o.AllowedOrigins); err != nil {
		// Settings are checked before (CheckOrigins); if one slips
		// through, no browser page gets in rather than every one.
		o.Logger.Error("allowed origins refused; no browser origin will be accepted", "err", err)
		s.origins = originPolicy{denyAll: true}
	}
	for _, t := range wire.MessageTypes() { // events are counted by the hub, with the same series
		s.msgCount[t] = o.Metrics.Messages.WithLabelValues(t)
	}
	return s
}

// Serve accepts connections on ln until ln is closed, which is how a drain
// stops new upgrades. It returns nil after ln is closed.
func (s *Server) Serve(ln net.Listener) error {
	// Counted under mu, so a Drain that has begun either waits for this
	// loop or is seen by it: a WaitGroup must not grow from zero while
	// someone waits on it.
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return nil
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait, do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.admitHandshake(nc)
	}
}

// FramesWritten is how many queued frames (events, responses) the node's
// connections have written to their sockets: what deliveries a second are
// measured by.
func (s *Server) FramesWritten() uint64 { return s.written.Load() }

// ConnCount is the number of open connections.
func (s *Server) ConnCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// register turns a reservation into a connection, ss's; it fails only
// when a drain started in between.
func (s *Server) register(ss *session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending--
	if s.draining {
		return errDraining
	}
	s.conns[ss.c] = ss
	s.m.Connections.Inc()
	return nil
}

func (s *Server) unregister(c *conn.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.conns[c]
	if !ok {
		return
	}
	if ss.shed {
		s.shedding--
	}
	delete(s.conns, c)
	s.m.Connections.Dec()
	if s.draining && len(s.conns) == 0 {
		close(s.drainedCh)
	}
}

// Drain sends server.draining to every client and closes each with 1001 once
// its queue is flushed, spreading the closes evenly over window so clients do
// not all reconnect to the other replicas at once. It returns when every
// connection has ended or ctx is done; then it closes what is left at once.
// The caller closes the listeners first, so no new upgrades arrive.
func (s *Server) Drain(ctx context.Context, window time.Duration) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return
	}
	s.draining = true
	s.m.Draining.Set(1)
	conns := make([]*conn.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		close(s.drainedCh)
	}
	s.mu.Unlock()

	start := time.Now()
	for i, c := range conns {
		if wait := time.Until(start.Add(window * time.Duration(i) / time.Duration(len(conns)))); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		drainConn(c)
	}
	select {
	case <-s.drainedCh:
	case <-ctx.Done():
		s.abortAll()
	}
	s.wg.Wait()
}

// drainConn tells c the node is draining and closes it with 1001 once its
// queue is written. The notice is forced: a full queue must still end in
// 1001, not 4008.
func drainConn(c *conn.Conn) {
	c.Force(wire.DrainingFrame())
	c.CloseAfterFlush(wire.CloseGoingAway, "server draining")
}

// abortAll ends every remaining connection at once and waits for them.
func (s *Server) abortAll() {
	s.mu.Lock()
	conns := make([]*conn.Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Abort()
	}
	for _, c := range conns {
		<-c.Done()
	}
}
