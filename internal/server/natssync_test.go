package server_test

import (
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/servertest"
)

// The embedded NATS runs with --nats-sync, as its /varz would show: by
// default it fsyncs before every acknowledgement, and a duration makes it
// fsync that often instead.
func TestEmbeddedNATSSyncsAsConfigured(t *testing.T) {
	for _, c := range []struct {
		flag         string // "": the default
		wantAlways   bool
		wantInterval time.Duration
	}{
		{"", true, 2 * time.Minute}, // with always, nats-server still syncs in the background too
		{"250ms", false, 250 * time.Millisecond},
		{"2m", false, 2 * time.Minute},
	} {
		srv := servertest.Start(t, nil, func(cfg *config.Serve) {
			if c.flag != "" {
				if err := cfg.NATSSync.Set(c.flag); err != nil {
					t.Fatal(err)
				}
			}
		})
		js := jetStreamConfig(t, srv)
		if js.SyncAlways != c.wantAlways || js.SyncInterval != c.wantInterval {
			t.Errorf("--nats-sync %q: the embedded NATS runs with sync_always %v, sync_interval %s; want %v, %s",
				c.flag, js.SyncAlways, js.SyncInterval, c.wantAlways, c.wantInterval)
		}
	}
}

// jetStreamConfig is the JetStream configuration in the embedded server's
// /varz.
func jetStreamConfig(t *testing.T, srv *server.Server) natsserver.JetStreamConfig {
	t.Helper()
	ns := srv.EmbeddedNATS()
	if ns == nil {
		t.Fatal("no embedded NATS")
	}
	v, err := ns.Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.JetStream.Config == nil {
		t.Fatal("the embedded NATS runs without JetStream")
	}
	return *v.JetStream.Config
}
