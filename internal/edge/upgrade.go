package edge

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/conn"
)

// handshake upgrades one accepted socket and starts its connection. The
// upgrade reads the request straight from the socket (gobwas/ws's zero-copy
// upgrade): no net/http machinery stays behind on the connection.
func (s *Server) handshake(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	reserved := false
	u := ws.Upgrader{
		OnRequest: checkPath,
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if err := s.reserve(); err != nil {
				return nil, ws.RejectConnectionError(ws.RejectionStatus(http.StatusServiceUnavailable), ws.RejectionReason(err.Error()))
			}
			reserved = true
			return nil, nil
		},
		OnHeader: func(key, value []byte) error {
			if bytes.EqualFold(key, []byte("Origin")) && !s.originAllowed(string(value)) {
				return ws.RejectConnectionError(ws.RejectionStatus(http.StatusForbidden), ws.RejectionReason("origin not allowed"))
			}
			return nil
		},
	}
	if _, err := u.Upgrade(nc); err != nil {
		if reserved {
			s.unreserve()
		}
		s.log.Debug("upgrade refused", "remote", nc.RemoteAddr().String(), "err", err)
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})

	sess := &session{srv: s}
	c := conn.New(nc, sess, &s.connOpts)
	sess.c = c
	if err := s.register(c); err != nil {
		// A drain started during the upgrade, after it took its list of
		// connections: drain this one the same way, on its own.
		c.Serve()
		drainConn(c)
		return
	}
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

func (s *Server) originAllowed(origin string) bool {
	if len(s.opts.AllowedOrigins) == 0 {
		return true
	}
	for _, o := range s.opts.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
