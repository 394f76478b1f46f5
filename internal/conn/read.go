package conn

import (
	"errors"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"

	"github.com/roomcast/roomcast/internal/wire"
)

// readLoop reads frames until the connection ends, then finishes it.
func (c *Conn) readLoop() {
	defer c.finish()
	var msg []byte      // the message being assembled from fragments
	var msgOp ws.OpCode // its opcode, 0 when no message is in progress
	pinged := false     // a keep-alive ping is out and unanswered
	cr := &countingReader{r: c.nc}
	for {
		if !c.armReadDeadline(pinged) {
			c.drain()
			return
		}
		cr.n = 0
		h, err := ws.ReadHeader(cr)
		if err != nil {
			if !pinged && cr.n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				// Quiet for a ping interval: ask the peer for a pong. The
				// connection needs no timer of its own for this.
				c.requestPing()
				pinged = true
				continue
			}
			if isHeaderError(err) {
				c.Close(wire.CloseProtocol, err.Error())
				c.drain()
				return
			}
			c.readFailed(err)
			return
		}
		pinged = false // any frame shows the peer is alive
		// The rest of the frame gets a pong timeout of its own: a header
		// that arrived just before the keep-alive deadline must not have
		// its payload cut off by it.
		if !c.armFrameDeadline() {
			c.drain()
			return
		}
		if err := checkHeader(h); err != nil {
			c.Close(wire.CloseProtocol, err.Error())
			c.drain()
			return
		}
		if h.OpCode.IsControl() {
			if !c.readControl(h) {
				c.drain()
				return
			}
			continue
		}
		if h.Length > c.opts.MaxMessageSize-int64(len(msg)) {
			c.Close(wire.CloseTooBig, "message over the size limit")
			c.drain()
			return
		}
		switch {
		case h.OpCode == ws.OpContinuation && msgOp == 0,
			h.OpCode != ws.OpContinuation && msgOp != 0:
			c.Close(wire.CloseProtocol, "bad fragmentation")
			c.drain()
			return
		case h.OpCode != ws.OpContinuation:
			msgOp = h.OpCode
		}
		start := len(msg)
		msg = append(msg, make([]byte, h.Length)...)
		if _, err := io.ReadFull(c.nc, msg[start:]); err != nil {
			c.readFailed(err)
			return
		}
		ws.Cipher(msg[start:], h.Mask, 0)
		if !h.Fin {
			continue
		}
		// Checked on the whole message, not per fragment: a character may
		// be split between two fragments.
		if msgOp == ws.OpText && !utf8.Valid(msg) {
			c.Close(CloseInvalidPayload, "text message is not valid UTF-8")
			c.drain()
			return
		}
		c.dispatch(msgOp, msg)
		msg, msgOp = nil, 0
	}
}

// dispatch hands a complete message to the handler on a goroutine of its
// own and waits for it: the handler's deep calls (JSON, joining a room,
// NATS requests) grow that goroutine's stack, not the reader's, which then
// stays small while the connection idles. Messages are rare next to the
// time a connection spends idle, so the goroutine per message is cheap.
func (c *Conn) dispatch(op ws.OpCode, msg []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if op == ws.OpText {
			c.h.HandleMessage(c, msg)
		} else {
			c.h.HandleBinary(c)
		}
	}()
	<-done
}

// armReadDeadline sets the keep-alive deadline for the next frame: a ping
// interval of quiet, or the pong timeout once a ping is out. It reports
// false when a close is under way and the reader should only drain.
func (c *Conn) armReadDeadline(pinged bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	wait := c.opts.PingInterval
	if pinged {
		wait = c.opts.PongTimeout
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
	return true
}

// armFrameDeadline gives the rest of a frame a pong timeout to arrive; it
// reports false when a close is under way.
func (c *Conn) armFrameDeadline() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(c.opts.PongTimeout))
	return true
}

// countingReader counts what a frame header read consumed, so a deadline
// that passes before any byte of a frame can be told from one mid-frame.
type countingReader struct {
	r io.Reader
	n int
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	cr.n += n
	return n, err
}

// isHeaderError tells a header ws.ReadHeader refused as malformed, which
// is the peer's protocol error (answered with 1002), from a failed read of
// the socket (EOF, reset, deadline), after which nothing can be answered.
func isHeaderError(err error) bool {
	return errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected)
}

// checkHeader applies RFC 6455 section 5's rules that ws.ReadHeader leaves
// to its caller.
func checkHeader(h ws.Header) error {
	switch {
	case !h.Masked:
		return errors.New("unmasked client frame")
	case h.Rsv != 0:
		return errors.New("reserved bits set")
	case h.OpCode.IsReserved():
		return errors.New("reserved opcode")
	case h.OpCode.IsControl() && (h.Length > 125 || !h.Fin):
		return errors.New("bad control frame")
	}
	return nil
}

// readControl handles a ping, pong or close; false means the peer closed.
func (c *Conn) readControl(h ws.Header) bool {
	var buf [125]byte
	p := buf[:h.Length]
	if _, err := io.ReadFull(c.nc, p); err != nil {
		c.readFailed(err)
		return false
	}
	ws.Cipher(p, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		c.requestPong(p)
	case ws.OpClose:
		c.closeByPeer(echoCode(p), "closed by client", true)
		return false
	}
	return true
}

// echoCode is the code to answer a client's close frame with: its own code
// when it may be sent on the wire, 1000 for an empty close, 1002 for
// anything malformed. The codes allowed are RFC 6455 section 7.4's plus
// those the IANA registry added since (1012 service restart, 1013 try again
// later, 1014 bad gateway); 1004 is reserved and 1005, 1006 and 1015 only
// ever describe a close locally, so a peer must not send them.
func echoCode(p []byte) ws.StatusCode {
	if len(p) == 0 {
		return wire.CloseNormal
	}
	if len(p) == 1 || !utf8.Valid(p[2:]) {
		return wire.CloseProtocol
	}
	code, _ := ws.ParseCloseFrameData(p)
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return code
	}
	return wire.CloseProtocol
}

// readFailed ends a connection whose socket failed or timed out: nothing more
// can be read, so no close frame is waited for.
func (c *Conn) readFailed(err error) {
	reason := "read: " + err.Error()
	timeout := errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		reason = "connection closed by client"
	case timeout:
		reason = "keep-alive timeout"
	}
	c.mu.Lock()
	if c.startCloseLocked(wire.CloseAbnormal, reason, false) {
		c.closeInfo.ByPeer = true
		c.closeInfo.Timeout = timeout
		c.sendCloseFrame = false
	}
	c.unlockKick()
}

func (c *Conn) closeByPeer(code ws.StatusCode, reason string, echo bool) {
	c.mu.Lock()
	if c.startCloseLocked(code, reason, false) {
		c.closeInfo.ByPeer = true
		c.sendCloseFrame = echo
	}
	c.unlockKick()
}

// drain discards input until the peer closes or the close grace ends, so the
// socket is not reset while the peer still reads our close frame.
func (c *Conn) drain() {
	c.mu.Lock()
	if c.closeDeadline.IsZero() {
		c.closeDeadline = time.Now().Add(c.opts.CloseGrace + c.opts.WriteTimeout)
	}
	_ = c.nc.SetReadDeadline(c.closeDeadline)
	c.mu.Unlock()
	_, _ = io.Copy(io.Discard, c.nc)
}

// waitWriter waits until no writer runs, and lets none start after. The
// reader gets here only once a close was requested, and that request
// started a writer to write it, so the close is on the wire (or the socket
// failed) when it returns.
func (c *Conn) waitWriter() {
	c.mu.Lock()
	for c.writing {
		if c.writerStopped == nil {
			c.writerStopped = make(chan struct{})
		}
		stopped := c.writerStopped
		c.mu.Unlock()
		<-stopped
		c.mu.Lock()
	}
	c.writerDone = true
	c.mu.Unlock()
}

// finish waits for the writer, closes the socket and tells the handler.
func (c *Conn) finish() {
	c.waitWriter()
	_ = c.nc.Close()
	c.mu.Lock()
	info := c.closeInfo
	c.mu.Unlock()
	c.h.HandleClose(c, info)
	close(c.done)
}
