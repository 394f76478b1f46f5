package wire

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// StreamID tells one incarnation of the event stream from another. A stream
// deleted and created again (by an operator, or by an edge after its store
// was wiped) has a new creation time and sequences that start again, so a
// position in the old one means nothing in the new one (close code 4010).
type StreamID struct {
	Created time.Time
	// BaseSeq is the first sequence the stream was created with (0 means
	// 1). An edge that recreates the stream starts it past every sequence
	// it saw in the old one, so an old position is recognisably older.
	BaseSeq uint64
}

// Equal reports whether id and o are the same incarnation of the stream.
func (id StreamID) Equal(o StreamID) bool {
	return id.Created.Equal(o.Created) && id.BaseSeq == o.BaseSeq
}

// Epoch names the incarnation id of the stream for clients: the subscribe
// response carries it next to seq, and a subscribe that resumes gives it
// back with since, so a position from another incarnation is told apart
// whoever recreated the stream (an operator whose new stream starts at 1
// again included). It is the same on every node (the creation time and
// first sequence come from the stream's leader), short, and stable for the
// stream's life; clients treat it as opaque. It is base-36: the creation
// time in nanoseconds, "-", the first sequence.
func (id StreamID) Epoch() string {
	var nanos uint64
	if !id.Created.IsZero() && id.Created.UnixNano() > 0 {
		nanos = uint64(id.Created.UnixNano())
	}
	return strconv.FormatUint(nanos, 36) + "-" + strconv.FormatUint(id.BaseSeq, 36)
}

// MaxEpochLen bounds an epoch a client sends: the longest Epoch returns is
// 27 characters.
const MaxEpochLen = 32

// CheckEpoch reports whether s has the shape of an epoch (see
// StreamID.Epoch): 1 to MaxEpochLen characters of 0-9, a-z and "-".
// Whether it names the current stream is the hub's question.
func CheckEpoch(s string) error {
	if s == "" || len(s) > MaxEpochLen {
		return fmt.Errorf("epoch must be 1 to %d characters, got %d", MaxEpochLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return fmt.Errorf("epoch may hold only 0-9, a-z and -, got %q at byte %d", c, i)
		}
	}
	return nil
}

// StreamState is the stream leader's account of the stream.
type StreamState struct {
	ID       StreamID
	FirstSeq uint64 // the oldest stored message
	LastSeq  uint64 // the newest stored message
	Deleted  uint64 // messages removed from inside the stored range
}

// HoldsAll reports whether the stream still holds every event ever stored
// under its name: none removed (retention, a purge, a deletion) and no
// earlier incarnation before it. Only then does a replay from the very
// start (since 0) miss nothing.
func (s StreamState) HoldsAll() bool {
	return s.ID.BaseSeq <= 1 && s.FirstSeq <= 1 && s.Deleted == 0
}

// ErrStreamGone says the event stream does not exist (a wiped store, or an
// operator deleted it).
var ErrStreamGone = errors.New("the event stream does not exist")

// RoomHead is a room and its latest stored event.
type RoomHead struct {
	Room Room
	Seq  uint64
	Time time.Time
}

// RecentRooms is the list of rooms with recent events (the bus reads it,
// the edge answers a rooms request with it).
type RecentRooms struct {
	Rooms     []RoomHead // newest first
	Truncated bool       // more rooms had events than were read
}
