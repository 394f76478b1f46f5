package integration

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/wire"
)

// The follower's check finds what the scenarios look for, without Docker:
// a gap, a duplicate, an event out of order, a missing last event; and
// after a 4010 it checks from the subscribe that followed.
func TestFollowerCheck(t *testing.T) {
	truth := []stored{{Seq: 3, N: 1}, {Seq: 7, N: 2}, {Seq: 9, N: 3}, {Seq: 12, N: 4}}
	for _, tc := range []struct {
		name string
		log  roomLog
		want string // "" for no problem, else a part of the message
	}{
		{"all from the start", roomLog{started: true, seqs: []uint64{3, 7, 9, 12}}, ""},
		{"all after a later start", roomLog{started: true, start: 7, seqs: []uint64{9, 12}}, ""},
		{"a gap", roomLog{started: true, seqs: []uint64{3, 9, 12}}, "missing [7]"},
		{"a duplicate", roomLog{started: true, seqs: []uint64{3, 7, 7, 9, 12}}, "duplicated [7]"},
		{"out of order", roomLog{started: true, seqs: []uint64{3, 9, 7, 12}}, "first difference at #1"},
		{"the last one missing", roomLog{started: true, seqs: []uint64{3, 7, 9}}, "missing [12]"},
		{"one before the start", roomLog{started: true, start: 3, seqs: []uint64{3, 7, 9, 12}}, "unexpected [3]"},
		{"after a reset", roomLog{started: true, seqs: []uint64{3, 7, 9, 12}, epochs: 1, resetAt: 1, epochStart: 7, epochFrom: 2}, ""},
		{"after a reset, a gap", roomLog{started: true, seqs: []uint64{3, 12}, epochs: 1, resetAt: 1, epochStart: 7, epochFrom: 1}, "missing [9]"},
		{"twice since a reset", roomLog{started: true, seqs: []uint64{3, 9, 9, 12}, epochs: 1, resetAt: 1, epochStart: 9, epochFrom: 3}, "since the reset: seq 9 after 9"},
		{"never subscribed", roomLog{}, "never subscribed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lg := tc.log
			f := &follower{name: "f", rooms: []string{"pool:x"}, logs: map[string]*roomLog{"pool:x": &lg}}
			problems := strings.Join(f.check(map[string][]stored{"pool:x": truth}), "\n")
			switch {
			case tc.want == "" && problems != "":
				t.Errorf("problems: %s", problems)
			case tc.want != "" && !strings.Contains(problems, tc.want):
				t.Errorf("problems %q, want one saying %q", problems, tc.want)
			}
		})
	}
}

// A follower closed with 4012 (a node rebalancing the cluster) connects to
// the next edge at once, without the pause it keeps for failures, and
// counts the close; after any other end it pauses.
func TestFollowerReconnectsAtOnceAfter4012(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want time.Duration
	}{
		{&client.CloseError{Code: wire.CloseRebalance}, 0},
		{&client.CloseError{Code: wire.CloseGoingAway}, followerPause},
		{&client.CloseError{Code: wire.CloseStreamReset}, followerPause},
		{io.EOF, followerPause},
		{nil, followerPause}, // the follower ended it: a subscribe refused
	} {
		if got := pauseAfter(tc.err); got != tc.want {
			t.Errorf("pause after %v: %v, want %v", tc.err, got, tc.want)
		}
	}
	f := &follower{name: "f", rooms: []string{"pool:x"}, logs: map[string]*roomLog{"pool:x": {}}, closes: map[string]int{}}
	f.ended(&client.CloseError{Code: wire.CloseRebalance, Reason: wire.ReasonRebalance})
	f.ended(&client.CloseError{Code: wire.CloseGoingAway})
	if st := f.stats(); st.rebalanced != 1 || f.closes["4012"] != 1 || st.resets != 0 {
		t.Errorf("after a 4012 and a 1001: %d rebalanced, closes %v, %d resets; want 1, one 4012, 0", st.rebalanced, f.closes, st.resets)
	}
}
