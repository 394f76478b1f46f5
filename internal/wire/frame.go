package wire

import (
	"encoding/binary"
	"strconv"
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
	// Room is an event's room, "" for other frames; Key is a keyed
	// event's key, "" otherwise. A conflating connection drops a queued
	// frame when a newer one of the same room and key follows it, and
	// counts it on the next event of the room it keeps (WithConflated).
	Room, Key string
	// Conflated is how many events of the room were dropped before this
	// frame (WithConflated): 0 but on a connection's own copy.
	Conflated int
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

// conflatedField is the name part of the field WithConflated adds.
const conflatedField = `,"conflated":`

// WithConflated returns a copy of event frame f whose message says that n
// more events of its room were dropped before it (`"conflated": n` as its
// last top-level field; a frame that already says so says the sum). The
// copy keeps Seq, Stored, Room and Key; f itself, shared by every member,
// is not touched. A frame that is not an event message (a JSON object),
// or n below 1, is returned as it is.
func WithConflated(f *Frame, n int) *Frame {
	p := f.Payload()
	if n < 1 || len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return f
	}
	end := len(p) - 1 // the closing brace
	if f.Conflated > 0 {
		// The field this function added last time is the message's last.
		var digits [20]byte
		end -= len(conflatedField) + len(strconv.AppendInt(digits[:0], int64(f.Conflated), 10))
	}
	total := f.Conflated + n
	buf := make([]byte, maxHeaderLen, maxHeaderLen+end+len(conflatedField)+21)
	buf = append(buf, p[:end]...)
	buf = append(buf, conflatedField...)
	buf = strconv.AppendInt(buf, int64(total), 10)
	buf = append(buf, '}')
	g := frameIn(buf)
	g.Seq, g.Stored, g.Room, g.Key, g.Conflated = f.Seq, f.Stored, f.Room, f.Key, total
	return g
}
