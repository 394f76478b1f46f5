package natsconf_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/bus/bustest"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/natsembed"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// startServer runs the server of a configuration file on a free loopback
// port, with its storage in a temporary directory and no monitoring port.
func startServer(t *testing.T, file string) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("%s: server not ready", file)
	}
	return s
}

// errLog records a connection's asynchronous errors.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errLog) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// waitViolation waits for the server to report a permissions violation
// for op ("Publish" or "Subscription") on subject.
func (l *errLog) waitViolation(t *testing.T, who, op, subject string) {
	t.Helper()
	want := strings.ToLower(fmt.Sprintf("for %s to %q", op, subject))
	natstest.WaitFor(t, 5*time.Second, func() error {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, err := range l.errs {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), want) {
				return nil
			}
		}
		return fmt.Errorf("%s: no permissions violation %s; errors: %v", who, want, l.errs)
	})
}

// connect opens a connection as user, recording its asynchronous errors.
func connect(t *testing.T, url, user, password string, opts ...nats.Option) (*nats.Conn, *errLog) {
	t.Helper()
	l := &errLog{}
	opts = append([]nats.Option{nats.UserInfo(user, password), nats.ErrorHandler(l.handler)}, opts...)
	return natstest.Connect(t, url, opts...), l
}

// The accounts give each user what it needs and nothing it could abuse,
// on a real server of single.conf with a real roomcast node as the edge.
func TestAccountsPermissions(t *testing.T) {
	const edgePassword = "9c1e7a05d3b24f68"
	env := setEnv(t)
	t.Setenv(publisherEnv, publisherHash) // bcrypt, as accounts.conf suggests
	t.Setenv(edgeEnv, edgePassword)
	ns := startServer(t, "single.conf")
	url := ns.ClientURL()

	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("a client without credentials was let in")
	}
	if nc, err := nats.Connect(url, nats.UserInfo("edge", "wrong")); err == nil {
		nc.Close()
		t.Error("the edge user was let in with a wrong password")
	}
	sys, _ := connect(t, url, "sys", env[sysEnv])
	if _, err := sys.Request("$SYS.REQ.SERVER.PING", nil, 5*time.Second); err != nil {
		t.Errorf("the system user cannot ping the servers: %v", err)
	}

	// A roomcast node, the edge, creates the stream and serves rooms.
	nodeLog := &servertest.SyncBuffer{}
	node := servertest.StartLogged(t, nil, func(c *config.Serve) {
		c.NATS = config.List{url}
		c.NATSAuth.User, c.NATSAuth.Password = "edge", edgePassword
	}, slog.New(slog.NewTextHandler(nodeLog, &slog.HandlerOptions{Level: slog.LevelWarn})))
	acc, err := ns.LookupAccount("ROOMCAST")
	if err != nil {
		t.Fatal(err)
	}
	if n := acc.JetStreamUsage().Streams; n != 2 {
		t.Fatalf("%d streams in account ROOMCAST after the node started, want its two (events and state)", n)
	}
	checkReady(t, node.AdminAddr())

	const roomName = "pool:p1"
	room, _ := wire.ParseRoom(roomName)
	const roomSubject, liveSubject = "roomcast.rooms.pool.p1", "roomcast.live.pool.p1"
	ws := dialRoom(t, servertest.WSURL(node), roomName, nil)

	edge, edgeErrs := connect(t, url, "edge", edgePassword, nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix))
	live, err := edge.SubscribeSync(liveSubject)
	if err != nil {
		t.Fatal(err)
	}
	if err := edge.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, pubErrs := connect(t, url, "publisher", publisherPassword)

	// Nobody publishes to the live subjects, nor answers for the stream,
	// nor touches the stream's API but the edge.
	for _, s := range []string{liveSubject, "_ROOMCAST_EDGE.forged", "$JS.API.STREAM.DELETE.ROOMCAST", "$JS.API.STREAM.PURGE.ROOMCAST", "$JS.EVENT.ADVISORY.STREAM.DELETED.ROOMCAST"} {
		if err := pub.Publish(s, []byte(`{"event":"forged","data":{}}`)); err != nil {
			t.Fatal(err)
		}
		pubErrs.waitViolation(t, "publisher", "Publish", s)
	}
	for _, s := range []string{liveSubject, roomSubject, "$JS.API.STREAM.DELETE.ROOMCAST", "$JS.API.STREAM.PURGE.ROOMCAST", "$JS.API.CONSUMER.CREATE.ROOMCAST", "$JS.EVENT.ADVISORY.STREAM.DELETED.ROOMCAST"} {
		if err := edge.Publish(s, []byte(`{"event":"forged","data":{}}`)); err != nil {
			t.Fatal(err)
		}
		edgeErrs.waitViolation(t, "edge", "Publish", s)
	}
	// The publisher does not read the live feed.
	if _, err := pub.SubscribeSync("roomcast.live.>"); err != nil {
		t.Fatal(err)
	}
	pubErrs.waitViolation(t, "publisher", "Subscription", "roomcast.live.>")

	// The publisher stores an event with a JetStream publish and its ack.
	pjs, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	payload := []byte(`{"event":"worker.status_changed","data":{"worker_id":"w1","status":"busy","pool_id":"p1"}}`)
	ack, err := pjs.Publish(ctx, roomSubject, payload, jetstream.WithMsgID("natsconf-1"))
	if err != nil {
		t.Fatalf("publisher's JetStream publish: %v", err)
	}
	if ack.Stream != bus.DefaultStream || ack.Sequence == 0 {
		t.Fatalf("ack %+v", ack)
	}
	seq := ack.Sequence

	// The stream's republish reaches the edge, though no user may publish
	// there; it is the first message there, so no forgery got through.
	m, err := live.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no live message: %v", err)
	}
	if m.Header.Get(jetstream.StreamHeader) != bus.DefaultStream || m.Header.Get(jetstream.SequenceHeader) != fmt.Sprint(seq) || string(m.Data) != string(payload) {
		t.Fatalf("live message %s %v %s, want the republish of seq %d", m.Subject, m.Header, m.Data, seq)
	}
	if got := readEvent(t, ws); got.Seq != seq || got.Room != roomName {
		t.Fatalf("the node's client got %+v, want seq %d of %s", got, seq, roomName)
	}

	// The edge reads the stream: a direct get as the edge, on its inbox.
	dg, err := edge.Request("$JS.API.DIRECT.GET.ROOMCAST", fmt.Appendf(nil, `{"seq":%d}`, seq), 5*time.Second)
	if err != nil {
		t.Fatalf("direct get: %v", err)
	}
	if dg.Header.Get(jetstream.SequenceHeader) != fmt.Sprint(seq) || string(dg.Data) != string(payload) {
		t.Fatalf("direct get answered %v %s", dg.Header, dg.Data)
	}
	// A client resuming from the start is replayed the event by the node.
	since := uint64(0)
	if got := readEvent(t, dialRoom(t, servertest.WSURL(node), roomName, &since)); got.Seq != seq {
		t.Fatalf("replayed %+v, want seq %d", got, seq)
	}

	// Every stream call of the edge's bus works as the edge user.
	checkBusCalls(t, url, edgePassword, room, seq)
	// Edges see each other on the cluster's subjects; publishers cannot.
	checkClusterSubjects(t, url, edgePassword, node, pub, pubErrs)

	// The edge cannot reach another stream.
	ejs, err := jetstream.New(edge)
	if err != nil {
		t.Fatal(err)
	}
	octx, ocancel := context.WithTimeout(ctx, time.Second)
	defer ocancel()
	if _, err := ejs.CreateStream(octx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err == nil {
		t.Error("the edge created stream OTHER")
	}
	edgeErrs.waitViolation(t, "edge", "Publish", "$JS.API.STREAM.CREATE.OTHER")
	if n := acc.JetStreamUsage().Streams; n != 2 {
		t.Errorf("%d streams, want ROOMCAST and ROOMCAST_STATE alone", n)
	}
	// Nothing denied above removed the event.
	if got, err := ejs.Stream(ctx, bus.DefaultStream); err != nil || got.CachedInfo().State.Msgs != 1 {
		t.Errorf("stream after the denied calls: %v", err)
	}

	// `roomcast publish` and the demo take --nats-user too; a user and
	// password in the URL work as well.
	withUser := strings.Replace(url, "nats://", "nats://publisher:"+publisherPassword+"@", 1)
	cb := bustest.On(t, natstest.Connect(t, withUser))
	if got, err := cb.Publish(ctx, room, payload, wire.PublishOptions{MsgID: "natsconf-2"}); err != nil || got <= seq {
		t.Errorf("publish as roomcast publish does, with the user in the URL: seq %d, %v", got, err)
	}

	if s := nodeLog.String(); strings.Contains(strings.ToLower(s), "permission") || strings.Contains(s, "NATS error") {
		t.Errorf("the node hit NATS errors:\n%s", s)
	}
}
