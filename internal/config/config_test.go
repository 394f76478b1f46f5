package config

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func parseServe(t *testing.T, args []string, env map[string]string) (*Serve, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := RegisterServe(fs)
	err := Parse(fs, args, func(k string) string { return env[k] }, ServeCompat)
	return c, err
}

func TestDefaultsAreValidOnLoopback(t *testing.T) {
	c, err := parseServe(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if c.Listen != "127.0.0.1:8690" || c.AdminAddr() != "127.0.0.1:9090" || c.NATSListen != "127.0.0.1:4222" || !c.Embedded() {
		t.Fatalf("defaults differ from docs/protocol.md section 6: %+v", c)
	}
}

// A setting given twice follows: flag, ROOMCAST_* variable, compatible name,
// default.
func TestPrecedence(t *testing.T) {
	env := map[string]string{"ROOMCAST_DRAIN_TIMEOUT": "7s", "ROOMCAST_SERVER_NAME": "from-env", "PROMETHEUS_PORT": "9555"}
	c, err := parseServe(t, []string{"--server-name", "from-flag"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.ServerName != "from-flag" || c.DrainTimeout != 7*time.Second {
		t.Fatalf("server name %q drain %s", c.ServerName, c.DrainTimeout)
	}
	if c.AdminAddr() != "127.0.0.1:9555" {
		t.Fatalf("PROMETHEUS_PORT: admin %q", c.AdminAddr())
	}
	env["ROOMCAST_ADMIN_LISTEN"] = "127.0.0.1:9666"
	c, _ = parseServe(t, nil, env)
	if c.AdminAddr() != "127.0.0.1:9666" {
		t.Fatalf("ROOMCAST_ADMIN_LISTEN must win over PROMETHEUS_PORT: %q", c.AdminAddr())
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	_, err := parseServe(t, nil, map[string]string{"ROOMCAST_MAX_CONNECTIONS": "lots"})
	if err == nil || !strings.Contains(err.Error(), "ROOMCAST_MAX_CONNECTIONS") {
		t.Fatalf("got %v", err)
	}
}

func TestUnknownFlagIsAnError(t *testing.T) {
	if _, err := parseServe(t, []string{"--no-such-flag"}, nil); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

// Validate reports every problem at once.
func TestValidateReportsEveryProblem(t *testing.T) {
	c, _ := parseServe(t, []string{
		"--listen", "nonsense", "--log-format", "xml", "--stream-replicas", "0",
		"--nats", "localhost:4222", "--subject-prefix", "a.>", "--log-level", "loud",
		"--state-max-keys-per-room", "0", "--state-max-age", "500ms",
	}, nil)
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid settings accepted")
	}
	for _, want := range []string{"--listen", "--log-format", "--stream-replicas", "--nats", "--subject-prefix", "--log-level",
		"--state-max-keys-per-room", "--state-max-age"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

// Without keys, serving on a non-loopback address needs --allow-anonymous.
func TestAnonymousOnlyOnLoopbackUnlessAllowed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--listen", "127.0.0.2:8690"}, true},
		{[]string{"--listen", "[::1]:8690"}, true},
		{[]string{"--listen", "localhost:8690"}, true},
		{[]string{"--listen", "0.0.0.0:8690"}, false},
		{[]string{"--listen", ":8690"}, false},
		{[]string{"--listen", "0.0.0.0:8690", "--allow-anonymous"}, true},
	} {
		c, err := parseServe(t, tc.args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%v: validate = %v, want ok=%v", tc.args, err, tc.ok)
		}
	}
}

func TestListFlagTakesCommasAndRepeats(t *testing.T) {
	c, err := parseServe(t, []string{"--nats", "nats://a:4222, nats://b:4222", "--nats", "nats://c:4222"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.NATS, "|"); got != "nats://a:4222|nats://b:4222|nats://c:4222" {
		t.Fatalf("nats %q", got)
	}
}

// The TLS files come from the flags, ROOMCAST_TLS_* or the deployment
// guide's WEBSOCKET_*_FILE names; a certificate needs its key, and a client
// CA needs TLS.
func TestTLSSettings(t *testing.T) {
	c, err := parseServe(t, nil, map[string]string{
		"WEBSOCKET_CERT_FILE": "/etc/tls/tls.crt", "WEBSOCKET_KEY_FILE": "/etc/tls/tls.key",
		"WEBSOCKET_CA_FILE": "/etc/tls/ca.crt", "ROOMCAST_TLS_CA": "/etc/other/ca.crt",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.TLSCert != "/etc/tls/tls.crt" || c.TLSKey != "/etc/tls/tls.key" || c.TLSCA != "/etc/other/ca.crt" || !c.TLS() {
		t.Fatalf("TLS settings %q %q %q", c.TLSCert, c.TLSKey, c.TLSCA)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("complete TLS settings: %v", err)
	}
	for name, args := range map[string][]string{
		"cert without key":       {"--tls-cert", "c.pem"},
		"key without cert":       {"--tls-key", "k.pem"},
		"CA without TLS":         {"--tls-ca", "ca.pem"},
		"admin cert without key": {"--admin-tls-cert", "c.pem"},
		"admin key without cert": {"--admin-tls-key", "k.pem"},
	} {
		c, err := parseServe(t, args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// A NATS URL may carry a password: a bad one is reported without quoting it.
func TestBadNATSURLIsNotQuoted(t *testing.T) {
	for _, u := range []string{"nats://user:p%zzSECRET@127.0.0.1:4222", "user:SECRET@host:4222"} {
		c, err := parseServe(t, []string{"--nats", u}, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Validate()
		if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "--nats") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// --dashboard is on by default and turned off by flag or ROOMCAST_DASHBOARD.
func TestDashboardSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, true},
		{[]string{"--dashboard=false"}, nil, false},
		{nil, map[string]string{"ROOMCAST_DASHBOARD": "false"}, false},
		{[]string{"--dashboard"}, map[string]string{"ROOMCAST_DASHBOARD": "false"}, true},
	} {
		c, err := parseServe(t, tc.args, tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if c.Dashboard != tc.want {
			t.Errorf("args %v env %v: dashboard %v, want %v", tc.args, tc.env, c.Dashboard, tc.want)
		}
	}
}

// --compression is off by default and set by flag or ROOMCAST_COMPRESSION.
func TestCompressionSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, false},
		{[]string{"--compression"}, nil, true},
		{nil, map[string]string{"ROOMCAST_COMPRESSION": "true"}, true},
		{[]string{"--compression=false"}, map[string]string{"ROOMCAST_COMPRESSION": "true"}, false},
	} {
		c, err := parseServe(t, tc.args, tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if c.Compression != tc.want {
			t.Errorf("args %v env %v: compression %v, want %v", tc.args, tc.env, c.Compression, tc.want)
		}
	}
}

// The unauthenticated budget's settings come from flags or ROOMCAST_*
// variables; a negative budget, a share that is not positive and a
// trusted proxy that is not an address or CIDR are refused by name.
func TestUnauthenticatedBudgetSettings(t *testing.T) {
	c, err := parseServe(t, []string{"--max-unauthenticated", "40"}, map[string]string{
		"ROOMCAST_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1", "ROOMCAST_MAX_UNAUTHENTICATED_PER_SOURCE": "4",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MaxUnauthenticated != 40 || c.MaxUnauthenticatedPerSource != 4 || strings.Join(c.TrustedProxies, " ") != "10.0.0.0/8 192.0.2.1" {
		t.Fatalf("settings %d %d %v", c.MaxUnauthenticated, c.MaxUnauthenticatedPerSource, c.TrustedProxies)
	}
	c, _ = parseServe(t, []string{"--max-unauthenticated", "-1", "--max-unauthenticated-per-source", "0", "--trusted-proxies", "proxy.example"}, nil)
	err = c.Validate()
	for _, want := range []string{"--max-unauthenticated,", "--max-unauthenticated-per-source", "--trusted-proxies"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

// The socket send buffer defaults to conn's fixed size, and a negative
// value (the kernel's autotuning) is accepted; it reaches conn.Options as
// given.
func TestSocketSendBufferSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, 256 << 10},
		{[]string{"--socket-send-buffer", "65536"}, nil, 65536},
		{nil, map[string]string{"ROOMCAST_SOCKET_SEND_BUFFER": "-1"}, -1},
	} {
		c, err := parseServe(t, tc.args, tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("args %v env %v: %v", tc.args, tc.env, err)
		}
		if c.SocketSendBuffer != tc.want {
			t.Errorf("args %v env %v: socket send buffer %d, want %d", tc.args, tc.env, c.SocketSendBuffer, tc.want)
		}
	}
	if _, err := parseServe(t, []string{"--socket-send-buffer", "big"}, nil); err == nil {
		t.Fatal("a send buffer that is not a number was accepted")
	}
}
