// Package floor is a measuring stick, not product: the least a WebSocket
// broadcaster in front of NATS can do per delivery, so that `roomcast bench`
// can read every figure also as a ratio to the limit of the machine.
//
// It serves just enough of the roomcast protocol for the bench's client
// (subscribe and unsubscribe answered, events as roomcast event frames) and
// nothing else: one core NATS subscription per room with members; on each
// NATS message the frame is built once and written to each member straight
// from the subscription's callback, one write per member under a write
// deadline, a member whose write fails dropped. Nothing is stored, nothing
// queued, no goroutine per connection: sockets are read through the
// epoll poller (internal/netpoll) when they have something to read. There
// is no authentication, no resume, no keep-alive, no limit: never serve
// clients with it.
package floor

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/netpoll"
)

// Defaults of Options.
const (
	DefaultWriteTimeout = 2 * time.Second
	upgradeTimeout      = 10 * time.Second // the handshake of one connection
	readTimeout         = 5 * time.Second  // the rest of a frame, once a socket is readable
	maxRequestLen       = 4 << 10          // a client frame's payload
)

// Options configure a floor server.
type Options struct {
	NATSURL string // the core NATS server events are published to
	Listen  string // host:port of the WebSocket listener; "127.0.0.1:0" when empty
	// Prefix is the NATS subject prefix, bus.DefaultPrefix when empty: room
	// R's events arrive on the subject a roomcast edge reads it from.
	Prefix string
	// WriteTimeout bounds one write to one member; DefaultWriteTimeout when 0.
	WriteTimeout time.Duration
}

// Server is a running floor broadcaster.
type Server struct {
	nc           *nats.Conn
	ln           net.Listener
	poller       *netpoll.Poller
	subjects     bus.Subjects
	writeTimeout time.Duration

	mu      sync.Mutex
	rooms   map[string]*room     // rooms with members
	members map[*member]struct{} // every upgraded connection
	closed  bool

	wg sync.WaitGroup // the accept loop, upgrades and reads under way
}

// Start connects to NATS and listens for WebSocket connections.
func Start(o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Prefix == "" {
		o.Prefix = bus.DefaultPrefix
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	nc, err := nats.Connect(o.NATSURL, nats.Name("roomcast floor"))
	if err != nil {
		return nil, fmt.Errorf("floor: connect to NATS %s: %w", o.NATSURL, err)
	}
	poller, err := netpoll.New()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("floor: %w", err)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		poller.Close()
		nc.Close()
		return nil, fmt.Errorf("floor: listen: %w", err)
	}
	s := &Server{nc: nc, ln: ln, poller: poller, subjects: bus.Subjects{Prefix: o.Prefix}, writeTimeout: o.WriteTimeout,
		rooms: map[string]*room{}, members: map[*member]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// WSURL is where clients connect.
func (s *Server) WSURL() string { return "ws://" + s.ln.Addr().String() + "/ws" }

// Members is the number of connections the server holds.
func (s *Server) Members() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members)
}

// Close stops accepting, closes every connection and the NATS connection,
// and waits for the goroutines it started.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	members := make([]*member, 0, len(s.members))
	for m := range s.members {
		members = append(members, m)
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	for _, m := range members {
		s.drop(m)
	}
	s.nc.Close()
	// The poller first: a callback under way may still start a read, which
	// finds its connection closed; the wait then covers every goroutine.
	s.poller.Close()
	s.wg.Wait()
}

// accept upgrades each connection on a goroutine of its own, which ends
// with the handshake.
func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a connection that failed before it was accepted
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.upgrade(c)
		}()
	}
}

// upgrade makes c a member (zero-copy handshake) and watches it for reads.
func (s *Server) upgrade(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(upgradeTimeout))
	if _, err := ws.Upgrade(c); err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		_ = c.Close()
		return
	}
	m := &member{s: s, c: c, raw: raw}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return
	}
	s.members[m] = struct{}{}
	// Added under mu, so that drop, which takes mu, sees the watch.
	w, err := s.poller.Add(c.(netpoll.Conn), m.readable)
	m.watch = w
	s.mu.Unlock()
	if err != nil {
		s.drop(m)
	}
}
