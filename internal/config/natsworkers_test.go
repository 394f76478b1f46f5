package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"
)

// The embedded NATS on a non-loopback address needs worker credentials,
// or the operator's explicit --nats-allow-anonymous (issue 17).
func TestEmbeddedNATSOnlyOnLoopbackWithoutWorkerCredentials(t *testing.T) {
	key, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	nkey, _ := key.PublicKey()
	seed, _ := key.Seed()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		ok   bool
	}{
		{args: []string{"--nats-listen", "127.0.0.1:4222"}, ok: true},
		{args: []string{"--nats-listen", "localhost:4222"}, ok: true},
		{args: []string{"--nats-listen", "0.0.0.0:4222"}, ok: false},
		{args: []string{"--nats-listen", ":4222"}, ok: false},
		{args: []string{"--nats-listen", "0.0.0.0:4222", "--allow-anonymous"}, ok: false}, // the WebSocket side's opt-in is not NATS's
		{args: []string{"--nats-listen", "0.0.0.0:4222", "--nats-allow-anonymous"}, ok: true},
		{args: []string{"--nats-listen", "0.0.0.0:4222"}, env: map[string]string{NATSPublisherPasswordEnv: "pw-0123456789"}, ok: true},
		{args: []string{"--nats-listen", "0.0.0.0:4222", "--nats-publisher-nkey", nkey}, ok: true},
		{args: []string{"--nats-listen", "0.0.0.0:4222"}, env: map[string]string{"ROOMCAST_NATS_PUBLISHER_NKEY": nkey}, ok: true},
		{args: []string{"--nats-listen", "0.0.0.0:4222", "--nats-publisher-nkey", string(seed)}, ok: false},
		{args: []string{"--nats-publisher-user", ""}, env: map[string]string{NATSPublisherPasswordEnv: "pw"}, ok: false},
		{args: []string{"--nats", "nats://n:4222", "--nats-allow-anonymous"}, ok: false},
		{args: []string{"--nats", "nats://n:4222"}, env: map[string]string{NATSPublisherPasswordEnv: "pw"}, ok: false},
	} {
		c, err := parseServe(t, tc.args, tc.env)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ReadSecrets(func(k string) string { return tc.env[k] }); err != nil {
			t.Fatal(err)
		}
		err = c.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%v %v: validate = %v, want ok=%v", tc.args, tc.env, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "not a loopback address") && !strings.Contains(err.Error(), "--nats-publisher-password-file") {
			t.Errorf("%v: %v does not say what to configure", tc.args, err)
		}
		if err != nil && strings.Contains(err.Error(), string(seed)) {
			t.Errorf("%v: the error quotes the seed: %v", tc.args, err)
		}
	}
}

// The workers' password comes from its file, without the final line
// break, before the environment; an empty or missing file is an error that
// names the flag and not the secret.
func TestWorkerPasswordFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("from-the-file\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{NATSPublisherPasswordEnv: "from-the-env"}
	c, err := parseServe(t, []string{"--nats-publisher-password-file", file}, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ReadSecrets(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.NATSWorkers.Password != "from-the-file" || !c.NATSWorkers.Authenticate() {
		t.Fatalf("password %q, want the file's", c.NATSWorkers.Password)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{empty, filepath.Join(dir, "missing")} {
		c, _ := parseServe(t, []string{"--nats-publisher-password-file", f}, nil)
		err := c.ReadSecrets(func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), "--nats-publisher-password-file") {
			t.Errorf("file %s: %v, want an error naming the flag", f, err)
		}
	}
}
