package chartcheck

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/roomcast/roomcast/internal/config"
)

// checkServe gives the rendered container's environment and arguments to
// serve's own configuration, as `roomcast serve` resolves it in the pod:
// every ROOMCAST_* variable must name a flag of serve (or be one of its
// secret variables), and the result must pass serve's Validate. Values
// that Kubernetes fills in (a Secret's key, the pod's name) get stand-ins.
// Files are not read: Validate checks settings, not files. It returns the
// configuration serve resolved, for a test to compare with the values.
func checkServe(t *testing.T, d *appsv1.Deployment) *config.Serve {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	secrets := append(slices.Clone(config.SecretEnv), config.NATSPasswordEnv, config.NATSTokenEnv)

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := config.RegisterServe(fs)

	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = releaseName + "-roomcast-7d9f8b6c5-x2k4q"
		case e.ValueFrom.SecretKeyRef != nil:
			if !slices.Contains(secrets, e.Name) {
				t.Errorf("%s comes from a Secret, but serve reads no secret from it (only %v)", e.Name, secrets)
			}
			env[e.Name] = strings.Repeat("s", 32)
		default:
			t.Errorf("%s: a source the test does not know: %+v", e.Name, e.ValueFrom)
		}
		if !strings.HasPrefix(e.Name, config.EnvPrefix) || slices.Contains(secrets, e.Name) {
			continue
		}
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(e.Name, config.EnvPrefix), "_", "-"))
		if fs.Lookup(flagName) == nil {
			t.Errorf("%s names no flag of serve (--%s): serve would ignore it", e.Name, flagName)
		}
	}
	// The secret file is mounted from a Secret in the pod; here it is a
	// file of the same size class, so serve reads it as it would there.
	if name := config.EnvName("jwt-secret-file"); env[name] != "" {
		file := filepath.Join(t.TempDir(), filepath.Base(env[name]))
		if err := os.WriteFile(file, []byte(strings.Repeat("s", 32)), 0o400); err != nil {
			t.Fatal(err)
		}
		env[name] = file
	}
	getenv := func(name string) string { return env[name] }
	if err := config.Parse(fs, c.Args, getenv, config.ServeCompat); err != nil {
		t.Fatalf("serve refuses the chart's settings: %v", err)
	}
	if err := cfg.ReadSecrets(getenv); err != nil {
		t.Fatalf("serve reads no secrets: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("serve's Validate refuses the chart's settings:\n%v", err)
	}
	if cfg.Embedded() {
		t.Error("serve would start its embedded NATS: the chart must always pass --nats")
	}
	if cfg.ServerName == config.DefaultServerName {
		t.Errorf("server name is the default %q, not the pod's name", cfg.ServerName)
	}
	return cfg
}
