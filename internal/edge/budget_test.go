package edge

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/roomcast/roomcast/internal/metrics"
)

// An upgrade with a made-up token is held against the budget of
// connections that have not authenticated, like one without a token,
// until its 1008 close ends it: otherwise any string in the header would
// hold a slot of the node for the close's grace, and a few hundred a
// second would keep clients with real tokens out. A valid token is not
// held against it, so those clients still get in while the budget is spent.
func TestMadeUpTokensAreHeldAgainstTheBudget(t *testing.T) {
	m := metrics.NewUnregistered()
	o := Options{Metrics: m, MaxConnections: 4, MaxUnauthenticated: 1, MaxUnauthenticatedPerSource: 1}
	o.Conn.CloseGrace = time.Minute // the refused connections wait long for the close reply they never get
	_, addr, tok := authEdge(t, o)
	url := "ws://" + addr + "/"

	bogus := http.Header{"Authorization": {"Bearer made-up"}}
	first, err := dialWS("127.0.0.1", url, bogus, 10*time.Second)
	if err != nil {
		t.Fatalf("the first made-up token: %v, want the upgrade and then a 1008 close", err)
	}
	t.Cleanup(func() { first.Close() })
	for i := range 3 {
		nc, err := dialWS("127.0.0.1", url, bogus, 10*time.Second)
		if err == nil {
			nc.Close()
			t.Fatalf("made-up token %d of 3 past the budget was upgraded", i+1)
		}
		var rej ws.StatusError
		if !errors.As(err, &rej) || int(rej) != http.StatusServiceUnavailable {
			t.Fatalf("made-up token %d past the budget: %v, want 503", i+1, err)
		}
	}
	if got := testutil.ToFloat64(m.Unauth); got != 1 {
		t.Fatalf("%v connections held against the budget, want the one with the made-up token", got)
	}
	for i := range 3 {
		nc, err := dialWS("127.0.0.1", url, http.Header{"Authorization": {"Bearer " + tok}}, 10*time.Second)
		if err != nil {
			t.Fatalf("valid token %d while the budget is spent: %v", i+1, err)
		}
		t.Cleanup(func() { nc.Close() })
	}
	// Counted once each refusal's answer is written: after the client
	// read it, so waited for.
	waitFor(t, "the 3 made-up tokens counted as refused by source", func() bool {
		return testutil.ToFloat64(m.Refused.WithLabelValues(metrics.RefusedSource)) == 3
	})
}
