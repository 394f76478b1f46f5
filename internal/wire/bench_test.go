package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
	"github.com/roomcast/roomcast/internal/wire/wiretest"
)

func BenchmarkEventFrame(b *testing.B) {
	ev := &wire.Event{
		Room: wire.MustRoom("pool:p1"),
		Seq:  1042,
		Time: time.Date(2026, 11, 26, 10, 0, 0, 123e6, time.UTC),
		Name: "worker.status_changed",
		Data: json.RawMessage(`{"worker_id":"w1","status":"busy","pool_id":"p1"}`),
	}
	b.ReportAllocs()
	b.SetBytes(int64(wire.EventFrame(ev).Len()))
	for b.Loop() {
		wire.EventFrame(ev)
	}
}

func BenchmarkDecodeRequest(b *testing.B) {
	p := []byte(`{"type":"request","event":"subscribe","id":"sub_1","data":{"channel":"pool:p1","since":1042}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, err := wire.DecodeRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePayload(b *testing.B) {
	p := []byte(`{"event":"task.assigned","data":{"n":42,"task_id":"t42","pool_id":"p1"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		if _, _, err := wire.ParsePayload(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeflate is the once-per-event cost of permessage-deflate: build
// a fresh frame's compressed form (what the first deflate member's writer
// does; the others reuse it). It reports the compressed frame's size and
// the ratio to the plain frame's.
func BenchmarkDeflate(b *testing.B) {
	big := wiretest.BigPoolEvent()
	for _, ev := range []struct {
		name    string
		payload []byte
	}{{"pool-event", []byte(poolEvent)}, {"4KiB", big}} {
		b.Run(ev.name, func(b *testing.B) {
			plain := wire.NewTextFrame(ev.payload).Len()
			var z int
			b.ReportAllocs()
			b.SetBytes(int64(len(ev.payload)))
			for b.Loop() {
				f := wire.NewTextFrame(ev.payload)
				z = len(f.Deflated())
			}
			b.ReportMetric(float64(plain), "plain-B")
			b.ReportMetric(float64(z), "deflated-B")
			b.ReportMetric(float64(z)/float64(plain), "ratio")
		})
	}
}
