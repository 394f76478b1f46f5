package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
)

// runCmdEnv is runCmd with environment variables.
func runCmdEnv(ctx context.Context, vars map[string]string, args ...string) (int, string, string) {
	var out, errb servertest.SyncBuffer
	code := runWithEnv(ctx, &out, &errb, "", vars, args...)
	return code, out.String(), errb.String()
}

// publish, demo and bench authenticate to a NATS that requires it with
// serve's flags (--nats-user, the password from ROOMCAST_NATS_PASSWORD),
// and say clearly when they cannot.
func TestClientCommandsAuthenticateToNATS(t *testing.T) {
	ns := natstest.RunServerWith(t, func(o *natsserver.Options) {
		o.Users = []*natsserver.User{{Username: "publisher", Password: "s3cret-pw"}}
	})
	b := bustest.On(t, natstest.Connect(t, ns.ClientURL(), nats.UserInfo("publisher", "s3cret-pw")))
	if err := b.EnsureStream(t.Context()); err != nil {
		t.Fatal(err)
	}
	good := map[string]string{"ROOMCAST_NATS_PASSWORD": "s3cret-pw"}
	publish := []string{"publish", "--nats", ns.ClientURL(), "--nats-user", "publisher", "--timeout", "5s", "pool:p1", "custom.event", `{"n":1}`}

	if code, out, stderr := runCmdEnv(t.Context(), good, publish...); code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("publish with the password: exit %d, %q, %s", code, out, stderr)
	}
	if code, _, stderr := runCmdEnv(t.Context(), map[string]string{"ROOMCAST_NATS_PASSWORD": "wrong"}, publish...); code != 1 || !strings.Contains(strings.ToLower(stderr), "authorization") {
		t.Fatalf("publish with a wrong password: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCmdEnv(t.Context(), nil, publish...); code != 2 || !strings.Contains(stderr, "ROOMCAST_NATS_PASSWORD") {
		t.Fatalf("publish without the password: exit %d, %s", code, stderr)
	}
	code, _, stderr := runCmdEnv(t.Context(), good, "demo", "--nats", ns.ClientURL(), "--nats-user", "publisher", "--events", "20", "--rate", "1000")
	if code != 0 || !strings.Contains(stderr, "publishing") {
		t.Fatalf("demo with the password: exit %d, %s", code, stderr)
	}

	edge := servertest.Start(t, nil, func(c *config.Serve) {
		c.NATS = config.List{ns.ClientURL()}
		c.NATSAuth.User, c.NATSAuth.Password = "publisher", "s3cret-pw"
	})
	code, out, stderr := runCmdEnv(t.Context(), good, "bench", "--url", servertest.WSURL(edge), "--nats", ns.ClientURL(), "--nats-user", "publisher",
		"--conns", "2", "--rooms", "1", "--rate", "20", "--duration", "1s", "--grace", "2s", "--json")
	var rep struct {
		Published int `json:"events_published"`
		Received  int `json:"deliveries_received"`
		Lost      int `json:"deliveries_lost"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Published == 0 || rep.Received != 2*rep.Published || rep.Lost != 0 {
		t.Fatalf("bench with the password: exit %d, %s, %s", code, out, stderr)
	}
}
