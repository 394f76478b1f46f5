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
	r := &reader{c: c, cr: countingReader{r: c.nc}}
	for {
		switch r.readFrame() {
		case readDrain:
			c.drain()
			return
		case readEnd:
			return
		}
	}
}

// reader is the state the reader goroutine keeps between frames; it is
// owned by that goroutine alone.
type reader struct {
	c      *Conn
	cr     countingReader
	msg    []byte    // the message being assembled from fragments
	msgDue time.Time // when the message in progress must be complete
	msgOp  ws.OpCode // its opcode, 0 when no message is in progress
	msgZ   bool      // it is compressed (RSV1 on its first frame)
	pinged bool      // a keep-alive ping is out and unanswered
	polled bool      // read only when the poller saw data: keep-alive is the wheel's
}

// readNext says what the reader does after a frame.
type readNext int

const (
	readMore  readNext = iota // read the next frame
	readDrain                 // a close is under way: wait for the peer's
	readEnd                   // the socket failed: nothing more to read
)

// readFrame reads and handles one frame.
func (r *reader) readFrame() readNext {
	c := r.c
	wait := c.opts.PingInterval
	if r.pinged || r.polled {
		// A polled reader starts with data waiting: the frame is due
		// now, not at the next keep-alive.
		wait = c.opts.PongTimeout
	}
	if !c.armReadDeadline(r.bound(time.Now().Add(wait))) {
		return readDrain
	}
	r.cr.n = 0
	h, err := ws.ReadHeader(&r.cr)
	if err != nil {
		return r.headerFailed(err)
	}
	// Any frame shows the peer is alive.
	r.pinged = false
	now := time.Now()
	c.lastRead.Store(now.UnixNano())
	if c.pingAt.Swap(0) != 0 && c.timer != nil {
		// The wheel waits for the answer until PongTimeout, which may be
		// longer than the ping interval: the next ping is due sooner.
		c.timer.Schedule(now.Add(c.opts.PingInterval))
	}
	if err := checkHeader(h, c.deflate); err != nil {
		return r.refuse(wire.CloseProtocol, err.Error())
	}
	if h.OpCode.IsControl() {
		return r.readControl(h)
	}
	return r.readData(h)
}

// bound brings deadline forward to the end of the message in progress.
func (r *reader) bound(deadline time.Time) time.Time {
	if r.msgOp != 0 && r.msgDue.Before(deadline) {
		return r.msgDue
	}
	return deadline
}

// armFrame gives the rest of a frame whose header arrived a pong timeout
// of its own (within the message's time): a header that arrived just
// before the keep-alive deadline must not have its payload cut off by it.
// It reports false when a close is under way.
func (r *reader) armFrame() bool {
	return r.c.armReadDeadline(r.bound(time.Now().Add(r.c.opts.PongTimeout)))
}

// headerFailed handles a header that could not be read.
func (r *reader) headerFailed(err error) readNext {
	switch {
	case isHeaderError(err):
		return r.refuse(wire.CloseProtocol, err.Error())
	case !r.polled && !r.pinged && r.cr.n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !r.overdue():
		// Quiet for a ping interval: ask the peer for a pong. The
		// connection needs no timer of its own for this.
		r.c.requestPing()
		r.pinged = true
		return readMore
	}
	return r.failed(err)
}

// overdue reports whether the message in progress is past its time.
func (r *reader) overdue() bool {
	return r.msgOp != 0 && !time.Now().Before(r.msgDue)
}

// failed ends the reading after a failed read: a message past its time is
// refused with a close frame (the socket still works); anything else
// means the socket failed or the peer went silent.
func (r *reader) failed(err error) readNext {
	if errors.Is(err, os.ErrDeadlineExceeded) && r.overdue() {
		// 1008, not 1002: the client broke no framing rule, only this
		// server's bound on how long one message may take.
		return r.refuse(wire.ClosePolicy, "message not completed in time")
	}
	r.c.readFailed(err)
	return readEnd
}

// refuse closes the connection with code for what the peer sent.
func (r *reader) refuse(code ws.StatusCode, reason string) readNext {
	r.c.Close(code, reason)
	return readDrain
}

// readData reads a text, binary or continuation frame and dispatches the
// message it completes.
func (r *reader) readData(h ws.Header) readNext {
	c := r.c
	switch {
	case h.Length > c.opts.MaxMessageSize-int64(len(r.msg)):
		return r.refuse(wire.CloseTooBig, "message over the size limit")
	case h.OpCode == ws.OpContinuation && r.msgOp == 0,
		h.OpCode != ws.OpContinuation && r.msgOp != 0:
		return r.refuse(wire.CloseProtocol, "bad fragmentation")
	case h.OpCode != ws.OpContinuation:
		// A message's time counts from its first header, so a client
		// cannot hold one open by trickling fragments, each of which
		// would keep the keep-alive deadline at bay.
		r.msgOp = h.OpCode
		r.msgZ = h.Rsv&rsv1 != 0
		r.msgDue = time.Now().Add(c.opts.MessageTimeout)
		c.msgDue.Store(r.msgDue.UnixNano()) // for the wheel, while parked between fragments
		if c.timer != nil {
			c.timer.Schedule(r.msgDue)
		}
	}
	if !r.armFrame() {
		return readDrain
	}
	start := len(r.msg)
	r.msg = append(r.msg, make([]byte, h.Length)...)
	if _, err := io.ReadFull(c.nc, r.msg[start:]); err != nil {
		return r.failed(err)
	}
	ws.Cipher(r.msg[start:], h.Mask, 0)
	if !h.Fin {
		return readMore
	}
	msg, op, z := r.msg, r.msgOp, r.msgZ
	r.msg, r.msgOp, r.msgZ, r.msgDue = nil, 0, false, time.Time{}
	c.msgDue.Store(0)
	if z && op == ws.OpText {
		// The whole message, after reassembly (RFC 7692 section 6.2).
		var err error
		if msg, err = wire.Inflate(nil, msg, c.opts.MaxMessageSize); err != nil {
			if errors.Is(err, wire.ErrInflatedTooBig) {
				return r.refuse(wire.CloseTooBig, "message over the size limit once inflated")
			}
			return r.refuse(CloseInvalidPayload, "invalid compressed data")
		}
	}
	// Checked on the whole message, not per fragment: a character may be
	// split between two fragments.
	if op == ws.OpText && !utf8.Valid(msg) {
		return r.refuse(CloseInvalidPayload, "text message is not valid UTF-8")
	}
	if a, ok := c.h.(Arriver); ok {
		var p []byte
		if op == ws.OpText {
			p = msg
		}
		a.Arrived(c, p, op != ws.OpText)
	}
	c.dispatch(message{op: op, p: msg})
	return readMore
}

// message is a complete client message on its way to the handler.
type message struct {
	p  []byte
	op ws.OpCode // ws.OpText or ws.OpBinary; 0 for no message
}

// dispatch hands a complete message to the handler goroutine, starting one
// if none runs, and returns: the reader goes on reading while the handler
// works, so pings are answered and a client's close is noticed (firing
// Closed, which cancels the handler's work) however long a subscribe
// takes. Handler calls stay one at a time and in order: one message may
// wait while the handler runs, and the reader, with a second one, waits
// for the handler to take the first. That bounds what a client can queue
// to two messages, and the reader's wait is the backpressure a client that
// pipelines requests gets.
//
// The handler goroutine exists only while there is a message to handle, so
// an idle connection costs none. Its deep calls (JSON, joining a room, NATS
// requests) grow its stack, not the reader's.
func (c *Conn) dispatch(m message) {
	c.mu.Lock()
	for c.handling && c.pending.op != 0 && !c.closing {
		freed := c.handlerFreedLocked()
		c.mu.Unlock()
		select {
		case <-freed:
		case <-c.Closed():
		}
		c.mu.Lock()
	}
	switch {
	case c.closing:
		// Nobody will read the answers: drop it.
	case c.handling:
		c.pending = m
	default:
		c.handling = true
		go c.handleLoop(m)
	}
	c.mu.Unlock()
}

// handleLoop is the handler goroutine: it handles m, then the message that
// came meanwhile, if any, and ends when there is none. Once a close is
// requested a waiting message is dropped.
func (c *Conn) handleLoop(m message) {
	for m.op != 0 {
		c.handle(m)
		c.mu.Lock()
		m = c.pending
		c.pending = message{}
		if c.closing {
			m = message{}
		}
		c.handling = m.op != 0
		if c.handlerFreed != nil {
			close(c.handlerFreed)
			c.handlerFreed = nil
		}
		c.mu.Unlock()
	}
}

func (c *Conn) handle(m message) {
	if m.op == ws.OpText {
		c.h.HandleMessage(c, m.p)
	} else {
		c.h.HandleBinary(c)
	}
}

// handlerFreedLocked returns the channel the handler goroutine closes when
// it next takes the waiting message or ends.
func (c *Conn) handlerFreedLocked() <-chan struct{} {
	if c.handlerFreed == nil {
		c.handlerFreed = make(chan struct{})
	}
	return c.handlerFreed
}

// waitHandler waits until the handler goroutine has ended. The reader gets
// here only once a close was requested, so no message waits any more and
// none is dispatched after.
func (c *Conn) waitHandler() {
	c.mu.Lock()
	for c.handling {
		freed := c.handlerFreedLocked()
		c.mu.Unlock()
		<-freed
		c.mu.Lock()
	}
	c.mu.Unlock()
}

// armReadDeadline sets the deadline of the next read. It reports false,
// leaving the deadline alone, when a close is under way: the reader should
// only drain then, within the deadline the close set.
func (c *Conn) armReadDeadline(deadline time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	_ = c.nc.SetReadDeadline(deadline)
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

// rsv1 is the RSV1 bit of ws.Header.Rsv: permessage-deflate's
// "compressed" bit (RFC 7692 section 6).
const rsv1 = 0x4

// checkHeader applies RFC 6455 section 5's rules that ws.ReadHeader leaves
// to its caller. With deflate negotiated, RSV1 may be set on the first
// frame of a data message, and only there (RFC 7692 section 6).
func checkHeader(h ws.Header, deflate bool) error {
	switch {
	case !h.Masked:
		return errors.New("unmasked client frame")
	case h.Rsv&rsv1 != 0 && deflate && (h.OpCode.IsControl() || h.OpCode == ws.OpContinuation):
		return errors.New("compressed bit on a control frame or continuation")
	case h.Rsv&^rsv1 != 0, h.Rsv != 0 && !deflate:
		return errors.New("reserved bits set")
	case h.OpCode.IsReserved():
		return errors.New("reserved opcode")
	case h.OpCode.IsControl() && (h.Length > 125 || !h.Fin):
		return errors.New("bad control frame")
	}
	return nil
}

// readControl reads and handles a ping, pong or close frame.
func (r *reader) readControl(h ws.Header) readNext {
	c := r.c
	if !r.armFrame() {
		return readDrain
	}
	var buf [125]byte
	p := buf[:h.Length]
	if _, err := io.ReadFull(c.nc, p); err != nil {
		return r.failed(err)
	}
	ws.Cipher(p, h.Mask, 0)
	switch h.OpCode {
	case ws.OpPing:
		c.requestPong(p)
	case ws.OpClose:
		c.closeByPeer(echoCode(p), "closed by client", true)
		return readDrain
	}
	return readMore
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
	if c.closeDeadline == 0 {
		c.closeDeadline = time.Now().Add(c.opts.CloseGrace + c.opts.WriteTimeout).UnixNano()
	}
	_ = c.nc.SetReadDeadline(time.Unix(0, c.closeDeadline))
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

// finish waits for the writer, closes the socket, waits for a handler that
// still runs (it was told by Closed), and tells the handler: HandleClose
// comes after the last HandleMessage has returned.
func (c *Conn) finish() {
	c.waitWriter()
	c.closeSocket()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.waitHandler()
	c.mu.Lock()
	info := c.closeInfo
	c.mu.Unlock()
	c.h.HandleClose(c, info)
	c.done.Fire()
}
