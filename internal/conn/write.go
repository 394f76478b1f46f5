package conn

import (
	"bufio"
	"errors"
	"os"
	"sync"
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

// writeLoop is the only code that writes to the socket: drain the queue into
// a buffered writer, flush once, and again while there is more; then end.
// It is started by unlockKick when there is work and no writer, so it has no
// timer and no idle goroutine: keep-alive pings are asked for by the reader,
// whose read deadline notices a quiet peer.
func (c *Conn) writeLoop() {
	var batch []*wire.Frame
	for {
		c.mu.Lock()
		if len(c.queue) == 0 && !c.pongDue && !c.pingDue && !c.closing {
			if cap(c.queue) > maxIdleBatch {
				c.queue = nil
			}
			c.stopWriterLocked(false)
			c.mu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.queueBytes = 0
		if c.spaceFreed != nil {
			close(c.spaceFreed)
			c.spaceFreed = nil
		}
		var pong []byte
		if c.pongDue {
			pong = append([]byte(nil), c.pong...)
			c.pongDue = false
		}
		sendPing := c.pingDue
		c.pingDue = false
		closing, info, sendClose := c.closing, c.closeInfo, c.sendCloseFrame
		c.mu.Unlock()

		err := c.writeBatch(batch, pong, sendPing, closing && sendClose, info)
		if err == nil && len(batch) > 0 && c.opts.Written != nil {
			c.opts.Written(len(batch), firstStored(batch))
		}
		clear(batch)
		if err != nil {
			c.writeFailed(err)
		} else if closing {
			c.afterCloseSent()
		}
		if err != nil || closing {
			c.mu.Lock()
			c.stopWriterLocked(true)
			c.mu.Unlock()
			return
		}
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
	if final {
		c.writerDone = true
	}
	if c.writerStopped != nil {
		close(c.writerStopped)
		c.writerStopped = nil
	}
}

func (c *Conn) writeBatch(batch []*wire.Frame, pong []byte, ping, closeFrame bool, info CloseInfo) error {
	if len(batch) == 0 && pong == nil && !ping && !closeFrame {
		return nil
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	defer func() {
		bw.Reset(nil)
		writers.Put(bw)
	}()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout)); err != nil {
		return err
	}
	if pong != nil {
		if err := ws.WriteFrame(bw, ws.NewPongFrame(pong)); err != nil {
			return err
		}
	}
	for _, f := range batch {
		if _, err := bw.Write(f.Bytes()); err != nil {
			return err
		}
	}
	if ping {
		if _, err := bw.Write(pingFrame); err != nil {
			return err
		}
	}
	if closeFrame {
		body := ws.NewCloseFrameBody(info.Code, clipReason(info.Reason))
		if err := ws.WriteFrame(bw, ws.NewCloseFrame(body)); err != nil {
			return err
		}
	}
	return bw.Flush()
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

// afterCloseSent half-closes the socket so the peer sees the close frame and
// then EOF, and bounds how long the reader waits for the peer's reply.
func (c *Conn) afterCloseSent() {
	if tc, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	c.mu.Lock()
	c.closeDeadline = time.Now().Add(c.opts.CloseGrace)
	_ = c.nc.SetReadDeadline(c.closeDeadline)
	c.mu.Unlock()
}

// clipReason keeps a close reason within the 123 bytes a close frame allows.
func clipReason(s string) string {
	if len(s) > 123 {
		return s[:123]
	}
	return s
}
