package conn

import (
	"github.com/roomcast/roomcast/internal/wire"
)

// A live event usually finds its connection idle: nothing queued, no
// writer running, and room in the socket's buffer. Then the frame is
// written at once by whoever queues it (a room's fan-out), with one
// non-blocking write, instead of starting a writer goroutine to write it:
// no goroutine to create and schedule, no deadline to arm, one system call
// per delivery. Whatever the socket does not take at once (its buffer is
// full, or it failed) is left to the writer, which waits with a deadline
// or meets the failure. TLS connections always go through the writer.

// writeNowLocked writes f straight to the socket if the connection is idle
// and reports whether all of it went; a part written is recorded, and the
// caller queues f for the writer to finish. Needs mu.
func (c *Conn) writeNowLocked(f *wire.Frame) bool {
	if c.raw == nil || c.writing || c.writerDone || len(c.queue) > 0 || c.pongDue || c.pingDue || c.closing {
		return false
	}
	p := f.Bytes()
	n := writeNonBlocking(c.raw, p)
	if n == len(p) {
		return true
	}
	c.queueOff = n
	return false
}
