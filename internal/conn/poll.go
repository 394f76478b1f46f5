package conn

import (
	"net"
	"os"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// A polled connection has no reader goroutine while it idles: the node's
// poller watches its socket, and a goroutine starts when something
// arrives, reads one frame and hands the socket back. Keep-alive comes
// from the node's timer wheel instead of a read deadline: checkAlive asks
// for a ping when the peer has been quiet for PingInterval and ends the
// connection when the ping is not answered within PongTimeout.
//
// Only plain TCP connections are polled: TLS reads ahead into a buffer of
// its own, so a socket with nothing left to read may still hold a frame,
// and the poller would never say so. Those keep their reader goroutine.

// servePolled parks c on the poller; it reports false, leaving c to a
// reader goroutine, when c cannot be polled.
func (c *Conn) servePolled() bool {
	o := c.opts
	tc, ok := c.nc.(*net.TCPConn)
	if o.Poller == nil || o.Wheel == nil || !ok {
		return false
	}
	now := time.Now()
	c.rd = reader{c: c, cr: countingReader{r: c.nc}, polled: true}
	c.lastRead.Store(now.UnixNano())
	c.timer = o.Wheel.NewTimer(c.checkAlive)
	// mu is held until the watch is recorded: a readiness that comes at
	// once waits for it in onReadable.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false // closed before it was served: the reader goroutine drains
	}
	w, err := o.Poller.Add(tc, c.onReadable)
	if err != nil {
		return false
	}
	c.watch, c.parked = w, true
	c.timer.Schedule(now.Add(o.PingInterval))
	return true
}

// onReadable is the poller's callback: it starts a goroutine to read what
// arrived, unless a close took the connection meanwhile.
func (c *Conn) onReadable() {
	c.mu.Lock()
	run := c.parked
	c.parked = false
	c.mu.Unlock()
	if run {
		go c.readReady()
	}
}

// readReady reads one frame and parks the connection again, or finishes it.
func (c *Conn) readReady() {
	switch c.rd.readFrame() {
	case readMore:
		if c.park() {
			return
		}
		c.drain() // a close is under way
	case readDrain:
		c.drain()
	case readEnd:
	}
	c.finish()
}

// park hands the socket back to the poller. It reports false when a close
// is under way, for the caller to drain and finish.
func (c *Conn) park() bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if err := c.watch.Rearm(); err != nil {
		c.startCloseLocked(wire.CloseInternal, "cannot watch the socket", false)
		c.unlockKick()
		return false
	}
	c.parked = true
	c.mu.Unlock()
	return true
}

// handOverLocked starts the close of a parked connection, which no
// goroutine reads: one takes over to wait for the peer's close (when a
// close frame goes out) and to finish. Needs mu; unlockKick calls it.
func (c *Conn) handOverLocked() {
	if !c.closing || !c.parked {
		return
	}
	c.parked = false
	drain := c.sendCloseFrame
	go func() {
		if drain {
			c.drain()
		}
		c.finish()
	}()
}

// closeSocket stops the poller's watch, if any, then closes the socket:
// in that order, or the watch could outlive the descriptor and be removed
// from a new socket that reused its number.
func (c *Conn) closeSocket() {
	c.unwatch()
	_ = c.nc.Close()
}

// unwatch stops the poller's watch of the socket, if any.
func (c *Conn) unwatch() {
	c.mu.Lock()
	w := c.watch
	c.watch = nil
	c.mu.Unlock()
	if w != nil {
		w.Remove()
	}
}

// resetSocket closes the socket of an abandoned connection (see
// abandonLocked) with a reset: with linger 0 the kernel drops at once what
// it still holds for a peer that reads nothing, instead of keeping it for
// minutes while it retries a closed window. Under TLS the TCP socket is
// closed directly, without the close_notify alert, whose write would wait
// on the full socket.
func (c *Conn) resetSocket() {
	c.unwatch()
	tc, ok := tcpOf(c.nc)
	if !ok {
		_ = c.nc.Close()
		return
	}
	if r := c.opts.Resets; r != nil {
		r.Lock()
		defer r.Unlock()
	}
	_ = tc.SetLinger(0)
	_ = tc.Close()
}

// checkAlive is a polled connection's keep-alive, run by the timer wheel;
// it returns when it next needs to run, or zero once the connection is
// closing. It also ends a message the client has been too slow to
// complete, which a reader goroutine's deadline would have.
func (c *Conn) checkAlive(now time.Time) time.Time {
	if c.Closing() {
		return time.Time{}
	}
	n, o := now.UnixNano(), c.opts
	due := c.msgDue.Load()
	if due != 0 && n >= due {
		// 1008, as for a reader goroutine: see reader.failed.
		c.Close(wire.ClosePolicy, "message not completed in time")
		return time.Time{}
	}
	ping := c.pingAt.Load()
	switch {
	case ping != 0 && n >= ping+int64(o.PongTimeout) && c.pingAt.CompareAndSwap(ping, 0):
		// Claimed: a pong read meanwhile would have cleared pingAt.
		c.readFailed(os.ErrDeadlineExceeded)
		return time.Time{}
	case ping == 0 && n >= c.lastRead.Load()+int64(o.PingInterval):
		ping = n
		c.pingAt.Store(n)
		c.requestPing()
	}
	next := c.lastRead.Load() + int64(o.PingInterval)
	if ping != 0 {
		next = ping + int64(o.PongTimeout)
	}
	if due != 0 {
		next = min(next, due)
	}
	return time.Unix(0, next)
}
