package wire_test

import (
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// An epoch tells incarnations of the stream apart (a new creation time, or
// the same one with another first sequence), is the same for equal
// identities, and has the shape the decoder accepts back.
func TestEpochNamesTheStreamsIncarnation(t *testing.T) {
	at := time.Date(2026, 12, 6, 21, 0, 0, 123456789, time.UTC)
	ids := []wire.StreamID{
		{Created: at},
		{Created: at, BaseSeq: 1},
		{Created: at.Add(time.Nanosecond), BaseSeq: 1},
		{Created: at, BaseSeq: 1 << 40},
		{Created: time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), BaseSeq: 1<<64 - 1}, // the longest
		{},
	}
	seen := map[string]int{}
	for i, id := range ids {
		e := id.Epoch()
		if err := wire.CheckEpoch(e); err != nil {
			t.Fatalf("%+v: epoch %q refused: %v", id, e, err)
		}
		if j, dup := seen[e]; dup {
			t.Fatalf("identities %d and %d share epoch %q", j, i, e)
		}
		seen[e] = i
		local := wire.StreamID{Created: id.Created.Local(), BaseSeq: id.BaseSeq}
		if local.Epoch() != e {
			t.Fatalf("the epoch depends on the time zone: %q and %q", e, local.Epoch())
		}
	}
}
