// Package natsembed runs a NATS server with JetStream inside the roomcast
// process: the default of `serve`, so one binary needs nothing installed.
package natsembed

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Options configure an embedded server.
type Options struct {
	// Listen is the client address workers publish to, host:port; port -1
	// picks a free one (tests).
	Listen     string
	DataDir    string // JetStream storage
	ServerName string
	MaxPayload int32 // 0: the NATS default
	Logger     *slog.Logger

	// Cluster, for in-process clusters in tests: a cluster name, the route
	// listen address (host:port, port -1 for a free one) and the routes to
	// the other members.
	ClusterName   string
	ClusterListen string
	Routes        []string

	ReadyTimeout time.Duration // 0: 15 s

	// SyncAlways makes JetStream fsync every write before it acknowledges
	// it; otherwise it fsyncs every SyncInterval (0: nats-server's own
	// default, 2 minutes). An acknowledged write is in the operating
	// system's cache at once, so it survives the process; only what was
	// fsynced survives a power loss or a kernel crash. serve sets them
	// from --nats-sync.
	SyncAlways   bool
	SyncInterval time.Duration

	// Configure, when set, makes a last change to the server's options:
	// for tests that need a server roomcast itself never runs (one that
	// requires a token, or TLS).
	Configure func(*server.Options)

	// Protect, when set, gives the server roomcast's permissions (see
	// Protection); without it every client may do anything (tests' plain
	// servers).
	Protect *Protection
}

// Protection is what the embedded server lets each of its users do. Two
// kinds of clients reach it: the edge, on its in-process connection, and
// pool workers over the network. Workers get what natsconf's "publisher"
// user gets and nothing more: publish the room subjects, receive the
// acknowledgements of their JetStream publishes on _INBOX.>. They cannot
// read the live feed or the edges' replies, call the JetStream API (purge,
// delete, create, info, get), or publish where edges trust what they read:
// the live subjects, where only the stream's republish (which no user's
// permissions limit) publishes, so no client can forge a live event (with a
// large Nats-Sequence, edges would drop real events as duplicates); the
// edges' reply subjects, so no client can answer an edge's stream read;
// JetStream's advisories; and the state stream's subjects, which only the
// edges' keeper writes (a worker there could forge a room's state).
type Protection struct {
	LiveSubjects  string // the live feed, a wildcard: roomcast.live.>
	RoomSubjects  string // what workers publish to, a wildcard: roomcast.rooms.>
	StateSubjects string // the state stream's, which edges write: roomcast.state.>
	// ClusterSubjects are where edges see each other (their statuses and
	// summaries), a wildcard: roomcast.cluster.>. Workers are denied them.
	ClusterSubjects string
	// EdgeKey is the edge's NKey (a user public key, see
	// nkeys.CreateUser), whose seed never leaves the edge's process.
	EdgeKey string

	// Workers' credentials: a user and password (or bcrypt hash), NKeys
	// (user public keys), or both. With none, clients without credentials
	// are workers; with some, only when AllowAnonymous says so.
	WorkerUser     string
	WorkerPassword string
	WorkerNKeys    []string
	AllowAnonymous bool
}

// WorkersAuthenticate reports whether workers need credentials.
func (p *Protection) WorkersAuthenticate() bool {
	return p.WorkerPassword != "" || len(p.WorkerNKeys) > 0
}

// AnonymousUser is the user every client without credentials becomes,
// when there is one; no worker may be given its name.
const AnonymousUser = "worker"

// EdgeInboxPrefix is the prefix of the subjects an edge's requests are
// answered on (nats.CustomInboxPrefix): apart from the _INBOX.> of other
// clients, so permissions can keep publishers from answering in a
// stream's place.
const EdgeInboxPrefix = "_ROOMCAST_EDGE"

// Start starts the server and waits until it accepts clients.
func Start(o Options) (*server.Server, error) {
	sopts, err := serverOptions(o)
	if err != nil {
		return nil, err
	}
	if o.Configure != nil {
		o.Configure(sopts)
	}
	s, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	if o.Logger != nil {
		s.SetLoggerV2(&slogAdapter{log: o.Logger.With("component", "nats")}, false, false, false)
	}
	go s.Start()
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	if !s.ReadyForConnections(timeout) {
		s.Shutdown()
		if o.ClusterListen != "" {
			return nil, fmt.Errorf("embedded NATS not ready within %s (a clustered server is ready once JetStream has a meta leader: are its routes %v up, and %s and %s free?)", timeout, o.Routes, o.Listen, o.ClusterListen)
		}
		return nil, fmt.Errorf("embedded NATS not ready within %s (is %s free?)", timeout, o.Listen)
	}
	return s, nil
}

func serverOptions(o Options) (*server.Options, error) {
	host, port, err := splitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("NATS listen address: %w", err)
	}
	if o.DataDir == "" {
		return nil, errors.New("embedded NATS needs a data directory for JetStream")
	}
	if o.SyncInterval < 0 {
		return nil, fmt.Errorf("embedded NATS: negative sync interval %s", o.SyncInterval)
	}
	sopts := &server.Options{
		ServerName: o.ServerName,
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.DataDir,
		MaxPayload: o.MaxPayload,
		NoSigs:     true, // the roomcast process owns signals
		// nats-server keeps its 2-minute default for a zero interval,
		// and with SyncAlways still syncs in the background too.
		SyncAlways:   o.SyncAlways,
		SyncInterval: o.SyncInterval,
	}
	if o.Protect != nil {
		if err := o.Protect.apply(sopts); err != nil {
			return nil, err
		}
	}
	if o.ClusterName != "" {
		ch, cp, err := splitHostPort(o.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("NATS cluster listen address: %w", err)
		}
		sopts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: ch, Port: cp}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r, err)
			}
			sopts.Routes = append(sopts.Routes, u)
		}
	}
	return sopts, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, port, nil
}

// Connect opens an in-process client connection to s: no socket, no port.
// Extra options (handlers, name) are applied after roomcast's own.
func Connect(s *server.Server, opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{nats.InProcessServer(s), nats.MaxReconnects(-1)}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded NATS: %w", err)
	}
	return nc, nil
}

// slogAdapter routes the NATS server's log into roomcast's logger.
type slogAdapter struct{ log *slog.Logger }

// Noticef is the server's chatter (banner, listeners): debug level.
func (a *slogAdapter) Noticef(format string, v ...any) { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if msg == plaintextWarning {
		// The advice is for configuration files. Here the anonymous
		// user's password is empty on purpose, and a worker password
		// comes from the environment or a file the operator chose (a
		// bcrypt hash there is taken as one): nothing to warn about.
		a.log.Debug(msg)
		return
	}
	a.log.Warn(msg)
}

// plaintextWarning is what NATS says of any user whose password is not a
// bcrypt hash, the empty one of the anonymous user included.
const plaintextWarning = "Plaintext passwords detected, use nkeys or bcrypt"

func (a *slogAdapter) Fatalf(format string, v ...any) { a.log.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Errorf(format string, v ...any) { a.log.Error(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Debugf(format string, v ...any) { a.log.Debug(fmt.Sprintf(format, v...)) }
func (a *slogAdapter) Tracef(format string, v ...any) { a.log.Debug(fmt.Sprintf(format, v...)) }
