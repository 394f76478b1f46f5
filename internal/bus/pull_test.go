package bus

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
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

// TestPullStatus: what each status ending a pull means. A 503 (no
// responders: the consumer not yet served where the pull went, as just
// after it was made in a cluster) hands the read back to direct gets.
func TestPullStatus(t *testing.T) {
	for _, c := range []struct {
		status, desc string
		more         bool
		err          error
	}{
		{"404", "No Messages", false, nil},
		{"408", "Request Timeout", false, nil},
		{"409", "Message Size Exceeds MaxBytes", true, nil},
		{"503", "", false, errConsumerUnreachable},
	} {
		h := nats.Header{}
		h.Set("Status", c.status)
		h.Set("Description", c.desc)
		more, err := pullStatus(h)
		if more != c.more || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("status %s: more %v, err %v; want %v, %v", c.status, more, err, c.more, c.err)
		}
	}
	h := nats.Header{}
	h.Set("Status", "409")
	h.Set("Description", "Consumer Deleted")
	if _, err := pullStatus(h); err == nil || errors.Is(err, errConsumerUnreachable) {
		t.Errorf("a deleted consumer: %v, want an error of its own", err)
	}
}
