// Package wiretest holds sample events for the benchmarks of the packages
// that encode, compress and write them, so they all measure the same bytes.
package wiretest

import "fmt"

// BigPoolEvent is a 4 KiB pool status event listing workers, varied as real
// ones are (ids, statuses, tasks, times), so it compresses as they would.
func BigPoolEvent() []byte {
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
