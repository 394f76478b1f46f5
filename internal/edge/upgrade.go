package edge

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/conn"
)

// DefaultMaxHandshakes bounds the handshakes in progress on a node: far
// more than a burst of reconnecting clients needs (a handshake takes a
// round trip or two), few enough that clients which open sockets and then
// send their request slowly, or never, cannot pile up goroutines and
// buffers. It does not derive from MaxConnections: a small limit there
// would let a few slow sockets lock everyone out.
const DefaultMaxHandshakes = 1024

// handshakeGate bounds the handshakes in progress by count; HandshakeTimeout
// bounds each by time. It is a semaphore: a slot per handshake, taken
// before its goroutine starts and given back when the handshake ends.
type handshakeGate struct {
	slots chan struct{}
}

// newHandshakeGate returns a gate for limit handshakes at once
// (DefaultMaxHandshakes when limit is not positive).
func newHandshakeGate(limit int) *handshakeGate {
	if limit <= 0 {
		limit = DefaultMaxHandshakes
	}
	return &handshakeGate{slots: make(chan struct{}, limit)}
}

// enter takes a slot without waiting; false means the gate is full.
func (g *handshakeGate) enter() bool {
	select {
	case g.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// leave gives back the slot enter took.
func (g *handshakeGate) leave() { <-g.slots }

// admitHandshake starts the handshake of a socket just accepted on a
// goroutine of its own, counted in s.wg, if there is a slot; otherwise it
// closes the socket at once, so slow handshakes past the limit cost neither
// a goroutine nor a buffer. The accept loop calls it, holding a count of
// s.wg itself, so the count never grows from zero while Drain waits.
func (s *Server) admitHandshake(nc net.Conn) {
	gate := s.handshakes
	if !gate.enter() {
		s.log.Debug("handshake refused: too many in progress", "remote", nc.RemoteAddr().String())
		_ = nc.Close()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer gate.leave()
		s.handshake(nc)
	}()
}

// handshake upgrades one accepted socket and starts its connection. The
// upgrade reads the request straight from the socket (gobwas/ws's zero-copy
// upgrade): no net/http machinery stays behind on the connection.
func (s *Server) handshake(nc net.Conn) {
	// First, before anything reads: the handshake's time counts from the
	// accept (this goroutine starts right after it), so a client sending
	// its request slowly, or not at all, holds its slot for at most this.
	_ = nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	var rw io.ReadWriter = nc
	if s.opts.Pages != nil {
		br := s.heads.get(nc)
		defer s.heads.put(br)
		h, err := peekHead(br)
		switch {
		case err != nil:
			s.log.Debug("handshake: request not read", "remote", nc.RemoteAddr().String(), "err", err)
			_ = nc.Close()
			return
		case !h.websocket:
			status, err := servePage(nc, s.opts.Pages, h, s.origins)
			// The path without its query: a dashboard's URL may carry
			// ?token=, which must not reach the log.
			s.log.Debug("page request", "remote", nc.RemoteAddr().String(), "method", h.method, "path", h.pathOnly(), "status", status, "err", err)
			_ = nc.Close()
			return
		}
		rw = struct {
			io.Reader
			io.Writer
		}{br, nc}
		// Nothing is left in br for the connection to miss: a client
		// sends nothing after its request until it has the answer (RFC
		// 6455 section 4.1), as the upgrade's own buffer assumes too.
	}
	reserved := false
	var origin, host string
	var tok upgradeToken
	deflate := deflateOffer{enabled: s.opts.Compression}
	u := ws.Upgrader{
		Negotiate: deflate.negotiate,
		OnRequest: func(uri []byte) error {
			tok.onURI(uri)
			return checkPath(uri)
		},
		OnHost: func(h []byte) error {
			host = string(h)
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if !s.origins.allows(origin, host) {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden), ws.RejectionReason("origin not allowed"))
			}
			if err := s.reserve(); err != nil {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusServiceUnavailable), ws.RejectionReason(err.Error()))
			}
			reserved = true
			return nil, nil
		},
		OnHeader: func(key, value []byte) error {
			if bytes.EqualFold(key, []byte("Origin")) {
				origin = string(value)
			}
			tok.onHeader(key, value)
			return nil
		},
	}
	if _, err := u.Upgrade(rw); err != nil {
		if reserved {
			s.unreserve()
		}
		s.log.Debug("upgrade refused", "remote", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})

	// The burst lets a client that comes back subscribe again to all its
	// rooms, and send a few more messages, at once.
	sess := &session{srv: s, limit: newLimiter(s.opts.RateLimit, s.opts.MaxSubscriptions+10),
		id: s.nextID.Add(1), opened: time.Now().UnixNano()}
	c := conn.New(nc, sess, &s.connOpts, deflate.accepted)
	sess.c = c
	if err := s.register(c); err != nil {
		// A drain started during the upgrade, after it took its list of
		// connections: drain this one the same way, on its own.
		c.Serve()
		drainConn(c)
		return
	}
	s.m.Accepted.Inc()
	s.log.Info("connection opened", "conn", sess.id, "remote", nc.RemoteAddr().String(), "origin", origin, "token", tokenSource(tok), "deflate", deflate.accepted)
	sess.startAuth(tok.token()) // before Serve: the handlers see its outcome
	c.Serve()
}

// checkPath accepts the upgrade at / and /ws (PROTOCOL.md section 3), with
// any query string.
func checkPath(uri []byte) error {
	path, _, _ := bytes.Cut(uri, []byte("?"))
	switch string(path) {
	case "/", "/ws":
		return nil
	}
	return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound), ws.RejectionReason("WebSocket endpoint is / or /ws"))
}
