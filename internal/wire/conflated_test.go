package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
)

// WithConflated makes a copy that says how many events of the room were
// dropped before it, as valid JSON with the event's fields intact, adds
// to a count the frame already carries, and leaves the shared frame and
// its frame metadata alone.
func TestWithConflated(t *testing.T) {
	ts := time.Date(2026, 12, 7, 1, 2, 3, 4e6, time.UTC)
	ev := wire.Event{Room: wire.MustRoom("pool:p1"), Seq: 8, Time: ts, Name: "worker.status_changed", Key: "worker:w1", Data: json.RawMessage(`{"a":2}`)}
	f := wire.EventFrame(&ev)
	orig := string(f.Payload())
	want := func(n int) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(f.Payload(), &m); err != nil {
			t.Fatal(err)
		}
		m["conflated"] = float64(n)
		return m
	}
	check := func(g *wire.Frame, n int) {
		t.Helper()
		if !json.Valid(g.Payload()) {
			t.Fatalf("not JSON: %s", g.Payload())
		}
		var got map[string]any
		_ = json.Unmarshal(g.Payload(), &got)
		if w, _ := json.Marshal(want(n)); string(w) != mustMarshal(t, got) {
			t.Errorf("payload %s, want the event with conflated %d", g.Payload(), n)
		}
		if g.Seq != f.Seq || !g.Stored.Equal(f.Stored) || g.Room != "pool:p1" || g.Key != "worker:w1" || g.Conflated != n {
			t.Errorf("frame metadata %d %v %q %q %d", g.Seq, g.Stored, g.Room, g.Key, g.Conflated)
		}
		if g.Len() != len(g.Bytes()) || len(g.Bytes())-len(g.Payload()) < 2 {
			t.Errorf("frame header: %d bytes for a payload of %d", len(g.Bytes()), len(g.Payload()))
		}
	}
	g := wire.WithConflated(f, 3)
	check(g, 3)
	// Again on the copy: the sum, still one field.
	h := wire.WithConflated(g, 9)
	check(h, 12)
	// Across a digit boundary and a frame header boundary (126 bytes).
	big := wire.WithConflated(h, 1000)
	check(big, 1012)
	if string(f.Payload()) != orig || f.Conflated != 0 {
		t.Errorf("the shared frame changed: %s", f.Payload())
	}
	if wire.WithConflated(f, 0) != f {
		t.Error("n 0 made a copy")
	}
	if nf := wire.NewTextFrame([]byte(`not an object`)); wire.WithConflated(nf, 2) != nf {
		t.Error("a frame that is not a JSON object was changed")
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
