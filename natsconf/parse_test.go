package natsconf_test

import (
	"crypto/tls"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/roomcast/roomcast/internal/bus"
	"github.com/roomcast/roomcast/internal/tlsconf/tlstest"
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
	if !o.SyncAlways {
		// An acknowledged event must survive a power loss (docs/deployment.md,
		// "Durability"): sync_interval: always.
		t.Errorf("JetStream sync_interval %s (0s: NATS's default, 2 minutes), want always: fsync before each acknowledgement", o.SyncInterval)
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
	ca := tlstest.NewCA(t)
	ca.CertFile(t)
	hosts := []string{"nats-0", "nats-1", "nats-2"}
	ca.Server(t, "server", hosts...)
	ca.Peer(t, "route", hosts...)
	return ca.Dir()
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
