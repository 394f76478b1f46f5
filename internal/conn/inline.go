package conn

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Inline writes. A live frame queued to a plain TCP connection whose
// writer is idle and whose queue was empty is written by the caller (a
// room's fan-out) at once, with one non-blocking system call, instead of
// by a writer goroutine started for it: a connection that gets an event
// now and then pays no goroutine start, no write deadline and no wait for
// a core per delivery. The caller holds the socket as its writer meanwhile
// (writing is set), so frames never interleave; what it cannot write at
// once (a full socket buffer, part of the frame, an error) and whatever
// was queued meanwhile goes to a writer goroutine, which writes the rest
// of the frame first. A busy connection's frames queue as before, so a
// writer that is behind still writes many with one system call; and a
// frame that comes within inlineGap of the last write is queued for a
// writer goroutine too, so frames that come back to back (from several
// rooms, say) still go out together rather than a system call each. TLS
// connections never write inline: a record's write may wait.

// inlineGap is how long after its last write a connection's next frame
// may be written inline: sooner, more are likely to follow, and a writer
// goroutine, whose start they overtake, writes them together.
const inlineGap = time.Millisecond

// inlineClock is the time in units of 32,768 ns since the process
// started, wrapping every 2.1 s: a gap misjudged after a wrap (one in
// 2,000) costs only a writer goroutine, and the clock fits in the two
// bytes Conn has spare.
func inlineClock() uint16 { return uint16(time.Since(processStart) >> inlineClockShift) }

const inlineClockShift = 15

// inlineGapTicks is inlineGap on inlineClock.
const inlineGapTicks = uint16(inlineGap >> inlineClockShift)

// processStart is inlineClock's origin; it never changes.
var processStart = time.Now()

// inlineLocked reports whether the live frame just queued, the queue's
// only one, may be written inline: the writer is idle, nothing else (a
// pong, a ping, a close) is due, and the last write is inlineGap past.
// Needs mu.
func (c *Conn) inlineLocked(wasEmpty bool) bool {
	return c.tcp && wasEmpty && len(c.queue) == 1 && !c.writing && !c.writerDone &&
		!c.closing && !c.pongDue && !c.pingDue &&
		inlineClock()-c.wroteAt >= inlineGapTicks
}

// writeInline writes the queue's one frame as inlineLocked allowed: it
// takes the queue as the writer would, releases mu, tries the write, and
// ends as the writer, or hands what is left to a writer goroutine. Needs
// mu, which it releases.
func (c *Conn) writeInline() {
	c.writing = true
	batch := c.queue
	c.queue, c.queueBytes = nil, 0
	if c.conf != nil {
		c.conf.next = c.compactStep()
	}
	c.flyLocked(batch)
	c.freeSpaceLocked()
	c.mu.Unlock()

	f := batch[0]
	p := f.Bytes()
	if c.deflate {
		p = f.Deflated() // built by the first writer, shared by all
	}
	n := c.tryWrite(p)
	whole := n == len(p)
	if whole && c.opts.Written != nil {
		c.opts.Written(1, n, f.Stored)
	}

	c.mu.Lock()
	if whole {
		c.landLocked(batch)
		if c.queue == nil {
			c.queue = batch[:0] // the slice goes back: the next push allocates nothing
		}
		batch = nil
	}
	idle := whole && len(c.queue) == 0 && !c.pongDue && !c.pingDue && !c.closing
	if idle {
		c.stopWriterLocked(false)
	}
	c.mu.Unlock()
	if !idle {
		go c.writeLoop(batch, n)
	}
}

// tryWrite writes p to the socket with one system call that never waits
// and returns how many bytes went out (0 on any error: the writer
// goroutine, which writes the rest, meets it again and deals with it).
// The socket stays held by the runtime during the call, so a concurrent
// close cannot hand its descriptor to another connection.
func (c *Conn) tryWrite(p []byte) int {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	w := inlineWrites.Get().(*inlineWrite)
	w.p, w.n, w.tried = p, 0, false
	err = rc.Write(w.fn)
	if err != nil && !w.tried && errors.Is(err, os.ErrDeadlineExceeded) && !c.abandoned.Load() {
		// The deadline the last writer goroutine set has passed. Nothing
		// waits here, so none is needed; the next writer goroutine sets
		// its own.
		if c.nc.SetWriteDeadline(time.Time{}) == nil {
			_ = rc.Write(w.fn)
		}
	}
	n := w.n
	w.p = nil
	inlineWrites.Put(w)
	return n
}

// inlineWrite is tryWrite's call to the socket, pooled with its function
// value bound so that a write allocates nothing.
type inlineWrite struct {
	p     []byte
	n     int
	tried bool
	fn    func(fd uintptr) bool
}

var inlineWrites = sync.Pool{New: func() any {
	w := new(inlineWrite)
	w.fn = w.write
	return w
}}

// write is one write(2) of p; it never asks to wait for the socket.
func (w *inlineWrite) write(fd uintptr) bool {
	w.tried = true
	if n, err := syscall.Write(int(fd), w.p); err == nil {
		w.n = n
	}
	return true
}
