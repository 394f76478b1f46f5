package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/wire"
)

// finishFlow lets the flow of events go on until the runner has 10 more,
// stops it, waits for the last, and checks that the application got every
// event published, once, in order; it returns the runner's records.
func finishFlow(t testing.TB, s *session, pub *publisher) []stamped {
	t.Helper()
	s.waitEvent(t, pub.published()+10)
	total := pub.stopFlow()
	s.waitEvent(t, total-1)
	recs := s.all()
	checkExactly(t, recs, room, upTo(total))
	return recs
}

// checkAllRecovered fails the test unless every subscribe response was
// recovered, and one of them answered a resume.
func checkAllRecovered(t testing.TB, recs []stamped) {
	t.Helper()
	resumed := false
	for _, s := range recs {
		if s.Kind != "subscribed" {
			continue
		}
		if !s.Recovered {
			t.Fatalf("a resume lost events: %s\n%s", describe(s.record), tail(recs, 30))
		}
		resumed = resumed || s.Resumed
	}
	if !resumed {
		t.Fatalf("no subscribe response answered a resume:\n%s", tail(recs, 30))
	}
}

// checkClosedWith fails the test unless the first disconnection had code.
func checkClosedWith(t testing.TB, recs []stamped, code int) {
	t.Helper()
	for _, s := range recs {
		if s.Kind == "notice" && s.Notice == noticeDisconnected {
			if s.Code != code {
				t.Fatalf("the first disconnection: %s; want code %d", describe(s.record), code)
			}
			return
		}
	}
	t.Fatalf("no disconnection reported; want code %d", code)
}

// checkReconnectedAtOnce fails the test unless the first disconnection
// had code and the next connection came within 3 s: at once, not after
// the backoff of a scenario that sets it to 6 s (3 s at the least).
func checkReconnectedAtOnce(t testing.TB, recs []stamped, code int) {
	t.Helper()
	checkClosedWith(t, recs, code)
	closed, reopened := noticeAt(recs, noticeDisconnected, 1), noticeAt(recs, noticeConnected, 2)
	if gap := reopened.Sub(closed); gap >= 3*time.Second {
		t.Fatalf("after the %d the client reconnected %s later: want at once, not after the backoff (at least 3 s here)", code, gap)
	}
}

// noticeAt is when the i-th (from 1) notice of kind came; the zero time
// when there are fewer.
func noticeAt(recs []stamped, kind string, i int) time.Time {
	for _, s := range recs {
		if s.Kind == "notice" && s.Notice == kind {
			if i--; i == 0 {
				return s.at
			}
		}
	}
	return time.Time{}
}

// lastSubscribed is the last subscribe response.
func lastSubscribed(recs []stamped) stamped {
	var last stamped
	for _, s := range recs {
		if s.Kind == "subscribed" {
			last = s
		}
	}
	return last
}

// firstSubscribed is the first subscribe response.
func firstSubscribed(recs []stamped) stamped {
	for _, s := range recs {
		if s.Kind == "subscribed" {
			return s
		}
	}
	return stamped{}
}

// waitStopped waits for the runner's stopped record and returns it.
func waitStopped(t testing.TB, s *session) record {
	t.Helper()
	s.waitFor(t, "that the client stopped", func(recs []stamped) bool { return count(recs, "stopped", "") > 0 })
	for _, r := range s.all() {
		if r.Kind == "stopped" {
			return r.record
		}
	}
	panic("unreachable: waited for it")
}

// metricOr reads a series of the node's /metrics, failing the test when
// it cannot be read.
func (n *node) metricOr(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, err := n.metric(name, labels...)
	if err != nil {
		t.Fatalf("node %s: /metrics: %v", n.name, err)
	}
	return v
}

// noticeWithCode reports whether a notice of kind came with code.
func noticeWithCode(recs []stamped, kind string, code int) bool {
	for _, s := range recs {
		if s.Kind == "notice" && s.Notice == kind && s.Code == code {
			return true
		}
	}
	return false
}

// waitState waits until a subscribe with state of room on node n answers
// with keys entries: the node's keeper has read the events published.
func waitState(t testing.TB, n *node, room string, keys int) {
	t.Helper()
	natstest.WaitFor(t, scenarioWait, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, n.URL("/ws"), nil)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.Request(wire.EventSubscribe, "s", client.SubscribeData{Channel: room, State: true}); err != nil {
			return err
		}
		for {
			m, err := c.Read(time.Now().Add(5 * time.Second))
			if err != nil {
				return err
			}
			if m.ID != "s" {
				continue
			}
			var d wire.StateResult
			if err := json.Unmarshal(m.Data, &d); err != nil || m.Type != wire.TypeResponse {
				return fmt.Errorf("subscribe with state: %s %s", m.Type, m.Data)
			}
			if len(d.State) != keys {
				return fmt.Errorf("a state of %d keys, want %d", len(d.State), keys)
			}
			return nil
		}
	})
}
