package bus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/wire"
)

// liveHeader builds the headers the stream's republish sets.
func liveHeader(stream, subject, seq, prev, ts string) nats.Header {
	h := nats.Header{}
	for k, v := range map[string]string{
		jetstream.StreamHeader: stream, jetstream.SubjectHeader: subject, jetstream.SequenceHeader: seq,
		jetstream.LastSequenceHeader: prev, jetstream.TimeStampHeaer: ts,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// A live message is taken only with the headers of the stream's republish
// of this room's subject; anything else is refused, whatever its payload.
func TestLiveHeadersAreChecked(t *testing.T) {
	b := &Bus{subj: Subjects{Prefix: DefaultPrefix}, stream: StreamConfig{}.withDefaults()}
	r := wire.MustRoom("pool:p1")
	ts := "2026-11-26T10:00:00.123456789Z"
	if seq, prev, got, err := b.liveHeaders(r, liveHeader("ROOMCAST", "roomcast.rooms.pool.p1", "42", "7", ts)); err != nil || seq != 42 || prev != 7 || got.IsZero() {
		t.Fatalf("republished headers: %d %d %v %v", seq, prev, got, err)
	}
	for name, h := range map[string]nats.Header{
		"no headers":        {},
		"another stream":    liveHeader("OTHER", "roomcast.rooms.pool.p1", "42", "7", ts),
		"another room":      liveHeader("ROOMCAST", "roomcast.rooms.pool.p2", "42", "7", ts),
		"no sequence":       liveHeader("ROOMCAST", "roomcast.rooms.pool.p1", "", "7", ts),
		"sequence 0":        liveHeader("ROOMCAST", "roomcast.rooms.pool.p1", "0", "0", ts),
		"negative sequence": liveHeader("ROOMCAST", "roomcast.rooms.pool.p1", "-5", "0", ts),
		"previous not less": liveHeader("ROOMCAST", "roomcast.rooms.pool.p1", "42", "42", ts),
		"no previous":       liveHeader("ROOMCAST", "roomcast.rooms.pool.p1", "42", "", ts),
		"bad time":          liveHeader("ROOMCAST", "roomcast.rooms.pool.p1", "42", "7", "yesterday"),
	} {
		if seq, _, _, err := b.liveHeaders(r, h); err == nil {
			t.Errorf("%s: accepted with seq %d", name, seq)
		}
	}
}

// Seeds are also committed under testdata/fuzz/FuzzLiveHeaders.
func FuzzLiveHeaders(f *testing.F) {
	f.Add("ROOMCAST", "roomcast.rooms.pool.p1", "42", "7", "2026-11-26T10:00:00.123Z")
	f.Add("ROOMCAST", "roomcast.rooms.pool.p1", "18446744073709551615", "0", "2026-11-26T10:00:00Z")
	f.Add("ROOMCAST", "roomcast.rooms.pool.p1", "18446744073709551616", "1", "2026-11-26T10:00:00Z")
	f.Add("ROOMCAST", "roomcast.rooms.pool.p1", "+1", "0", "")
	b := &Bus{subj: Subjects{Prefix: DefaultPrefix}, stream: StreamConfig{}.withDefaults()}
	r := wire.MustRoom("pool:p1")
	f.Fuzz(func(t *testing.T, stream, subject, seqS, prevS, ts string) {
		seq, prev, when, err := b.liveHeaders(r, liveHeader(stream, subject, seqS, prevS, ts))
		if err != nil {
			return
		}
		if stream != "ROOMCAST" || subject != "roomcast.rooms.pool.p1" || seq == 0 || prev >= seq || when.Equal(time.Time{}) {
			t.Fatalf("accepted %q %q %q %q %q as seq %d prev %d at %v", stream, subject, seqS, prevS, ts, seq, prev, when)
		}
	})
}
