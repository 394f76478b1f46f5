package wire_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/wire"
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
	big := bigEvent()
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

// bigEvent is a 4 KiB pool status event listing workers, varied as real
// ones are (ids, statuses, tasks, times), so it compresses as they would.
func bigEvent() []byte {
	statuses := []string{"busy", "idle", "busy", "error", "draining"}
	b := []byte(`{"type":"event","room":"pool:p1","event":"pool.status_changed","seq":123,"ts":"2026-11-26T10:00:00.123Z","data":{"pool_id":"p1","workers":[`)
	for i := 0; len(b) < 4000; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"worker_id":"w-%d","status":%q,"task_id":"t-%d","queue_depth":%d,"last_seen":"2026-11-26T09:59:%02d.%03dZ"}`,
			i*37%1000, statuses[i*7%len(statuses)], 9000+i*7919%997, i*13%50, i*17%60, i*7919%1000)
	}
	return append(b, "]}}"...)
}
