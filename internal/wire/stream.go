package wire

import (
	"errors"
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
