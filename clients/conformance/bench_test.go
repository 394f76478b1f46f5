package conformance_test

import "testing"

// BenchmarkReplay measures how fast each library hands a room's history
// to its application: a node replays 10,000 stored events (about 100
// bytes each) to a runner that subscribes with since 0, timed from the
// runner's start (a process, a page) to its last event. The runner's own cost (a record per
// event: a JSON line for Python, an array entry for the page) is counted
// in, as any application's would be.
//
//	go test -run '^$' -bench Replay -benchtime 3x ./clients/conformance
func BenchmarkReplay(b *testing.B) {
	const events = 10_000
	for _, r := range runners() {
		b.Run(r.name(), func(b *testing.B) {
			ns := natsFor(b)
			n := startNode(b, "edge", ns.ClientURL())
			pub := newPublisher(b, ns, room)
			pub.publishN(events)
			b.ResetTimer()
			for range b.N {
				s := r.start(b, follow(urlOf(r, n)))
				s.waitEvent(b, events-1)
				b.StopTimer()
				s.stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
