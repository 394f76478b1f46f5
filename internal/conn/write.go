package conn

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// writers are pooled so an idle connection holds no write buffer.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// pingFrame is an empty server ping.
var pingFrame = ws.MustCompileFrame(ws.NewPingFrame(nil))

// maxIdleBatch is the largest queue slice a connection keeps between
// bursts; a larger one is dropped so idle connections stay small.
const maxIdleBatch = 8

// writeLoop is the only code that writes to the socket but for an inline
// write (inline.go), which hands it what it could not finish: drain the
// queue into a buffered writer, flush once, and again while there is more;
// then end. It is started by unlockKick when there is work and no writer,
// so it has no timer and no idle goroutine: keep-alive pings are asked for
// by the reader, whose read deadline notices a quiet peer. rest, when not
// empty, is the batch an inline write took, whose first skip bytes it
// wrote: the writer writes the rest of it first.
func (c *Conn) writeLoop(rest []*wire.Frame, skip int) {
	batch := rest
	if len(rest) > 0 {
		n, err := c.writeBatch(rest, skip, nil, false, false, CloseInfo{})
		if skip > 0 && errors.Is(err, errAbandoned) {
			err = errAbandonedMidFrame
		}
		if c.wrote(rest, n, err, false) {
			return
		}
	}
	for {
		c.mu.Lock()
		// The last batch is written: cleared under mu, since Stats reads
		// it as in flight until then.
		c.landLocked(batch)
		if len(c.queue) == 0 && !c.pongDue && !c.pingDue && !c.closing {
			if cap(c.queue) > maxIdleBatch {
				c.queue = nil
			}
			c.stopWriterLocked(false)
			c.mu.Unlock()
			return
		}
		var dropped int
		batch, dropped = c.takeLocked(batch)
		c.flyLocked(batch)
		c.freeSpaceLocked()
		var pong []byte
		if c.pongDue {
			pong = append([]byte(nil), c.pong...)
			c.pongDue = false
		}
		sendPing := c.pingDue
		c.pingDue = false
		// An abandoned connection's close frame is tried by endAbandoned.
		closing, info, sendClose := c.closing, c.closeInfo, c.sendCloseFrame && !c.abandoned.Load()
		c.mu.Unlock()
		if dropped > 0 && c.opts.Conflated != nil {
			c.opts.Conflated(dropped)
		}

		n, err := c.writeBatch(batch, 0, pong, sendPing, closing && sendClose, info)
		if c.wrote(batch, n, err, closing) {
			return
		}
	}
}

// wrote reports a write of batch (n bytes of its frames) to the metrics
// and ends the writer, reporting so, when the write failed, closed the
// connection or the connection was abandoned.
func (c *Conn) wrote(batch []*wire.Frame, n int, err error, closing bool) bool {
	if err == nil && len(batch) > 0 && c.opts.Written != nil {
		c.opts.Written(len(batch), n, firstStored(batch))
	}
	switch {
	case c.abandoned.Load():
		c.endAbandoned(err)
	case err != nil:
		c.writeFailed(err)
	case closing:
		c.afterCloseSent()
	}
	if err == nil && !closing && !c.abandoned.Load() {
		return false
	}
	c.mu.Lock()
	c.landLocked(batch)
	c.stopWriterLocked(true)
	c.mu.Unlock()
	return true
}

// freeSpaceLocked wakes what waits for the writer to take the queue (a
// Send, a WaitRoom); the caller just took it. Needs mu.
func (c *Conn) freeSpaceLocked() {
	if c.spaceFreed != nil {
		close(c.spaceFreed)
		c.spaceFreed = nil
	}
}

// landLocked ends the writer's hold on batch, written (or failed): its
// frames are no longer in flight. Needs mu.
func (c *Conn) landLocked(batch []*wire.Frame) {
	clear(batch)
	c.inflight = nil
}

// takeLocked hands the queue to the writer, swapped with batch, the
// writer's emptied slice from its last write: all of it, or on a
// conflating connection at most maxConflatingBatch bytes (at least one
// frame), the rest left queued, after compacting the queue: nothing the
// writer takes can be dropped later, so it takes nothing superseded. It
// returns how many frames the compaction dropped. Needs mu.
func (c *Conn) takeLocked(batch []*wire.Frame) (_ []*wire.Frame, dropped int) {
	if c.conf != nil && len(c.queue) > 1 {
		dropped = c.compactLocked()
	}
	// A closing connection's writer writes the close frame after this
	// batch: it takes everything.
	if c.conf == nil || c.closing || c.queueBytes <= maxConflatingBatch {
		batch, c.queue = c.queue, batch[:0]
		c.queueBytes = 0
		if c.conf != nil {
			c.conf.next = c.compactStep()
		}
		return batch, dropped
	}
	n, bytes := 0, 0
	for n < len(c.queue) && (n == 0 || bytes+c.queue[n].Len() <= maxConflatingBatch) {
		bytes += c.queue[n].Len()
		n++
	}
	batch = append(batch[:0], c.queue[:n]...)
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	c.queueBytes -= bytes
	c.conf.next = rest + c.compactStep()
	return batch, dropped
}

// flyLocked records the batch the writer took as in flight, for Stats,
// with the time its oldest frame was queued. Needs mu.
func (c *Conn) flyLocked(batch []*wire.Frame) {
	if len(batch) > 0 {
		c.inflight, c.inflightSince = batch, c.queuedSince
	}
}

// firstStored is the stored time of the batch's first event, the one that
// waited longest in the queue; it stops at the first event, so a batch of
// events costs one look, not one per frame.
func firstStored(batch []*wire.Frame) time.Time {
	for _, f := range batch {
		if !f.Stored.IsZero() {
			return f.Stored
		}
	}
	return time.Time{}
}

// stopWriterLocked records that the writer ends; final means no writer may
// start again (the close is written or the socket failed).
func (c *Conn) stopWriterLocked(final bool) {
	c.writing = false
	c.wroteAt = inlineClock()
	if final {
		c.writerDone = true
	}
	if c.writerStopped != nil {
		close(c.writerStopped)
		c.writerStopped = nil
	}
}

// writeBatch writes the batch, preceded by a pong and followed by a ping
// and the close frame as asked, under one deadline, but for the batch's
// first skip bytes, already written. It returns the bytes of the batch's
// frames, skipped ones included. Control frames are never compressed.
func (c *Conn) writeBatch(batch []*wire.Frame, skip int, pong []byte, ping, closeFrame bool, info CloseInfo) (int, error) {
	if len(batch) == 0 && pong == nil && !ping && !closeFrame {
		return 0, nil
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return 0, err
	}
	if c.abandoned.Load() {
		// Abandoned before the deadline above was set, which undid the
		// one that was to wake this write.
		return 0, errAbandoned
	}
	// The writer goroutine starts with the smallest stack, and the socket
	// write below it must fit in it, or every writer started for one frame
	// pays a stack copy (measured: a quarter of the CPU per delivery). So
	// this frame is kept lean: no defers, cold work in helpers not inlined.
	var w frameWriter
	if c.tcp {
		w.vec = vectors.Get().(*net.Buffers)
	} else {
		// TLS would make a record of each frame written on its own.
		w.buf = writers.Get().(*bufio.Writer)
		w.buf.Reset(c.nc)
	}
	if pong != nil {
		w.pong(pong)
	}
	n := w.frames(batch, c.deflate, skip)
	if ping {
		w.frame(pingFrame)
	}
	if closeFrame {
		w.closeFrame(info)
	}
	written, err := w.flush(c.nc)
	w.release()
	if err != nil && written == 0 {
		err = c.unstarted(err)
	}
	return n, err
}

// unstarted is the error of a write that sent nothing: errAbandoned when
// abandonLocked's wake-up deadline ended it before its first byte, for
// then the socket is at a frame's boundary, with room or not, and
// endAbandoned may try the close frame, as if the write had not begun.
//
//go:noinline
func (c *Conn) unstarted(err error) error {
	if c.abandoned.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		return errAbandoned
	}
	return err
}

// vectors are pooled like writers: a plain TCP connection's batch is
// written with one writev of the shared frames, copying none of them.
var vectors = sync.Pool{New: func() any { return new(net.Buffers) }}

// frameWriter gathers a batch's frames for one write: as a vector of the
// frames themselves (plain TCP), or copied into a buffer (TLS).
type frameWriter struct {
	vec *net.Buffers
	buf *bufio.Writer
	err error
}

func (w *frameWriter) frame(p []byte) {
	switch {
	case w.err != nil:
	case w.vec != nil:
		*w.vec = append(*w.vec, p)
	default:
		_, w.err = w.buf.Write(p)
	}
}

// frames adds the batch's frames, compressed for a deflate connection,
// but for their first skip bytes, and returns their bytes, skipped ones
// included.
func (w *frameWriter) frames(batch []*wire.Frame, deflate bool, skip int) int {
	n := 0
	for _, f := range batch {
		p := f.Bytes()
		if deflate {
			p = f.Deflated() // built by the first writer, shared by all
		}
		n += len(p)
		if skip >= len(p) {
			skip -= len(p)
			continue
		}
		w.frame(p[skip:])
		skip = 0
	}
	return n
}

// pong and closeFrame add a control frame made for this write; they are
// kept out of line so their frame structs do not weigh on writeBatch's.
//
//go:noinline
func (w *frameWriter) pong(payload []byte) { w.control(ws.NewPongFrame(payload)) }

//go:noinline
func (w *frameWriter) closeFrame(info CloseInfo) {
	w.control(ws.NewCloseFrame(ws.NewCloseFrameBody(info.Code, clipReason(info.Reason))))
}

// control adds a frame made for this write (a pong, a close).
func (w *frameWriter) control(f ws.Frame) {
	p, err := ws.CompileFrame(f)
	if err != nil {
		w.err = err
		return
	}
	w.frame(p)
}

// flush writes what was gathered. Of a vector (plain TCP) it returns how
// many bytes went out; of a buffer (TLS), which may have sent part of a
// large frame while gathering, -1: not known.
func (w *frameWriter) flush(nc net.Conn) (int64, error) {
	switch {
	case w.vec != nil && w.err != nil:
		return 0, w.err // a control frame could not be made: nothing was written
	case w.vec != nil:
		v := *w.vec // WriteTo consumes its receiver; the backing array is kept
		return v.WriteTo(nc)
	case w.err != nil:
		return -1, w.err
	default:
		return -1, w.buf.Flush()
	}
}

// release gives the vector or buffer back to its pool.
func (w *frameWriter) release() {
	if w.vec != nil {
		w.putVectors()
	} else {
		w.putBuffer()
	}
}

func (w *frameWriter) putVectors() {
	clear((*w.vec)[:cap(*w.vec)])
	if cap(*w.vec) > 1024 {
		return // an outsized batch's vector goes to the collector
	}
	*w.vec = (*w.vec)[:0]
	vectors.Put(w.vec)
}

func (w *frameWriter) putBuffer() {
	w.buf.Reset(nil)
	writers.Put(w.buf)
}

// writeFailed ends a connection whose socket cannot take more: a peer that
// stopped reading (the write deadline passed) or went away.
func (c *Conn) writeFailed(err error) {
	c.mu.Lock()
	if c.startCloseLocked(wire.CloseAbnormal, "write: "+err.Error(), false) {
		c.sendCloseFrame = false
		c.closeInfo.Timeout = errors.Is(err, os.ErrDeadlineExceeded)
		c.closeInfo.ByPeer = !c.closeInfo.Timeout
	}
	c.unlockKick()
	c.closeSocket() // unblocks the reader
}

// errAbandoned ends the write of an abandoned connection before it starts.
var errAbandoned = errors.New("send queue overflow: connection abandoned")

// errAbandonedMidFrame is errAbandoned when an inline write had begun a
// frame: the socket is reset, for a close frame after part of a frame
// would be garbage to the peer.
var errAbandonedMidFrame = errors.New("send queue overflow: connection abandoned in a frame")

// endAbandoned ends the writes of an abandoned connection (abandonLocked).
// When the last write went through whole (err nil) or never started
// (errAbandoned), the socket had room: the peer reads, only more slowly
// than its rooms are written, so the 4008 close frame is tried once,
// without waiting, and the socket is closed after it without waiting for
// the peer's reply (an abandoned connection waits for no one). A write
// woken before its first byte counts as never started (unstarted): its
// socket may be full, and then the try fails. Otherwise the write was
// woken in the middle of a frame, or the close frame does not go through
// whole: the socket is reset.
func (c *Conn) endAbandoned(err error) {
	// mu orders this after abandonLocked's wake-up deadline, which
	// tryCloseFrame clears.
	c.mu.Lock()
	info := c.closeInfo
	c.mu.Unlock()
	if (err == nil || errors.Is(err, errAbandoned)) && c.tryCloseFrame(info) {
		c.afterCloseSent()
		return
	}
	c.resetSocket()
}

// tryCloseFrame writes the close frame with one non-blocking system call
// and reports whether all of it went out. Only plain TCP sockets allow it:
// under TLS nothing is tried (the frame would go into a record whose
// write could wait).
func (c *Conn) tryCloseFrame(info CloseInfo) bool {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return false
	}
	p, err := ws.CompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(info.Code, clipReason(info.Reason))))
	if err != nil {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil || c.nc.SetWriteDeadline(time.Time{}) != nil {
		return false
	}
	n, werr := 0, error(nil)
	err = rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true // never wait for the socket
	})
	return err == nil && werr == nil && n == len(p)
}

// afterCloseSent half-closes the socket so the peer sees the close frame and
// then EOF, and bounds how long the reader waits for the peer's reply.
func (c *Conn) afterCloseSent() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	c.mu.Lock()
	deadline := time.Now().Add(c.opts.CloseGrace)
	c.closeDeadline = deadline.UnixNano()
	_ = c.nc.SetReadDeadline(deadline)
	c.mu.Unlock()
}

// clipReason keeps a close reason within the 123 bytes a close frame allows.
func clipReason(s string) string {
	if len(s) > 123 {
		return s[:123]
	}
	return s
}
