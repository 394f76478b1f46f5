package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// maxNextMessage bounds a message NextText reads, as maxInflated bounds a
// compressed one.
const maxNextMessage = 16 << 20

// Errors of a frame NextText cannot read.
var (
	errMaskedFrame    = errors.New("server sent a masked frame")
	errReservedBits   = errors.New("server sent a frame with reserved bits set")
	errBadControl     = errors.New("server sent a fragmented or oversized control frame")
	errBadOpCode      = errors.New("server sent a frame with an unknown opcode")
	errBadContinuator = errors.New("server sent a continuation frame outside a message")
	errTooLarge       = fmt.Errorf("server sent a message over %d bytes", maxNextMessage)
)

// NextText is ReadText for readers that count many messages (the bench):
// it waits with no deadline, and returns the next text message's payload
// in a buffer of the connection's that the next call overwrites. It reads
// frame headers into the connection and the payload into that buffer, so a
// message costs no allocation, where ReadText allocates a reader and the
// payload for each. Pings are answered and binary messages skipped, as
// ReadText does; a close from the server is returned as *CloseError. A
// compressed connection reads through ReadText.
func (c *Conn) NextText() ([]byte, error) {
	if c.deflate {
		return c.ReadText(time.Time{})
	}
	c.next = c.next[:0]
	started := false // a message's first frame has come, its last not yet
	for {
		h, err := c.nextHeader()
		if err != nil {
			return nil, err
		}
		if h.OpCode.IsControl() {
			if err := c.control(h); err != nil {
				return nil, err
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && !started:
			return nil, errBadContinuator
		case h.OpCode != ws.OpContinuation && started:
			return nil, errors.New("server began a message inside another")
		case h.OpCode != ws.OpContinuation:
			c.nextBinary = h.OpCode == ws.OpBinary
		}
		started = true
		if uint64(len(c.next))+uint64(h.Length) > maxNextMessage {
			return nil, errTooLarge
		}
		at := len(c.next)
		c.next = append(c.next, make([]byte, h.Length)...)
		if _, err := io.ReadFull(c.r, c.next[at:]); err != nil {
			return nil, err
		}
		if !h.Fin {
			continue
		}
		if c.nextBinary {
			c.next, started = c.next[:0], false
			continue
		}
		if !utf8.Valid(c.next) {
			return nil, errors.New("server sent a text message that is not valid UTF-8")
		}
		return c.next, nil
	}
}

// nextHeader reads one frame header from the server into c.hdr.
func (c *Conn) nextHeader() (ws.Header, error) {
	b := c.hdr[:2]
	if _, err := io.ReadFull(c.r, b); err != nil {
		return ws.Header{}, err
	}
	h := ws.Header{Fin: b[0]&0x80 != 0, Rsv: (b[0] >> 4) & 0x7, OpCode: ws.OpCode(b[0] & 0xf)}
	switch {
	case b[1]&0x80 != 0:
		return h, errMaskedFrame
	case h.Rsv != 0:
		return h, errReservedBits
	case h.OpCode > ws.OpBinary && !h.OpCode.IsControl() || h.OpCode > ws.OpPong:
		return h, errBadOpCode
	}
	switch n := b[1] & 0x7f; n {
	case 126:
		if _, err := io.ReadFull(c.r, c.hdr[:2]); err != nil {
			return h, err
		}
		h.Length = int64(binary.BigEndian.Uint16(c.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(c.r, c.hdr[:8]); err != nil {
			return h, err
		}
		l := binary.BigEndian.Uint64(c.hdr[:8])
		if l > maxNextMessage {
			return h, errTooLarge
		}
		h.Length = int64(l)
	default:
		h.Length = int64(n)
	}
	if h.OpCode.IsControl() && (!h.Fin || h.Length > 125) {
		return h, errBadControl
	}
	return h, nil
}

// control handles a control frame whose header h was just read: a ping
// is answered, a pong skipped, a close answered and returned.
func (c *Conn) control(h ws.Header) error {
	p := c.hdr[:h.Length] // at most 125 bytes, checked by nextHeader
	if _, err := io.ReadFull(c.r, p); err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		return wsutil.WriteClientMessage(lockedRW{c}, ws.OpPong, p)
	case ws.OpClose:
		code, reason := ws.StatusNoStatusRcvd, ""
		if len(p) >= 2 {
			code, reason = ws.StatusCode(binary.BigEndian.Uint16(p)), string(p[2:])
		}
		_ = wsutil.WriteClientMessage(lockedRW{c}, ws.OpClose, ws.NewCloseFrameBody(code, ""))
		_ = c.nc.Close()
		return &CloseError{Code: code, Reason: reason}
	}
	return nil
}
