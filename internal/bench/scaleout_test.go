package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// Three real nodes on one NATS server, in the test process: every client
// on the first, then the other two start. The nodes rebalance with their
// defaults (4012, paced), the clients reconnect at random and resume, and
// the run reports the edges balanced, 4012 closes, reconnects, and every
// event published meanwhile received once, in order.
func TestScaleOutBalancesThreeNodes(t *testing.T) {
	ns := natstest.RunServer(t)
	first := servertest.Start(t, ns, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const conns = 90
	rep, err := RunScaleOut(ctx, ScaleOutConfig{
		URL: servertest.WSURL(first), NATSURL: ns.ClientURL(),
		AddEdge: func(context.Context) (Edge, error) {
			srv := servertest.Start(t, ns, nil)
			return Edge{WSURL: servertest.WSURL(srv), AdminURL: "http://" + srv.AdminAddr()}, nil
		},
		Conns: conns, Rooms: 9, Rate: 30, Quiet: 2 * time.Second, Timeout: time.Minute,
		Logger: slog.New(slog.NewTextHandler(testLog{t}, nil)),
	})
	if err != nil {
		t.Fatalf("scale-out: %v", err)
	}
	t.Logf("%+v", rep)
	if rep.Problem != "" {
		t.Errorf("problem: %s", rep.Problem)
	}
	if !(rep.BalancedSeconds > 0) || len(rep.Final) != 3 {
		t.Errorf("balanced after %vs, final %v: want a time and three edges", rep.BalancedSeconds, rep.Final)
	}
	sum := 0
	for _, n := range rep.Final {
		sum += n
		if n < conns/3*8/10 || n > conns/3*12/10 {
			t.Errorf("final %v: edge with %d, want within 20%% of %d", rep.Final, n, conns/3)
		}
	}
	if sum != conns {
		t.Errorf("final %v: %d clients subscribed, want %d", rep.Final, sum, conns)
	}
	// Every 4012 was answered by a reconnect; none without a close frame.
	shed := rep.Closes["4012"]
	if shed < conns/3 || rep.Reconnects < shed || rep.Closes["none"] != 0 {
		t.Errorf("closes %v, %d reconnects: want at least %d 4012s, each followed by a reconnect", rep.Closes, rep.Reconnects, conns/3)
	}
	if !(rep.ReconnectsPeak > 0) || !(rep.ReconnectsAverage > 0) {
		t.Errorf("reconnects/s: peak %v, average %v", rep.ReconnectsPeak, rep.ReconnectsAverage)
	}
	if rep.Published == 0 || rep.Expected == 0 || rep.Delivered != rep.Expected || rep.Lost+rep.Repeated+rep.Unrecovered != 0 {
		t.Errorf("published %d, expected %d, delivered %d, lost %d, repeated %d, unrecovered %d",
			rep.Published, rep.Expected, rep.Delivered, rep.Lost, rep.Repeated, rep.Unrecovered)
	}
}
