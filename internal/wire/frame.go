package wire

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// maxHeaderLen is the longest header of an unmasked server frame.
const maxHeaderLen = 10

// Frame is a prepared, immutable server-to-client WebSocket text frame:
// header and payload in one slice. A room builds it once per event and queues
// the same Frame to every member; writers copy its bytes to the socket and
// never modify them.
type Frame struct {
	b   []byte // header followed by payload
	hdr int    // header length
	// Seq is the event's stream sequence, 0 for frames that are not events.
	Seq uint64
	// Stored is when the stream stored the event, zero for other frames.
	Stored time.Time
	// Room and Key name the key of a keyed event's frame, "" otherwise:
	// a conflating connection drops a queued frame when a newer one of
	// the same room and key follows it.
	Room, Key string
	// z is the compressed form (see Deflated), nil until a connection
	// that negotiated permessage-deflate writes the frame: a frame only
	// plain connections write costs this one pointer more.
	z atomic.Pointer[deflated]
}

// NewTextFrame builds the frame for payload. The payload is copied.
func NewTextFrame(payload []byte) *Frame {
	buf := make([]byte, maxHeaderLen+len(payload))
	copy(buf[maxHeaderLen:], payload)
	return frameIn(buf)
}

// frameIn turns buf, whose payload starts at maxHeaderLen, into a Frame by
// writing the header right before the payload, so no copy is needed.
func frameIn(buf []byte) *Frame {
	b := frameBytes(buf, 0x81) // FIN, opcode text
	return &Frame{b: b, hdr: len(b) - (len(buf) - maxHeaderLen)}
}

// frameBytes writes a header with first byte b0 right before buf's payload,
// which starts at maxHeaderLen, and returns the frame: buf from the header
// on.
func frameBytes(buf []byte, b0 byte) []byte {
	n := len(buf) - maxHeaderLen
	var h [maxHeaderLen]byte
	h[0] = b0
	hl := 2
	switch {
	case n < 126:
		h[1] = byte(n)
	case n <= 0xFFFF:
		h[1] = 126
		binary.BigEndian.PutUint16(h[2:], uint16(n))
		hl = 4
	default:
		h[1] = 127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
		hl = 10
	}
	start := maxHeaderLen - hl
	copy(buf[start:], h[:hl])
	return buf[start:]
}

// Bytes returns the whole frame as it goes on the wire. Do not modify it.
func (f *Frame) Bytes() []byte { return f.b }

// Payload returns the frame's JSON message. Do not modify it.
func (f *Frame) Payload() []byte { return f.b[f.hdr:] }

// Len is the frame's size on the wire, what send-queue byte limits count.
func (f *Frame) Len() int { return len(f.b) }
