package server_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/server"
	"github.com/roomcast/roomcast/internal/wire"
)

// violations connects to a node's embedded NATS with opts and returns the
// connection and the permission violations NATS reports to it.
func violations(t *testing.T, srv *server.Server, opts ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		errs <- err
	}))
	return natstest.Connect(t, srv.NATSURL(), opts...), errs
}

// expectViolation waits for NATS to refuse what a client just did.
func expectViolation(t *testing.T, errs <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("%s: told %v, want a permissions violation", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not refused", what)
	}
}

// A pool worker on the embedded NATS (any client without credentials) may
// publish room events and read its acknowledgements, nothing else: not the
// live feed, the stored events, the edges' replies or the JetStream API.
// Each of these was open before (issue 17).
func TestAnonymousWorkerMayOnlyPublishEvents(t *testing.T) {
	srv := startNode(t, nil, nil)
	const room = "pool:guarded"
	c := dial(t, srv)
	subscribe(t, c, room, nil)
	pub := newPublisher(t, srv.NATSURL())
	first := pub.event(room, "worker.status_changed", 1)
	if first == 0 || counterOf(t, readEvents(t, c, 1)[0]) != 1 {
		t.Fatalf("a worker's JetStream publish got seq %d, or its event did not reach the subscriber", first)
	}

	nc, errs := violations(t, srv)
	for _, subject := range []string{"roomcast.live.>", "roomcast.live.pool.guarded", "roomcast.rooms.>", "_ROOMCAST_EDGE.>", "$JS.>", "$JS.API.>", ">"} {
		t.Run("subscribe "+subject, func(t *testing.T) {
			got := make(chan *nats.Msg, 1)
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
				select {
				case got <- m:
				default:
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			expectViolation(t, errs, "subscribing to "+subject)
			pub.event(room, "worker.status_changed", 2)
			readEvents(t, c, 1)
			select {
			case m := <-got:
				t.Fatalf("a worker subscribed to %s received %s", subject, m.Subject)
			default:
			}
			_ = sub.Unsubscribe()
		})
	}

	// The JetStream API, by raw requests as any NATS client can send them.
	api := map[string]string{
		"purge":            "$JS.API.STREAM.PURGE.ROOMCAST",
		"delete":           "$JS.API.STREAM.DELETE.ROOMCAST",
		"create":           "$JS.API.STREAM.CREATE.EVIL",
		"info":             "$JS.API.STREAM.INFO.ROOMCAST",
		"msg get":          "$JS.API.STREAM.MSG.GET.ROOMCAST",
		"direct get":       "$JS.API.DIRECT.GET.ROOMCAST",
		"account":          "$JS.API.INFO",
		"consumer":         "$JS.API.CONSUMER.CREATE.ROOMCAST",
		"state purge":      "$JS.API.STREAM.PURGE.ROOMCAST_STATE",
		"state direct get": "$JS.API.DIRECT.GET.ROOMCAST_STATE",
	}
	for what, subject := range api {
		t.Run(what, func(t *testing.T) {
			body := `{"seq":1}`
			if what == "create" {
				body = `{"name":"EVIL","subjects":["evil.>"]}`
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := nc.RequestWithContext(ctx, subject, []byte(body))
			cancel()
			if err == nil {
				t.Fatalf("the JetStream API answered a worker's %s (%s)", what, subject)
			}
			expectViolation(t, errs, "the JetStream "+what)
		})
	}
	// The state stream's subjects: a worker there could forge a room's
	// state, or the keeper's position.
	for _, subject := range []string{"roomcast.state.rooms.pool.guarded.k.worker:w9", "roomcast.state.pos"} {
		t.Run("publish "+subject, func(t *testing.T) {
			m := nats.NewMsg(subject)
			m.Data = []byte(`{"event":"worker.status_changed","data":{}}`)
			m.Header.Set(wire.HeaderKey, "worker:w9")
			if err := nc.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
			expectViolation(t, errs, "publishing to "+subject)
		})
	}
	// The jetstream client's own calls fail the same way.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, "ROOMCAST"); err == nil {
		t.Fatal("a worker deleted the stream")
	}

	// Nothing of it happened: the stream is whole, and its events resume.
	admin, err := jetstream.New(srv.NATSConn())
	if err != nil {
		t.Fatal(err)
	}
	st, err := admin.Stream(context.Background(), "ROOMCAST")
	if err != nil {
		t.Fatalf("the stream after the worker's attempts: %v", err)
	}
	if n := st.CachedInfo().State.Msgs; n < 8 {
		t.Fatalf("the stream holds %d events after the worker's attempts, want the 8 published", n)
	}
	if res, _ := subscribeState(t, dial(t, srv), "st", room, nil, ""); len(res.State) != 0 {
		t.Fatalf("the room's state after the worker's attempts: %+v", res.State)
	}
	if _, err := admin.Stream(context.Background(), "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("stream EVIL: %v, want not found", err)
	}
	c2 := dial(t, srv)
	since := uint64(0)
	if res, replay := subscribe(t, c2, room, &since); !res.Recovered || len(replay) != 8 || replay[0].Seq != first {
		t.Fatalf("resume from 0 after the attempts: %+v, %d events; want all 8 from seq %d", res, len(replay), first)
	}
}

// A worker's JetStream publish whose reply subject is a live subject makes
// the stream send its acknowledgement there, from inside the server, where
// no permission applies (nats-server checks no publish permission on a
// reply subject). The edge must not take it for a live event: it carries
// no stream headers, so it is refused and counted, and the room's members
// see the real events only.
func TestAReplyAimedAtTheLiveFeedIsNotAnEvent(t *testing.T) {
	srv := startNode(t, nil, nil)
	const room = "pool:aimed"
	c := dial(t, srv)
	subscribe(t, c, room, nil)
	refused := func() float64 { return value(scrape(t, srv.AdminAddr()), "roomcast_live_refused_total") }
	before := refused()

	nc := natstest.Connect(t, srv.NATSURL())
	m := nats.NewMsg("roomcast.rooms.pool.aimed")
	m.Reply = "roomcast.live.pool.aimed"
	m.Data = []byte(`{"event":"worker.status_changed","data":{"n":1}}`)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	natstest.WaitFor(t, 10*time.Second, func() error {
		if refused() <= before {
			return errors.New("the acknowledgement sent to the live subject has not reached the edge")
		}
		return nil
	})
	next := newPublisher(t, srv.NATSURL()).event(room, "worker.status_changed", 2)
	got := readEvents(t, c, 2)
	if counterOf(t, got[0]) != 1 || counterOf(t, got[1]) != 2 || got[1].Seq != next || got[0].Seq >= got[1].Seq {
		t.Fatalf("the members got %s #%d and %s #%d, want the two stored events, the second at %d", got[0].Data, got[0].Seq, got[1].Data, got[1].Seq, next)
	}
}

// With worker credentials configured, a client without them is refused,
// and a worker with a password or an NKey publishes as before, with no
// more rights than an anonymous worker had.
func TestWorkersWithCredentials(t *testing.T) {
	key, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pubKey, _ := key.PublicKey()
	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "publisher-password")
	if err := os.WriteFile(passwordFile, []byte("a-worker-secret-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startNode(t, nil, func(c *config.Serve) {
		c.NATSWorkers.PasswordFile = passwordFile
		c.NATSWorkers.NKeys = config.List{pubKey}
		if err := c.ReadSecrets(func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
	})
	const room = "pool:creds"
	c := dial(t, srv)
	subscribe(t, c, room, nil)

	if nc, err := nats.Connect(srv.NATSURL()); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected to a NATS whose workers have credentials")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("a client without credentials: %v, want an authorization violation", err)
	}
	if nc, err := nats.Connect(srv.NATSURL(), nats.UserInfo("publisher", "wrong")); err == nil {
		nc.Close()
		t.Fatal("a wrong password was accepted")
	}

	withPassword, errs := violations(t, srv, nats.UserInfo("publisher", "a-worker-secret-0123"))
	withNKey := natstest.Connect(t, srv.NATSURL(), nats.Nkey(pubKey, key.Sign))
	for i, nc := range []*nats.Conn{withPassword, withNKey} {
		seq := publisherOn(t, nc).event(room, "worker.status_changed", i)
		if m := readEvents(t, c, 1)[0]; m.Seq != seq || counterOf(t, m) != i {
			t.Fatalf("worker %d's event: got seq %d, want %d", i, m.Seq, seq)
		}
	}
	if _, err := withPassword.Subscribe("roomcast.live.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, errs, "a worker with a password subscribing to the live feed")
}

// A worker on the embedded NATS can neither forge a node's status (which
// steers the rebalancing), nor ask for the summaries, nor listen to them
// (they name users and remote addresses); the nodes' own cluster goes on.
func TestWorkersCannotReachTheCluster(t *testing.T) {
	srv := startNode(t, nil, func(c *config.Serve) { c.ServerName = "guarded" })
	nc, errs := violations(t, srv)
	forged := []byte(`{"id":"forged","name":"forged","ready":true,"connections":100000}`)
	for _, subject := range []string{"roomcast.cluster.status", "roomcast.cluster.summary", "roomcast.cluster.reply.x"} {
		if err := nc.Publish(subject, forged); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, errs, "publishing to "+subject)
	}
	for _, subject := range []string{"roomcast.cluster.>", "roomcast.cluster.status", "roomcast.cluster.reply.>"} {
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		expectViolation(t, errs, "subscribing to "+subject)
	}
	// A summary request answered on the worker's own inbox is refused at
	// the publish, and the node would not answer there anyway.
	if _, err := nc.Request("roomcast.cluster.summary", nil, 500*time.Millisecond); err == nil {
		t.Fatal("a worker's summary request was answered")
	}
	expectViolation(t, errs, "a summary request")

	sums, err := srv.Cluster().Gather(context.Background(), time.Second)
	if err != nil || len(sums) != 1 || sums[0].Name != "guarded" {
		t.Fatalf("the node's own gather after the attempts: %+v, %v", sums, err)
	}
	for _, st := range srv.Cluster().Peers() {
		if st.ID == "forged" {
			t.Fatalf("a worker's forged status reached the node: %+v", st)
		}
	}
}
