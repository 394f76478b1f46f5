package natsconf_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/client"
	"github.com/roomcast/roomcast/internal/config"
	"github.com/roomcast/roomcast/internal/metrics"
	"github.com/roomcast/roomcast/internal/natsembed"
	"github.com/roomcast/roomcast/internal/natstest"
	"github.com/roomcast/roomcast/internal/servertest"
	"github.com/roomcast/roomcast/internal/wire"
)

// The environment variables the configuration files read.
const (
	publisherEnv  = "ROOMCAST_PUBLISHER_PASSWORD"
	edgeEnv       = "ROOMCAST_EDGE_PASSWORD"
	sysEnv        = "ROOMCAST_SYS_PASSWORD"
	serverNameEnv = "NATS_SERVER_NAME"
)

// certDir is where the committed files expect their certificates; the
// tests point a copy of the files at certificates of their own.
const certDir = "/etc/nats/tls/"

// confFile says what a file under natsconf/ is, so the tests know what to
// expect of its options. Every .conf file must have an entry.
type confFile struct {
	fragment bool // included by the others, not a server of its own
	cluster  bool
	tls      bool
}

var confFiles = map[string]confFile{
	"accounts.conf":        {fragment: true},
	"single.conf":          {},
	"cluster.conf":         {cluster: true},
	"tls/single-tls.conf":  {tls: true},
	"tls/cluster-tls.conf": {cluster: true, tls: true},
}

// setEnv sets every variable the files need and returns them.
func setEnv(t *testing.T) map[string]string {
	env := map[string]string{
		publisherEnv:  "pub7f3a9c",
		edgeEnv:       "edge4b8e21",
		sysEnv:        "sys0c5d6e",
		serverNameEnv: "nats-1",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return env
}

// Every configuration is accepted the way `nats-server -t` accepts it, by
// the options parser, by -t's own logic in process and by a real
// nats-server binary, and says what its kind of file should say.
func TestEveryConfigParses(t *testing.T) {
	env := setEnv(t)
	dir, _ := copyConfigs(t)
	bin := natsServerBinary(t)
	names := make([]string, 0, len(confFiles))
	for name := range confFiles {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			opts, err := server.ProcessConfigFile(path)
			if err != nil {
				t.Fatalf("ProcessConfigFile: %v", err)
			}
			checkOptions(t, confFiles[name], opts, env)

			noop := func() {}
			fset := flag.NewFlagSet("nats-server", flag.ContinueOnError)
			if _, err := server.ConfigureOptions(fset, []string{"-t", "-c", path}, noop, noop, noop); err != nil {
				t.Errorf("nats-server -t (in process): %v", err)
			}
			if bin != "" {
				out, err := exec.Command(bin, "-t", "-c", path).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "is valid") {
					t.Errorf("nats-server -t -c %s: %v\n%s", name, err, out)
				}
			}
		})
	}
}

// checkOptions checks the parsed options against what the file is for.
func checkOptions(t *testing.T, want confFile, o *server.Options, env map[string]string) {
	t.Helper()
	if o.SystemAccount != "SYS" {
		t.Errorf("system account %q, want SYS", o.SystemAccount)
	}
	if o.NoAuthUser != "" {
		t.Errorf("no_auth_user %q: anonymous clients must be refused", o.NoAuthUser)
	}
	users := map[string]*server.User{}
	for _, u := range o.Users {
		users[u.Username] = u
	}
	for name, acc := range map[string]struct{ account, passwordEnv string }{
		"publisher": {"ROOMCAST", publisherEnv},
		"edge":      {"ROOMCAST", edgeEnv},
		"sys":       {"SYS", sysEnv},
	} {
		u := users[name]
		switch {
		case u == nil:
			t.Errorf("no user %s", name)
		case u.Account == nil || u.Account.Name != acc.account:
			t.Errorf("user %s: account %v, want %s", name, u.Account, acc.account)
		case u.Password != env[acc.passwordEnv]:
			t.Errorf("user %s: password %q, want $%s (%q)", name, u.Password, acc.passwordEnv, env[acc.passwordEnv])
		}
	}
	if len(o.Users) != 3 || len(o.Nkeys) != 0 {
		t.Errorf("%d users and %d NKey users, want publisher, edge and sys only", len(o.Users), len(o.Nkeys))
	}
	if want.fragment {
		return
	}

	if !o.JetStream || o.StoreDir != "/data" {
		t.Errorf("JetStream %v in %q, want on in /data", o.JetStream, o.StoreDir)
	}
	if o.Host != "0.0.0.0" || o.Port != 4222 || o.HTTPPort != 8222 {
		t.Errorf("clients on %s:%d, monitoring on %d; want 0.0.0.0:4222 and 8222", o.Host, o.Port, o.HTTPPort)
	}
	if o.MaxPayload < bus.DefaultMaxPayload+4096 {
		t.Errorf("max_payload %d is below an edge's default --max-payload and headers", o.MaxPayload)
	}
	if want.cluster {
		if o.ServerName != env[serverNameEnv] {
			t.Errorf("server name %q, want $%s (%q)", o.ServerName, serverNameEnv, env[serverNameEnv])
		}
		if o.Cluster.Name != "roomcast" || o.Cluster.Port != 6222 {
			t.Errorf("cluster %q on port %d, want roomcast on 6222", o.Cluster.Name, o.Cluster.Port)
		}
		var routes []string
		for _, r := range o.Routes {
			routes = append(routes, r.Host)
		}
		if want := []string{"nats-0:6222", "nats-1:6222", "nats-2:6222"}; !slices.Equal(routes, want) {
			t.Errorf("routes %v, want %v", routes, want)
		}
	} else if o.Cluster.Port != 0 || len(o.Routes) != 0 {
		t.Errorf("a single server with a cluster port %d and routes %v", o.Cluster.Port, o.Routes)
	}
	switch {
	case !want.tls && (o.TLSConfig != nil || o.Cluster.TLSConfig != nil):
		t.Error("TLS configured in a file without TLS")
	case !want.tls:
	case o.TLSConfig == nil || o.TLSVerify:
		t.Errorf("client TLS %v with verify %v, want TLS without required client certificates", o.TLSConfig != nil, o.TLSVerify)
	case want.cluster && (o.Cluster.TLSConfig == nil || o.Cluster.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert):
		t.Error("routes must use TLS and verify each other's certificates")
	}
}

// copyConfigs copies every .conf file of the package's directory, in its
// place, into a temporary directory, with the certificate paths pointing
// at certificates made for the test (in certs: ca.pem, server.pem and
// route.pem, with their -key.pem), and checks on the way that every file
// is known, uses the documented certificate directory exactly when it
// uses TLS, and holds no literal password.
func copyConfigs(t *testing.T) (dir, certs string) {
	t.Helper()
	certs = makeCerts(t)

	out := t.TempDir()
	found := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".conf" {
			return err
		}
		name := filepath.ToSlash(path)
		found[name] = true
		want, known := confFiles[name]
		if !known {
			t.Errorf("%s: not in confFiles; say what it is there", name)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(b)
		if uses := strings.Contains(text, certDir); uses != want.tls {
			t.Errorf("%s: refers to %s: %v, uses TLS: %v", name, certDir, uses, want.tls)
		}
		checkNoLiteralPasswords(t, name, text)
		text = strings.ReplaceAll(text, certDir, certs+string(filepath.Separator))
		dst := filepath.Join(out, path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(text), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range confFiles {
		if !found[name] {
			t.Errorf("%s is missing", name)
		}
	}
	return out, certs
}

// makeCerts writes, into a temporary directory it returns, what the TLS
// files expect under /etc/nats/tls/: a CA (ca.pem); a server certificate
// for clients (server.pem, server-key.pem); and a route certificate, for
// client and server use, as route TLS with verify needs
// (route.pem, route-key.pem). Both are for 127.0.0.1, localhost and
// nats-0..2.
func makeCerts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serial := int64(1)
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
		}
	}
	caKey := newKey()
	caTmpl := template("natsconf test CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid = true, true
	caTmpl.KeyUsage = x509.KeyUsageCertSign
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for name, usage := range map[string][]x509.ExtKeyUsage{
		"server": {x509.ExtKeyUsageServerAuth},
		"route":  {x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	} {
		key := newKey()
		tmpl := template(name)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = usage
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost", "nats-0", "nats-1", "nats-2"}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "PRIVATE KEY", keyDER)
	}
	return dir
}

// passwordRe finds the value of a password key outside comments.
var passwordRe = regexp.MustCompile(`(?m)^[^#\n]*\bpassword\s*[:=]\s*([^\s,}]+)`)

var envRefRe = regexp.MustCompile(`^\$[A-Z_][A-Z0-9_]*$`)

func checkNoLiteralPasswords(t *testing.T, name, text string) {
	t.Helper()
	for _, m := range passwordRe.FindAllStringSubmatch(text, -1) {
		if !envRefRe.MatchString(m[1]) {
			t.Errorf("%s: password %s is not an environment variable", name, m[1])
		}
	}
}

// natsServerBinary builds the nats-server of go.mod, for checking the files
// with the real `nats-server -t`; "" with -short (the in-process check
// stays).
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Log("-short: the files are checked in process, not by a nats-server binary")
		return ""
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Logf("no go tool to build nats-server with (%v): the files are checked in process only", err)
		return ""
	}
	bin := filepath.Join(t.TempDir(), "nats-server")
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	return bin
}

// A missing variable stops the server at start, naming the variable.
func TestMissingVariableIsRefused(t *testing.T) {
	for file, missing := range map[string]string{
		"single.conf":  edgeEnv,
		"cluster.conf": serverNameEnv,
	} {
		setEnv(t)
		os.Unsetenv(missing) // setEnv restores it at the end
		_, err := server.ProcessConfigFile(file)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("%s without %s: %v, want an error naming it", file, missing, err)
		}
	}
}

// publisherHash is a bcrypt hash (cost 6) of publisherPassword.
const (
	publisherPassword = "publisher-test-password"
	publisherHash     = "$2a$06$pxdhOOOl2HbLMCNMH4/m/e8UGkzaW73nOoHUzFSRQheTfJ55Qp18i"
)

// The password forms accounts.conf documents come through as written;
// the ones it warns about do not.
func TestPasswordForms(t *testing.T) {
	setEnv(t)
	for _, c := range []struct {
		env, want string // want "": refused
	}{
		{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}, // openssl rand -hex 32
		{"q6Vx3/7m+Wc0N5kQz2y1T8rJ4pLhE9dA0bF6gS7uI3o=", "q6Vx3/7m+Wc0N5kQz2y1T8rJ4pLhE9dA0bF6gS7uI3o="},                                         // openssl rand -base64 32
		{`"p#ss w0rd"`, "p#ss w0rd"},
		{publisherHash, publisherHash},
		{"123456", ""},
		{"true", ""},
		{"two words", ""},
	} {
		t.Setenv(publisherEnv, c.env)
		o, err := server.ProcessConfigFile("accounts.conf")
		got := ""
		if err == nil {
			for _, u := range o.Users {
				if u.Username == "publisher" {
					got = u.Password
				}
			}
		}
		if got != c.want {
			t.Errorf("%s=%s: password %q (err %v), want %q", publisherEnv, c.env, got, err, c.want)
		}
	}
}

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
	if n := acc.JetStreamUsage().Streams; n != 1 {
		t.Fatalf("%d streams in account ROOMCAST after the node started, want its stream", n)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
	if n := acc.JetStreamUsage().Streams; n != 1 {
		t.Errorf("%d streams, want ROOMCAST alone", n)
	}
	// Nothing denied above removed the event.
	if got, err := ejs.Stream(ctx, bus.DefaultStream); err != nil || got.CachedInfo().State.Msgs != 1 {
		t.Errorf("stream after the denied calls: %v", err)
	}

	// `roomcast publish` and the demo have no NATS credential flags: they
	// authenticate with the user and password in the URL, which works.
	withUser := strings.Replace(url, "nats://", "nats://publisher:"+publisherPassword+"@", 1)
	cli := natstest.Connect(t, withUser)
	cb, err := bus.New(cli, bus.Options{Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	if got, err := cb.Publish(ctx, room, payload, "natsconf-2"); err != nil || got <= seq {
		t.Errorf("publish as roomcast publish does, with the user in the URL: seq %d, %v", got, err)
	}

	if s := nodeLog.String(); strings.Contains(strings.ToLower(s), "permission") || strings.Contains(s, "NATS error") {
		t.Errorf("the node hit NATS errors:\n%s", s)
	}
}

// tls/single-tls.conf serves clients over TLS only: a roomcast node with
// --nats-tls-ca creates its stream through it and a worker stores events.
func TestSingleTLS(t *testing.T) {
	const edgePassword = "5e0d9b3c7a1f2468"
	setEnv(t)
	t.Setenv(edgeEnv, edgePassword)
	t.Setenv(publisherEnv, publisherHash)
	dir, certs := copyConfigs(t)
	ns := startServer(t, filepath.Join(dir, "tls", "single-tls.conf"))
	caFile := filepath.Join(certs, "ca.pem")
	url := "tls://" + ns.Addr().String()

	// The server's greeting tells clients TLS is required (nats.go then
	// upgrades even a nats:// URL, so a client cannot show it).
	raw, err := net.DialTimeout("tcp", ns.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	info, err := bufio.NewReader(raw).ReadString('\n')
	raw.Close()
	if err != nil || !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("greeting %q (%v), want TLS required", info, err)
	}
	servertest.Start(t, nil, func(c *config.Serve) {
		c.NATS = config.List{url}
		c.NATSAuth.User, c.NATSAuth.Password = "edge", edgePassword
		c.NATSAuth.TLSCA = caFile
	})
	pub, _ := connect(t, url, "publisher", publisherPassword, nats.RootCAs(caFile))
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "roomcast.rooms.pool.p1", []byte(`{"event":"e","data":{}}`)); err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
}

// cluster.conf and tls/cluster-tls.conf form clusters (whose routes, with
// TLS, verify each other's certificates), from which a roomcast node with a
// stream of three replicas serves a room as the edge user.
func TestClusters(t *testing.T) {
	for _, file := range []string{"cluster.conf", "tls/cluster-tls.conf"} {
		t.Run(file, func(t *testing.T) { testCluster(t, file, confFiles[file].tls) })
	}
}

func testCluster(t *testing.T, file string, useTLS bool) {
	const edgePassword = "b7d2e9f04c1a6358"
	setEnv(t)
	t.Setenv(edgeEnv, edgePassword)
	t.Setenv(publisherEnv, publisherHash)
	dir, certs := copyConfigs(t)
	caFile := filepath.Join(certs, "ca.pem")
	servers := startCluster(t, filepath.Join(dir, file))
	var urls []string
	var tlsOpts []nats.Option
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	if useTLS {
		for i := range urls {
			urls[i] = strings.Replace(urls[i], "nats://", "tls://", 1)
		}
		tlsOpts = append(tlsOpts, nats.RootCAs(caFile))
	}

	nodeLog := &servertest.SyncBuffer{}
	node := servertest.StartLogged(t, nil, func(c *config.Serve) {
		c.NATS = urls
		c.NATSAuth.User, c.NATSAuth.Password = "edge", edgePassword
		if useTLS {
			c.NATSAuth.TLSCA = caFile
		}
		c.StreamReplicas = 3
	}, slog.New(slog.NewTextHandler(nodeLog, &slog.HandlerOptions{Level: slog.LevelWarn})))
	const roomName = "pool:p1"
	ws := dialRoom(t, servertest.WSURL(node), roomName, nil)

	// The worker publishes to another server than the first.
	pub, _ := connect(t, urls[2], "publisher", publisherPassword, tlsOpts...)
	js, err := jetstream.New(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, "roomcast.rooms.pool.p1", []byte(`{"event":"e","data":{}}`))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if got := readEvent(t, ws); got.Seq != ack.Sequence {
		t.Fatalf("the node's client got %+v, want seq %d", got, ack.Sequence)
	}
	since := uint64(0)
	if got := readEvent(t, dialRoom(t, servertest.WSURL(node), roomName, &since)); got.Seq != ack.Sequence {
		t.Fatalf("replayed %+v, want seq %d", got, ack.Sequence)
	}
	edge, _ := connect(t, urls[1], "edge", edgePassword, append(tlsOpts, nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix))...)
	ejs, err := jetstream.New(edge)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ejs.Stream(ctx, bus.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if info := st.CachedInfo(); info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Errorf("stream cluster %+v, want a leader and two replicas", info.Cluster)
	}
	if s := nodeLog.String(); strings.Contains(strings.ToLower(s), "permission") || strings.Contains(s, "NATS error") {
		t.Errorf("the node hit NATS errors:\n%s", s)
	}
}

// startCluster runs three servers of a cluster configuration file, named
// nats-0..2 through NATS_SERVER_NAME, on free loopback ports (the routes
// rewritten to them), and waits for JetStream's meta leader.
func startCluster(t *testing.T, file string) []*server.Server {
	t.Helper()
	const n = 3
	var routes []*neturl.URL
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, &neturl.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		t.Setenv(serverNameEnv, fmt.Sprintf("nats-%d", i))
		opts, err := server.ProcessConfigFile(file)
		if err != nil {
			t.Fatal(err)
		}
		opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", ports[i]
		opts.Routes = routes
		opts.StoreDir = t.TempDir()
		opts.NoSigs, opts.NoLog = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("%s: %v", opts.ServerName, err)
		}
		servers[i] = s
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		go s.Start() // a clustered JetStream server is ready once its peers are up
	}
	for _, s := range servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("%s not ready", s.Name())
		}
	}
	natstest.WaitFor(t, 20*time.Second, func() error {
		leader := false
		for _, s := range servers {
			if s.NumRoutes() < n-1 {
				return fmt.Errorf("%s has %d routes", s.Name(), s.NumRoutes())
			}
			leader = leader || s.JetStreamIsLeader()
		}
		if !leader {
			return errors.New("no JetStream meta leader")
		}
		return nil
	})
	return servers
}

// checkBusCalls runs every JetStream call of the edge's bus on a connection
// of its own as the edge user, and checks that none was denied.
func checkBusCalls(t *testing.T, url, password string, room wire.Room, seq uint64) {
	t.Helper()
	nc, errs := connect(t, url, "edge", password, nats.CustomInboxPrefix(natsembed.EdgeInboxPrefix))
	b, err := bus.New(nc, bus.Options{Logger: natstest.Quiet, Metrics: metrics.NewUnregistered()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop, err := b.WatchStream(func() {}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := b.EnsureStream(ctx); err != nil { // info, then update
		t.Errorf("EnsureStream: %v", err)
	}
	if st, err := b.StreamState(ctx); err != nil || st.LastSeq != seq {
		t.Errorf("StreamState: %+v, %v", st, err)
	}
	if heads, _, err := b.Heads(ctx, []wire.Room{room}); err != nil || heads[room] != seq {
		t.Errorf("Heads (multi_last direct get): %v, %v", heads, err)
	}
	if head, err := b.LeaderHead(ctx, room); err != nil || head != seq {
		t.Errorf("LeaderHead (message get): %d, %v", head, err)
	}
	var got []uint64
	if _, err := b.Replay(ctx, room, 0, seq, func(ev *wire.Event) error {
		got = append(got, ev.Seq)
		return nil
	}); err != nil || !slices.Equal(got, []uint64{seq}) {
		t.Errorf("Replay (direct get): %v, %v", got, err)
	}
	// A denial comes back as -ERR before the flush's PONG.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.LastError(); err != nil {
		t.Errorf("the edge's calls: %v", err)
	}
	errs.mu.Lock()
	defer errs.mu.Unlock()
	if len(errs.errs) > 0 {
		t.Errorf("the edge's calls: %v", errs.errs)
	}
}

// checkReady waits for the node's readiness, which reads the stream.
func checkReady(t *testing.T, admin string) {
	t.Helper()
	natstest.WaitFor(t, 5*time.Second, func() error {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
}

// roomClient is a WebSocket client subscribed to a room.
type roomClient struct {
	c       *client.Conn
	pending []wire.Message // events read before the subscribe response
}

// dialRoom connects a WebSocket client and subscribes it to room. A replay
// may send events before the subscribe response: they are kept.
func dialRoom(t *testing.T, url, room string, since *uint64) *roomClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Subscribe("s1", room, since); err != nil {
		t.Fatal(err)
	}
	rc := &roomClient{c: c}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := c.Read(deadline)
		switch {
		case err != nil:
			t.Fatalf("subscribe %s: %v", room, err)
		case m.Type == wire.TypeEvent:
			rc.pending = append(rc.pending, m)
		case m.Type == wire.TypeResponse && m.ID == "s1":
			return rc
		default:
			t.Fatalf("subscribe %s: %+v", room, m)
		}
	}
}

// readEvent returns the client's next event.
func readEvent(t *testing.T, rc *roomClient) wire.Message {
	t.Helper()
	if len(rc.pending) > 0 {
		m := rc.pending[0]
		rc.pending = rc.pending[1:]
		return m
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := rc.c.Read(deadline)
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		if m.Type == wire.TypeEvent {
			return m
		}
	}
}
