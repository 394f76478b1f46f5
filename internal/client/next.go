package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// maxServerMessage bounds a message read from the server, as it came or
// inflated: above the largest a node sends, a state of up to 32 MiB
// (docs/protocol.md, "The keyed state") in its response, so that only a
// broken server meets it.
const maxServerMessage = 64 << 20

// Errors of a frame NextText cannot read.
var (
	errMaskedFrame    = errors.New("server sent a masked frame")
	errReservedBits   = errors.New("server sent a frame with reserved bits set")
	errBadControl     = errors.New("server sent a fragmented or oversized control frame")
	errBadOpCode      = errors.New("server sent a frame with an unknown opcode")
	errBadContinuator = errors.New("server sent a continuation frame outside a message")
	errTooLarge       = fmt.Errorf("server sent a message over %d bytes", maxServerMessage)
)

// NextText is ReadText for readers that count many messages (the bench):
// it waits with no deadline, and returns the next text message's payload
// in a buffer of the connection's that the next read of any kind (NextText,
// ReadText, ReadFrame, Read) overwrites, with no allocation per message
// (MessageReader). Binary messages are skipped, as
// ReadText skips them. A compressed connection reads through ReadText.
func (c *Conn) NextText() ([]byte, error) {
	if c.deflate {
		return c.ReadText(time.Time{})
	}
	for {
		p, binary, err := c.messages().Next()
		if err != nil || !binary {
			return p, err
		}
	}
}

// messages is the connection's reader of plain (uncompressed) messages,
// made on first use; it belongs to the reading goroutine.
func (c *Conn) messages() *MessageReader {
	if c.mr.R == nil {
		// Closed ends the socket once the close reply is out, as a browser
		// does when the handshake is done.
		c.mr = MessageReader{R: c.r, W: lockedRW{c}, Closed: func() { _ = c.nc.Close() }}
	}
	return &c.mr
}

// MessageReader reads a WebSocket server's messages from R with no
// allocation per message: frame headers are parsed into the reader, and
// payloads go into one buffer that the next message overwrites. Pings are
// answered on W (which must serialise its writes with the application's),
// pongs skipped, and a close answered, Closed called (to close the
// socket) and returned as *CloseError. Read from one goroutine.
type MessageReader struct {
	R      io.Reader
	W      io.Writer
	Closed func()

	hdr [125]byte         // a frame header, or a control frame's payload
	out [2 + 4 + 125]byte // a control frame to send, written whole
	buf []byte            // the message being read
}

// Next returns the next data message: its payload, valid until the next
// call, and whether it is binary. A text message is valid UTF-8.
func (m *MessageReader) Next() (p []byte, binary bool, err error) {
	m.buf = m.buf[:0]
	started := false // a message's first frame has come, its last not yet
	isBinary := false
	for {
		h, err := m.header()
		if err != nil && started {
			err = unexpectedEOF(err) // the connection ended inside a message
		}
		if err != nil {
			return nil, false, err
		}
		if h.OpCode.IsControl() {
			if err := m.control(h); err != nil {
				return nil, false, err
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && !started:
			return nil, false, errBadContinuator
		case h.OpCode != ws.OpContinuation && started:
			return nil, false, errors.New("server began a message inside another")
		case h.OpCode != ws.OpContinuation:
			isBinary = h.OpCode == ws.OpBinary
		}
		started = true
		if uint64(len(m.buf))+uint64(h.Length) > maxServerMessage {
			return nil, false, errTooLarge
		}
		if err := m.readPayload(h.Length); err != nil {
			return nil, false, unexpectedEOF(err)
		}
		if !h.Fin {
			continue
		}
		if !isBinary && !utf8.Valid(m.buf) {
			return nil, false, errors.New("server sent a text message that is not valid UTF-8")
		}
		return m.buf, isBinary, nil
	}
}

// unexpectedEOF is io.ErrUnexpectedEOF for an end of the connection inside
// a message or frame, where io.EOF would read as a clean end.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readPayload appends n bytes of the server's to buf, growing it by at
// most readStep at a time: a length the server declares but never sends
// costs no more memory than what did come.
func (m *MessageReader) readPayload(n int64) error {
	for n > 0 {
		step := min(n, readStep)
		at := len(m.buf)
		m.buf = append(m.buf, make([]byte, step)...)
		if _, err := io.ReadFull(m.R, m.buf[at:]); err != nil {
			return err
		}
		n -= step
	}
	return nil
}

// readStep is how much readPayload reads at a time.
const readStep = 1 << 20

// header reads one frame header from the server.
func (m *MessageReader) header() (ws.Header, error) {
	b := m.hdr[:2]
	if _, err := io.ReadFull(m.R, b); err != nil {
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
		if _, err := io.ReadFull(m.R, m.hdr[:2]); err != nil {
			return h, unexpectedEOF(err)
		}
		h.Length = int64(binary.BigEndian.Uint16(m.hdr[:2]))
	case 127:
		if _, err := io.ReadFull(m.R, m.hdr[:8]); err != nil {
			return h, unexpectedEOF(err)
		}
		l := binary.BigEndian.Uint64(m.hdr[:8])
		if l > maxServerMessage {
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
func (m *MessageReader) control(h ws.Header) error {
	p := m.hdr[:h.Length] // at most 125 bytes, checked by header
	if _, err := io.ReadFull(m.R, p); err != nil {
		return unexpectedEOF(err)
	}
	switch h.OpCode {
	case ws.OpPing:
		return m.send(ws.OpPong, p)
	case ws.OpClose:
		return m.closed(p)
	}
	return nil
}

// closed answers the server's close, whose body is p, and returns it:
// an empty body is answered with an empty one (no one may send 1005),
// a malformed one (a lone byte, a code no endpoint may send, a reason
// that is not UTF-8) with 1002 and an error saying so.
func (m *MessageReader) closed(p []byte) error {
	code, reason := ws.StatusNoStatusRcvd, ""
	var bad error
	switch {
	case len(p) == 1:
		bad = errors.New("server sent a close frame with a one-byte body")
	case len(p) >= 2:
		code, reason = ws.StatusCode(binary.BigEndian.Uint16(p)), string(p[2:])
		bad = ws.CheckCloseFrameData(code, reason)
	}
	switch {
	case bad != nil:
		_ = m.send(ws.OpClose, ws.NewCloseFrameBody(ws.StatusProtocolError, ""))
	case len(p) == 0:
		_ = m.send(ws.OpClose, nil)
	default:
		_ = m.send(ws.OpClose, ws.NewCloseFrameBody(code, ""))
	}
	if m.Closed != nil {
		m.Closed()
	}
	if bad != nil {
		return fmt.Errorf("server's close: %w", bad)
	}
	return &CloseError{Code: code, Reason: reason}
}

// send writes one masked control frame with payload p (at most 125
// bytes) in a single Write, so that no other writer's frame can come
// between its header and its payload.
func (m *MessageReader) send(op ws.OpCode, p []byte) error {
	mask := ws.NewMask()
	f := m.out[:0]
	f = append(f, 0x80|byte(op), 0x80|byte(len(p)))
	f = append(f, mask[:]...)
	at := len(f)
	f = append(f, p...)
	ws.Cipher(f[at:], mask, 0)
	_, err := m.W.Write(f)
	return err
}
