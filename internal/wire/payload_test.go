package wire

import (
	"bytes"
	"testing"
)

// payloadSamples are payloads of the fast path's shape and near misses
// that must fall back to the general parser.
var payloadSamples = []string{
	`{"event":"worker.status_changed","data":{"worker_id":"w1","status":"busy"}}`,
	`{"event": "task.assigned", "data": {"task_id": "t 1", "n": [1, 2]}}`,
	"\n{ \"event\" :\t\"a\" ,\r\"data\" : { } }\n",
	`{"event":"a","data":{}}`,
	`{"event":"a","data":null}`,
	`{"event":"a"}`,
	`{"data":{},"event":"a"}`,
	`{"event":"a","data":{},"extra":1}`,
	`{"event":"a","data":{"x":1},"y":{"z":2}}`,
	`{"event":"a","event":"b","data":{}}`,
	`{"event":"a\u0041","data":{}}`,
	`{"event":"a b","data":{}}`,
	`{"event":"","data":{}}`,
	`{"event":"a","data":[1]}`,
	`{"event":"a","data":{"x":}}`,
	`{"event":"a","data":{"x":"}"}}`,
	`{"event":"a","data":{"x":"a\"}"}}`,
	`{"event":"a","data":{}`,
	`{"event":"a","data":{}}}`,
	`{"Event":"a","data":{}}`,
	`{"event":"a","Data":{}}`,
}

// TestParsePayloadFastAgrees checks that whatever the fast path accepts,
// the general parser accepts with the same result.
func TestParsePayloadFastAgrees(t *testing.T) {
	accepted := 0
	for _, in := range payloadSamples {
		if checkFastAgrees(t, []byte(in)) {
			accepted++
		}
	}
	if accepted < 5 {
		t.Fatalf("the fast path took %d samples; want the common shapes", accepted)
	}
}

// FuzzParsePayloadFast looks for a payload the two parsers disagree on.
func FuzzParsePayloadFast(f *testing.F) {
	for _, in := range payloadSamples {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkFastAgrees(t, p) })
}

func checkFastAgrees(t *testing.T, p []byte) bool {
	t.Helper()
	name, data, ok := parsePayloadFast(p)
	if !ok {
		return false
	}
	wantName, wantData, err := parsePayloadSlow(p)
	if err != nil || name != wantName || !bytes.Equal(data, wantData) {
		t.Fatalf("%q: fast path gave %q %q, general parser %q %q %v", p, name, data, wantName, wantData, err)
	}
	return true
}
