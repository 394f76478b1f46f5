package bus

import (
	"fmt"
	"testing"
)

func TestParseAckReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ackReply
		ok   bool
	}{
		{"$JS.ACK.ROOMCAST.c1.1.42.7.1700000000000000000.3", ackReply{42, 7, 1700000000000000000, 3}, true},
		{"$JS.ACK.hub.AHASH.ROOMCAST.c1.1.42.7.1700000000000000000.0.rnd", ackReply{42, 7, 1700000000000000000, 0}, true},
		{"$JS.ACK.ROOMCAST.c1.1.42.7.1700000000000000000", ackReply{}, false}, // 8 tokens
		{"$JS.ACK.ROOMCAST.c1.1.x.7.1.3", ackReply{}, false},
		{"$JS.ACK.ROOMCAST.c1.1.0.7.1.3", ackReply{}, false}, // no stream sequence 0
		{"_INBOX.abc", ackReply{}, false},
		{"", ackReply{}, false},
	} {
		got, err := parseAckReply(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseAckReply(%q) = %+v, %v; want %+v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseAckReply: any reply subject is read without a panic, and what
// is read back from one is what a delivery of those fields says.
func FuzzParseAckReply(f *testing.F) {
	f.Add("$JS.ACK.ROOMCAST.c1.1.42.7.1700000000000000000.3")
	f.Add("$JS.ACK.hub.AHASH.ROOMCAST.c1.1.42.7.1700000000000000000.0.rnd")
	f.Add("$JS.ACK..")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAckReply(s)
		if err != nil {
			return
		}
		again, err := parseAckReply(fmt.Sprintf("$JS.ACK.S.C.1.%d.%d.%d.%d", a.streamSeq, a.consumerSeq, a.time, a.pending))
		if err != nil || again != a {
			t.Fatalf("%q read as %+v, which reads back as %+v, %v", s, a, again, err)
		}
	})
}
