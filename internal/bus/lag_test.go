package bus

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// natsTimeout bounds one wait of the stand-in replica for the stream.
const natsTimeout = 5 * time.Second

// lagReplica answers b's direct gets the way a replica behind the stream
// leader does: with the stream's real answer, minus every message past
// cutoff, and an end-of-batch that knows of nothing more. It is a stand-in
// because a real follower cannot be held behind by a chosen amount on cue;
// the stream behind it, and the leader the bus checks with, are real.
func lagReplica(t *testing.T, b *Bus, cutoff uint64) {
	t.Helper()
	nc := natstest.Connect(t, b.nc.ConnectedUrl())
	real := b.apiDirect
	b.apiDirect = "lagging.replica.get"
	sub, err := nc.Subscribe(b.apiDirect, func(req *nats.Msg) {
		inbox := nc.NewInbox()
		answers, err := nc.SubscribeSync(inbox)
		if err != nil {
			return
		}
		defer answers.Unsubscribe()
		if err := nc.PublishRequest(real, inbox, req.Data); err != nil {
			return
		}
		sent := 0
		for {
			m, err := answers.NextMsg(natsTimeout)
			if err != nil {
				return
			}
			if len(m.Data) == 0 && m.Header.Get("Status") != "" {
				end := nats.NewMsg(req.Reply)
				end.Header.Set("Status", "204")
				end.Header.Set("Description", "EOB")
				end.Header.Set("Nats-Num-Pending", "0")
				if sent == 0 {
					end.Header.Set("Status", "404")
				}
				_ = nc.PublishMsg(end)
				return
			}
			if seq, _ := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64); seq <= cutoff {
				m.Subject, m.Reply, m.Sub = req.Reply, "", nil
				_ = nc.PublishMsg(m)
				sent++
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// A replay answered by a replica that lags behind the leader is not taken
// as complete: the bus finds the missing events through the leader and
// delivers every one, in order, once.
func TestReplayFromALaggingReplicaIsComplete(t *testing.T) {
	b := newBus(t, StreamConfig{})
	r := wire.MustRoom("pool:lag")
	var seqs []uint64
	for i := range 2*ReplayBatch + 50 {
		seqs = append(seqs, b.mustPublish(t, r, i))
	}
	lagReplica(t, b, seqs[ReplayBatch+20])

	var got []uint64
	intact, err := b.Replay(t.Context(), r, seqs[9], seqs[len(seqs)-1], func(ev *wire.Event) error {
		got = append(got, ev.Seq)
		return nil
	})
	if err != nil || !intact {
		t.Fatalf("replayed %d events (intact %v, %v)", len(got), intact, err)
	}
	sameSeqs(t, got, seqs[10:])
	if testutil.ToFloat64(b.m.ReplicaLags) == 0 {
		t.Fatal("the lag went unnoticed: the replica was never behind?")
	}
}

// sameSeqs checks a replay delivered want, in order, once each.
func sameSeqs(t *testing.T, got, want []uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("replayed %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("event %d is seq %d, want %d", i, got[i], want[i])
		}
	}
}
