package edge

import (
	"bytes"
	"io"
	"net"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/conn"
)

// admitHandshake starts the handshake of a socket just accepted on a
// goroutine of its own, counted in s.wg, once the gate has made room for
// it (see handshakeGate). The accept loop calls it, holding a count of
// s.wg itself, so the count never grows from zero while Drain waits.
func (s *Server) admitHandshake(nc net.Conn) {
	// First, before anything reads, and before the gate could evict it:
	// the handshake's time counts from the accept, and the head's
	// deadline is fixed, so a client trickling its request byte by byte
	// cannot extend it: it holds its place for HeadTimeout at most.
	now := time.Now()
	_ = nc.SetReadDeadline(now.Add(s.opts.HeadTimeout))
	_ = nc.SetWriteDeadline(now.Add(s.opts.HandshakeTimeout))
	p, evicted := s.handshakes.enter(nc, s.sources.peer(nc.RemoteAddr()))
	if evicted != nil {
		// Its goroutine's read or write fails at once and it closes the
		// socket (leave tells it not to go on should it be past them).
		// Not closed here: closing a TLS socket may write, and the accept
		// loop must not wait on a client.
		_ = evicted.nc.SetDeadline(time.Now())
		s.refused.record(evicted.evictedBy, refusedRequest{remote: evicted.nc.RemoteAddr().String()})
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.handshake(p)
	}()
}

// handshake upgrades one accepted socket and starts its connection. The
// upgrade reads the request straight from the socket (gobwas/ws's zero-copy
// upgrade): no net/http machinery stays behind on the connection.
func (s *Server) handshake(p *pendingHandshake) {
	nc := p.nc
	defer s.handshakes.leave(p) // a second leave, after the one below, does nothing
	req := refusedRequest{remote: nc.RemoteAddr().String()}
	var rw io.ReadWriter = nc
	if s.opts.Pages != nil {
		br := s.heads.get(nc)
		defer s.heads.put(br)
		h, err := peekHead(br)
		switch {
		case err != nil:
			s.upgradeFailed(p, nil, req, err)
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
	up := upgrade{srv: s, peer: nc.RemoteAddr(), deflate: deflateOffer{enabled: s.opts.Compression}}
	_, err := up.upgrader().Upgrade(rw)
	req.origin, req.path, req.source = truncate(up.origin), truncate(up.path), up.admission.source
	if err == nil && !s.handshakes.leave(p) {
		err = net.ErrClosed // evicted as its answer went out: too late for it
	}
	if err != nil {
		if up.reserved {
			s.unreserve(up.admission)
		}
		s.upgradeFailed(p, up.refused, req, err)
		s.log.Debug("upgrade refused", "remote", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	tok, origin, deflate := up.tok, up.origin, up.deflate

	// The burst lets a client that comes back subscribe again to all its
	// rooms, and send a few more messages, at once.
	sess := &session{srv: s, limit: newLimiter(s.opts.RateLimit, s.opts.MaxSubscriptions+10),
		id: s.nextID.Add(1), opened: time.Now().UnixNano(), admission: up.admission}
	c := conn.New(nc, sess, &s.connOpts, deflate.accepted)
	sess.c = c
	if err := s.register(sess); err != nil {
		// A drain started during the upgrade, after it took its list of
		// connections: drain this one the same way, on its own.
		c.Serve()
		drainConn(c)
		return
	}
	s.m.Accepted.Inc()
	s.log.Info("connection opened", "conn", sess.id, "remote", nc.RemoteAddr().String(), "origin", origin, "token", tokenSource(tok), "deflate", deflate.accepted)
	sess.startAuth(up.verdict) // before Serve: the handlers see its outcome
	c.Serve()
}

// upgradeFailed counts and logs a handshake that ended without a
// connection: refused by us (r), or failing on its own (err), unless the
// gate evicted it (counted then, even if it was being refused meanwhile:
// one socket, one count) or the client went away.
func (s *Server) upgradeFailed(p *pendingHandshake, r *refusal, req refusedRequest, err error) {
	if s.handshakes.evicted(p) {
		return
	}
	reason := failedReason(err)
	if r != nil {
		reason = r.reason
	}
	if reason != "" {
		s.refused.record(reason, req)
	}
}

// upgrade is the state of one upgrade while gobwas/ws reads its request.
type upgrade struct {
	srv     *Server
	peer    net.Addr
	deflate deflateOffer

	origin, host, path string
	xff                []string // X-Forwarded-For values
	tok                upgradeToken
	verdict            *verdict // the upgrade's token checked, when it has one and the node asks for tokens
	admission          admission
	reserved           bool     // a slot of the node is held: unreserve it if the upgrade fails
	refused            *refusal // why we refused it, if we did
}

func (up *upgrade) upgrader() ws.Upgrader {
	return ws.Upgrader{
		Negotiate: up.deflate.negotiate,
		OnRequest: func(uri []byte) error {
			up.tok.onURI(uri)
			p, _, _ := bytes.Cut(uri, []byte("?"))
			up.path = string(p) // never the query: it may carry a token
			return up.refuse(checkPath(up.path))
		},
		OnHost: func(h []byte) error {
			up.host = string(h)
			return nil
		},
		OnHeader: func(key, value []byte) error {
			switch {
			case bytes.EqualFold(key, []byte("Origin")):
				up.origin = string(value)
			case bytes.EqualFold(key, []byte("X-Forwarded-For")):
				up.xff = append(up.xff, string(value))
			}
			up.tok.onHeader(key, value)
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			s := up.srv
			if !s.origins.allows(up.origin, up.host) {
				return nil, up.refuse(errOrigin)
			}
			if tok := up.tok.token(); s.opts.Auth != nil && tok != "" {
				// Checked now, no network involved (the keys are in
				// memory): a valid token is not held against the budget
				// of connections that have not authenticated, and a bad
				// one is, until its 1008 close ends it, so made-up tokens
				// cannot fill the node either.
				up.verdict = newVerdict(s.opts.Auth, tok)
			}
			up.admission = admission{
				// Anonymous, there is nothing to authenticate: no
				// connection is held against the budget.
				unauth: s.opts.Auth != nil && (up.verdict == nil || up.verdict.err != nil),
				source: s.sources.client(up.peer, strings.Join(up.xff, ",")),
			}
			if r := s.reserve(up.admission); r != nil {
				return nil, up.refuse(r)
			}
			up.reserved = true
			return nil, nil
		},
	}
}

// refuse notes r as the upgrade's refusal and returns it as gobwas/ws
// answers it; nil stays nil.
func (up *upgrade) refuse(r *refusal) error {
	if r == nil {
		return nil
	}
	up.refused = r
	return r.reject()
}

// checkPath accepts the upgrade at / and /ws (docs/protocol.md section 3), with
// any query string.
func checkPath(path string) *refusal {
	switch path {
	case "/", "/ws":
		return nil
	}
	return errPath
}
