package conn

import "github.com/gobwas/ws"

// CloseAfterFlushIfOpen is CloseAfterFlush for a connection no one has
// asked to close yet: it reports whether this call started the close, so
// a caller that counts what it closes (the rebalancer) never counts a
// connection that was closing already.
func (c *Conn) CloseAfterFlushIfOpen(code ws.StatusCode, reason string) bool {
	c.mu.Lock()
	started := c.startCloseLocked(code, reason, true)
	c.unlockKick()
	return started
}
