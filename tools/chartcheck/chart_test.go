package chartcheck

import (
	"cmp"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Fake PEM blocks: the chart checks their shape only (the node parses
// them at start).
const (
	pemA = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
	pemB = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA2J1O6pY3iZ+g6kXoYVkYt0cD3pZ0yXqf3rS1s5V6a2A=\n-----END PUBLIC KEY-----\n"
	jwks = `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE"}]}`
)

// TestRender renders the chart with the value sets below and checks every
// object: strict decoding into the Kubernetes types, the invariants of
// checkCommon, serve's own validation of the container's settings, and
// each case's own expectations.
func TestRender(t *testing.T) {
	cases := []struct {
		name  string
		vals  func(t *testing.T) map[string]any
		check func(t *testing.T, o *objects)
	}{{
		name: "minimal",
		vals: func(*testing.T) map[string]any { return minimal() },
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			if len(c.Args) != 0 {
				t.Errorf("args = %q, want none (no --allow-anonymous with a key)", c.Args)
			}
			// The secret is a file, read again when the Secret changes.
			if got := envValue(t, c, "ROOMCAST_JWT_SECRET_FILE"); got != "/etc/roomcast/jwt-secret/jwt-secret" {
				t.Errorf("ROOMCAST_JWT_SECRET_FILE = %q", got)
			}
			mustMount(t, o, "/etc/roomcast/jwt-secret/jwt-secret", "roomcast-jwt", "jwt-secret")
			for _, e := range c.Env {
				if e.Name == "ROOMCAST_JWT_SECRET" {
					t.Error("the secret is in a variable, which cannot be read again")
				}
			}
			if got := envValue(t, c, "ROOMCAST_NATS"); got != "nats://nats.nats.svc.cluster.local:4222" {
				t.Errorf("ROOMCAST_NATS = %q", got)
			}
			if got := envValue(t, c, "ROOMCAST_STREAM_REPLICAS"); got != "3" {
				t.Errorf("ROOMCAST_STREAM_REPLICAS = %q, want 3", got)
			}
			if o.hpa == nil || o.hpa.Spec.MinReplicas == nil || *o.hpa.Spec.MinReplicas != 3 || o.hpa.Spec.MaxReplicas != 10 {
				t.Errorf("HPA = %+v, want 3 to 10 replicas", o.hpa)
			}
			if o.serviceMonitor != nil || o.prometheusRule != nil || o.networkPolicy != nil {
				t.Error("ServiceMonitor, PrometheusRule or NetworkPolicy rendered, but they are off by default")
			}
			if len(c.VolumeMounts) != 1 || len(o.deployment.Spec.Template.Spec.Volumes) != 1 {
				t.Errorf("%d mounts of %d volumes, want the JWT secret's only", len(c.VolumeMounts), len(o.deployment.Spec.Template.Spec.Volumes))
			}
			if _, ok := o.deployment.Spec.Template.Annotations["checksum/jwt-keys"]; ok {
				t.Error("checksum/jwt-keys without inline keys")
			}
			if o.service.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("Service type %s, want ClusterIP", o.service.Spec.Type)
			}
		},
	}, {
		name: "production",
		vals: func(t *testing.T) map[string]any { return valuesFile(t, "values-production.yaml") },
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			if o.hpa == nil || *o.hpa.Spec.MinReplicas != 5 {
				t.Errorf("HPA min replicas: want 5")
			}
			if got := strings.Split(envValue(t, c, "ROOMCAST_NATS"), ","); len(got) != 3 {
				t.Errorf("ROOMCAST_NATS has %d URLs, want 3: %q", len(got), got)
			}
			for name, want := range map[string]string{
				"ROOMCAST_TLS_CERT":    "/etc/roomcast/tls/tls.crt",
				"ROOMCAST_TLS_KEY":     "/etc/roomcast/tls/tls.key",
				"ROOMCAST_NATS_CREDS":  "/etc/roomcast/nats-credentials/nats.creds",
				"ROOMCAST_NATS_TLS_CA": "/etc/roomcast/nats-tls/ca.crt",
				"ROOMCAST_JWT_ISSUER":  "https://auth.example.com",
				// Clients come through ingress-nginx only (wsFrom): its
				// pods are trusted, or every client is one source.
				"ROOMCAST_TRUSTED_PROXIES": "10.244.0.0/16",
			} {
				if got := envValue(t, c, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			mustMount(t, o, "/etc/roomcast/tls/tls.crt", "roomcast-tls", "tls.crt")
			mustMount(t, o, "/etc/roomcast/tls/tls.key", "roomcast-tls", "tls.key")
			mustMount(t, o, "/etc/roomcast/nats-credentials/nats.creds", "roomcast-nats", "nats.creds")
			mustMount(t, o, "/etc/roomcast/nats-tls/ca.crt", "roomcast-nats-tls", "ca.crt")
			mustMount(t, o, envValue(t, c, "ROOMCAST_JWT_SECRET_FILE"), "roomcast-jwt", "jwt-secret")
			if o.serviceMonitor == nil || o.prometheusRule == nil || o.networkPolicy == nil {
				t.Fatal("ServiceMonitor, PrometheusRule and NetworkPolicy must be rendered in production")
			}
			if o.serviceMonitor.Spec.Endpoints[0].Authorization == nil {
				t.Error("the production ServiceMonitor sends no admin token")
			}
			if o.serviceMonitor.Labels["release"] != "kube-prometheus-stack" {
				t.Error("serviceMonitor.labels not applied")
			}
			if o.deployment.Spec.Template.Spec.ImagePullSecrets[0].Name != "registry-example-com" {
				t.Error("imagePullSecrets not applied")
			}
		},
	}, {
		name: "anonymous",
		vals: func(*testing.T) map[string]any {
			return vals("nats.url", "nats://nats:4222", "allowAnonymous", true)
		},
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			if !reflect.DeepEqual(c.Args, []string{"--allow-anonymous"}) {
				t.Errorf("args = %q, want [--allow-anonymous]", c.Args)
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "ROOMCAST_JWT_SECRET") || e.Name == "ROOMCAST_JWKS" || e.Name == "ROOMCAST_JWT_PUBLIC_KEY" {
					t.Errorf("%s set without a key configured", e.Name)
				}
			}
			if !strings.Contains(o.notes, "WARNING: allowAnonymous") {
				t.Error("NOTES.txt does not warn about allowAnonymous")
			}
		},
	}, {
		name: "admin token",
		vals: func(*testing.T) map[string]any {
			return minimal("adminAuth.secretName", "roomcast-admin", "serviceMonitor.enabled", true)
		},
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			// A file, read again when the Secret changes, and the same
			// Secret sent by Prometheus.
			mustMount(t, o, envValue(t, c, "ROOMCAST_ADMIN_TOKEN_FILE"), "roomcast-admin", "token")
			ep := o.serviceMonitor.Spec.Endpoints[0]
			if ep.Scheme != "http" || ep.TLSConfig != nil {
				t.Errorf("ServiceMonitor scheme %q with tlsConfig %+v, want plain http without admin TLS", ep.Scheme, ep.TLSConfig)
			}
			if a := ep.Authorization; a == nil || a.Type != "Bearer" || a.Credentials.Name != "roomcast-admin" || a.Credentials.Key != "token" {
				t.Errorf("ServiceMonitor authorization %+v, want Bearer from roomcast-admin/token", a)
			}
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || len(p.HTTPGet.HTTPHeaders) != 0 {
					t.Errorf("probe %+v: the probes need no token", p)
				}
			}
		},
	}, {
		name: "admin TLS",
		vals: func(*testing.T) map[string]any {
			return minimal("adminTLS.secretName", "roomcast-admin-tls", "serviceMonitor.enabled", true)
		},
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			mustMount(t, o, envValue(t, c, "ROOMCAST_ADMIN_TLS_CERT"), "roomcast-admin-tls", "tls.crt")
			mustMount(t, o, envValue(t, c, "ROOMCAST_ADMIN_TLS_KEY"), "roomcast-admin-tls", "tls.key")
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					t.Errorf("probe %+v: want HTTPS on the admin port", p)
				}
			}
			ep := o.serviceMonitor.Spec.Endpoints[0]
			tc := ep.TLSConfig
			if ep.Scheme != "https" || tc == nil || tc.CA.Secret == nil || tc.CA.Secret.Name != "roomcast-admin-tls" || tc.CA.Secret.Key != "ca.crt" {
				t.Fatalf("ServiceMonitor scheme %q, tlsConfig %+v: want https verified with roomcast-admin-tls/ca.crt", ep.Scheme, tc)
			}
			if want := "rc-roomcast-admin.roomcast.svc"; tc.ServerName != want {
				t.Errorf("ServiceMonitor serverName %q, want %q (the admin Service's name)", tc.ServerName, want)
			}
		},
	}, {
		name: "network policy",
		vals: func(*testing.T) map[string]any {
			return minimal("networkPolicy.enabled", true,
				"networkPolicy.wsFrom", []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ingress-nginx"}}}})
		},
		check: func(t *testing.T, o *objects) {
			np := o.networkPolicy
			if np == nil {
				t.Fatal("no NetworkPolicy rendered")
			}
			if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, o.deployment.Spec.Selector.MatchLabels) {
				t.Errorf("policy selects %v, the pods are %v", np.Spec.PodSelector.MatchLabels, o.deployment.Spec.Selector.MatchLabels)
			}
			if len(np.Spec.Ingress) != 2 {
				t.Fatalf("%d ingress rules, want ws and admin", len(np.Spec.Ingress))
			}
			ns := func(r networkingv1.NetworkPolicyIngressRule) string {
				if len(r.From) != 1 || r.From[0].NamespaceSelector == nil {
					return ""
				}
				return r.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"]
			}
			for i, want := range []struct{ port, from string }{{"ws", "ingress-nginx"}, {"admin", "monitoring"}} {
				r := np.Spec.Ingress[i]
				if len(r.Ports) != 1 || r.Ports[0].Port.String() != want.port || ns(r) != want.from {
					t.Errorf("rule %d: ports %+v from %+v, want %s from namespace %s", i, r.Ports, r.From, want.port, want.from)
				}
			}
		},
	}, {
		// A rule without peers admits everyone: an empty adminFrom must
		// leave the admin rule out, and an empty wsFrom leaves ws open.
		name: "network policy, admin closed",
		vals: func(*testing.T) map[string]any {
			return minimal("networkPolicy.enabled", true, "networkPolicy.adminFrom", []any{})
		},
		check: func(t *testing.T, o *objects) {
			np := o.networkPolicy
			if np == nil || len(np.Spec.Ingress) != 1 {
				t.Fatalf("policy %+v, want one rule", np)
			}
			if r := np.Spec.Ingress[0]; len(r.Ports) != 1 || r.Ports[0].Port.String() != "ws" || len(r.From) != 0 {
				t.Errorf("rule %+v, want ws from anyone", r)
			}
		},
	}, {
		name: "fixed replicas",
		vals: func(*testing.T) map[string]any {
			return minimal("autoscaling.enabled", false, "replicaCount", 4)
		},
		check: func(t *testing.T, o *objects) {
			if o.hpa != nil {
				t.Error("HPA rendered with autoscaling.enabled=false")
			}
			if r := o.deployment.Spec.Replicas; r == nil || *r != 4 {
				t.Errorf("replicas = %v, want 4", r)
			}
		},
	}, {
		name: "inline keys, mTLS, NATS user and client certificate, passthroughs",
		vals: func(*testing.T) map[string]any {
			v := vals(
				"nats.url", []any{"nats://n1:4222", "nats://n2:4222"},
				"nats.credentials.secretName", "nats-user",
				"nats.credentials.type", "userPassword",
				"nats.credentials.user", "roomcast",
				"nats.tls.secretName", "nats-client",
				"nats.tls.clientCertificate", true,
				"auth.publicKeys.inline", map[string]any{"current.pem": pemA, "next.pem": pemB},
				"auth.jwks.inline", jwks,
				"auth.audience", "roomcast",
				"tls.enabled", true,
				"tls.secretName", "ws-tls",
				"tls.clientCA.configMapName", "client-ca",
				"bindAddress", "::",
				"shutdown.preStopSleepSeconds", 0,
				"podDisruptionBudget.enabled", false,
				"topologySpread.enabled", false,
				"grafanaDashboard.enabled", false,
				"serviceAccount.create", false,
				"serviceAccount.name", "edge",
				"podAnnotations", map[string]any{"example.com/a": "b"},
				"podLabels", map[string]any{"team": "platform"},
				"extraEnv", []any{map[string]any{"name": "ROOMCAST_PING_INTERVAL", "value": "30s"}},
				"extraArgs", []any{"--log-level=debug"},
				"priorityClassName", "high",
				"nodeSelector", map[string]any{"kubernetes.io/os": "linux"},
				"tolerations", []any{map[string]any{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}},
				"affinity", map[string]any{"nodeAffinity": map[string]any{"requiredDuringSchedulingIgnoredDuringExecution": map[string]any{
					"nodeSelectorTerms": []any{map[string]any{"matchExpressions": []any{map[string]any{"key": "pool", "operator": "In", "values": []any{"edge"}}}}},
				}}},
			)
			return v
		},
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			p := o.deployment.Spec.Template.Spec
			if got := envValue(t, c, "ROOMCAST_LISTEN"); got != "[::]:8690" {
				t.Errorf("ROOMCAST_LISTEN = %q, want [::]:8690", got)
			}
			if got := envValue(t, c, "ROOMCAST_NATS"); got != "nats://n1:4222,nats://n2:4222" {
				t.Errorf("ROOMCAST_NATS = %q", got)
			}
			if got := envValue(t, c, "ROOMCAST_JWT_PUBLIC_KEY"); got != "/etc/roomcast/jwt-public-keys/current.pem,/etc/roomcast/jwt-public-keys/next.pem" {
				t.Errorf("ROOMCAST_JWT_PUBLIC_KEY = %q", got)
			}
			keysCM := o.configMaps["rc-roomcast-jwt-keys"]
			if keysCM == nil {
				t.Fatal("no ConfigMap rc-roomcast-jwt-keys for the inline keys")
			}
			if keysCM.Data["public-key.current.pem"] != strings.TrimSuffix(pemA, "\n") || keysCM.Data["jwks.json"] != jwks {
				t.Errorf("inline keys ConfigMap data = %q", keysCM.Data)
			}
			mustMount(t, o, "/etc/roomcast/jwt-public-keys/next.pem", "rc-roomcast-jwt-keys", "public-key.next.pem")
			mustMount(t, o, envValue(t, c, "ROOMCAST_JWKS"), "rc-roomcast-jwt-keys", "jwks.json")
			mustMount(t, o, envValue(t, c, "ROOMCAST_TLS_CA"), "client-ca", "ca.crt")
			mustMount(t, o, envValue(t, c, "ROOMCAST_NATS_TLS_CERT"), "nats-client", "tls.crt")
			mustMount(t, o, envValue(t, c, "ROOMCAST_NATS_TLS_KEY"), "nats-client", "tls.key")
			if got := envValue(t, c, "ROOMCAST_NATS_USER"); got != "roomcast" {
				t.Errorf("ROOMCAST_NATS_USER = %q", got)
			}
			if ref := envVar(t, c, "ROOMCAST_NATS_PASSWORD").ValueFrom.SecretKeyRef; ref.Name != "nats-user" || ref.Key != "password" {
				t.Errorf("ROOMCAST_NATS_PASSWORD from %s/%s, want nats-user/password", ref.Name, ref.Key)
			}
			if envValue(t, c, "ROOMCAST_PING_INTERVAL") != "30s" || !reflect.DeepEqual(c.Args, []string{"--log-level=debug"}) {
				t.Error("extraEnv or extraArgs not applied")
			}
			if o.deployment.Spec.Template.Annotations["checksum/jwt-keys"] == "" || o.deployment.Spec.Template.Annotations["example.com/a"] != "b" {
				t.Errorf("pod annotations = %v, want checksum/jwt-keys and podAnnotations", o.deployment.Spec.Template.Annotations)
			}
			if o.deployment.Spec.Template.Labels["team"] != "platform" {
				t.Error("podLabels not applied")
			}
			if p.PriorityClassName != "high" || p.NodeSelector["kubernetes.io/os"] != "linux" || len(p.Tolerations) != 1 || p.Affinity == nil || p.Affinity.NodeAffinity == nil {
				t.Error("priorityClassName, nodeSelector, tolerations or affinity not passed through")
			}
			if c.Lifecycle != nil {
				t.Error("preStop hook rendered with preStopSleepSeconds 0")
			}
			if p.ServiceAccountName != "edge" || o.serviceAccount != nil {
				t.Error("serviceAccount.create=false must use the named account and create none")
			}
			if o.pdb != nil || len(p.TopologySpreadConstraints) != 0 || len(o.configMaps) != 1 {
				t.Error("PDB, topology spread or the Grafana ConfigMap rendered while disabled")
			}
		},
	}, {
		name: "existing keys, JWKS URL, NATS NKey",
		vals: func(*testing.T) map[string]any {
			return vals(
				"nats.url", "tls://nats-0:4222,tls://nats-1:4222",
				"nats.credentials.secretName", "nats-nkey",
				"nats.credentials.type", "nkey",
				"nats.tls.secretName", "nats-ca",
				"auth.publicKeys.secretName", "jwt-public",
				"auth.publicKeys.items", []any{"a.pem", "b.pem"},
				"auth.jwks.url", "https://idp.example.com/.well-known/jwks.json",
				"auth.jwks.caConfigMapName", "idp-ca",
				"tls.enabled", true,
				"tls.secretName", "ws-tls",
				"tls.clientCA.secretName", "clients-ca",
				"tls.clientCA.key", "bundle.pem",
				"grafanaDashboard.namespace", "monitoring",
			)
		},
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			mustMount(t, o, "/etc/roomcast/jwt-public-keys/b.pem", "jwt-public", "b.pem")
			mustMount(t, o, envValue(t, c, "ROOMCAST_NATS_NKEY"), "nats-nkey", "nkey.seed")
			mustMount(t, o, envValue(t, c, "ROOMCAST_JWKS_CA"), "idp-ca", "ca.crt")
			mustMount(t, o, envValue(t, c, "ROOMCAST_TLS_CA"), "clients-ca", "bundle.pem")
			if got := envValue(t, c, "ROOMCAST_JWKS"); got != "https://idp.example.com/.well-known/jwks.json" {
				t.Errorf("ROOMCAST_JWKS = %q", got)
			}
			if _, ok := o.deployment.Spec.Template.Annotations["checksum/jwt-keys"]; ok {
				t.Error("checksum/jwt-keys without inline keys")
			}
			if cm := o.configMaps["rc-roomcast-dashboard"]; cm == nil || cm.Namespace != "monitoring" {
				t.Error("grafanaDashboard.namespace not applied")
			}
		},
	}, {
		name: "NATS token",
		vals: func(*testing.T) map[string]any {
			return minimal("nats.credentials.secretName", "nats-token", "nats.credentials.type", "token", "nats.credentials.key", "tok")
		},
		check: func(t *testing.T, o *objects) {
			c := container(t, o)
			if ref := envVar(t, c, "ROOMCAST_NATS_TOKEN").ValueFrom.SecretKeyRef; ref.Name != "nats-token" || ref.Key != "tok" {
				t.Errorf("ROOMCAST_NATS_TOKEN from %s/%s", ref.Name, ref.Key)
			}
			for _, m := range c.VolumeMounts {
				if m.Name == "nats-credentials" {
					t.Error("a token is an environment variable: nothing to mount")
				}
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.vals(t)
			o := decode(t, mustRender(t, v))
			eff, err := chartutil.CoalesceValues(loadChart(t), v)
			if err != nil {
				t.Fatal(err)
			}
			checkCommon(t, o, eff)
			checkServe(t, o.deployment)
			checkPodSecurity(t, o.deployment)
			tc.check(t, o)
		})
	}
}

// TestChecksumRollsPods: the pod template's checksum follows the inline
// keys, so changing them rolls the pods (the node reads them at start).
func TestChecksumRollsPods(t *testing.T) {
	sum := func(pem string) string {
		o := decode(t, mustRender(t, minimal("auth.publicKeys.inline", map[string]any{"k.pem": pem})))
		return o.deployment.Spec.Template.Annotations["checksum/jwt-keys"]
	}
	a, a2, b := sum(pemA), sum(pemA), sum(pemB)
	if a == "" || a != a2 || a == b {
		t.Errorf("checksums %q, %q (same keys), %q (other keys): want equal for the same keys, different otherwise", a, a2, b)
	}
}

// TestRefused: values the chart must refuse, each with a message that
// names the problem.
func TestRefused(t *testing.T) {
	cases := []struct {
		name string
		vals map[string]any
		want []string
	}{
		{"defaults: no NATS URL", nil, []string{"nats.url is required", "existing NATS cluster"}},
		{"no authentication", vals("nats.url", "nats://nats:4222"), []string{"no client authentication is configured", "allowAnonymous=true"}},
		{"misspelt top-level value", minimal("replicaCont", 3), []string{"replicaCont", "not allowed"}},
		{"misspelt nested value", minimal("config.logFromat", "text"), []string{"logFromat", "not allowed"}},
		{"misspelt shutdown value", minimal("shutdown.drainTimeout", 30), []string{"drainTimeout", "not allowed"}},
		{"embedded NATS options", minimal("nats.enabled", true), []string{"enabled", "not allowed"}},
		{"NATS URL of another scheme", minimal("nats.url", "http://nats:4222"), []string{"nats", "url"}},
		{"drain timeout 0", minimal("shutdown.drainTimeoutSeconds", 0), []string{"drainTimeoutSeconds"}},
		{"stream replicas over 5", minimal("config.streamReplicas", 7), []string{"streamReplicas"}},
		{"log format", minimal("config.logFormat", "xml"), []string{"logFormat"}},
		{"origin without a scheme", minimal("config.allowedOrigins", []any{"monitor.example.com"}), []string{"allowedOrigins"}},
		{"duration", minimal("config.retentionMaxAge", "1 day"), []string{"retentionMaxAge"}},
		{"private key inline", minimal("auth.publicKeys.inline", map[string]any{"k.pem": "-----BEGIN PUBLIC KEY-----\n-----BEGIN PRIVATE KEY-----\n"}), []string{"k.pem"}},
		{"TLS without a Secret", minimal("tls.enabled", true), []string{"tls.enabled needs tls.secretName"}},
		{"client CA without TLS", minimal("tls.clientCA.secretName", "ca"), []string{"tls.clientCA verifies client certificates"}},
		{"two JWKS sources", minimal("auth.jwks.url", "https://idp/jwks", "auth.jwks.inline", jwks), []string{"auth.jwks: set one of"}},
		{"public keys without items", minimal("auth.publicKeys.configMapName", "keys"), []string{"auth.publicKeys.items must list"}},
		{"two public key sources", minimal("auth.publicKeys.configMapName", "keys", "auth.publicKeys.secretName", "keys", "auth.publicKeys.items", []any{"a.pem"}), []string{"auth.publicKeys: set one of"}},
		{"NATS user without userPassword", minimal("nats.credentials.user", "u"), []string{"nats.credentials.user is only used"}},
		{"userPassword without user", minimal("nats.credentials.secretName", "s", "nats.credentials.type", "userPassword"), []string{"needs nats.credentials.user"}},
		{"NATS client certificate without Secret", minimal("nats.tls.clientCertificate", true), []string{"nats.tls.clientCertificate needs"}},
		{"network policy peer of another shape", minimal("networkPolicy.adminFrom", []any{map[string]any{"namespace": "monitoring"}}), []string{"namespace", "not allowed"}},
		{"autoscaling min over max", minimal("autoscaling.minReplicas", 5, "autoscaling.maxReplicas", 4), []string{"minReplicas is larger"}},
		{"per-source cap 0", minimal("config.maxUnauthenticatedPerSource", 0), []string{"/config/maxUnauthenticatedPerSource", "minimum"}},
		{"negative unauthenticated budget", minimal("config.maxUnauthenticated", -1), []string{"/config/maxUnauthenticated'", "minimum"}},
		{"trusted proxy as a URL", minimal("config.trustedProxies", []any{"http://10.0.0.7"}), []string{"/config/trustedProxies/0", "does not match pattern"}},
		{"trusted proxy as a host name", minimal("config.trustedProxies", []any{"ingress-nginx-controller.ingress-nginx.svc"}), []string{"/config/trustedProxies/0", "does not match pattern"}},
		{"trusted proxy with a port", minimal("config.trustedProxies", []any{"10.0.0.7:443"}), []string{"/config/trustedProxies/0", "does not match pattern"}},
		{"trusted proxy CIDR too long", minimal("config.trustedProxies", []any{"10.0.0.0/33"}), []string{"/config/trustedProxies/0", "does not match pattern"}},
		{"trusted proxy in brackets", minimal("config.trustedProxies", []any{"[fd00::1]"}), []string{"/config/trustedProxies/0", "does not match pattern"}},
		{"trusted proxies comma-joined", minimal("config.trustedProxies", []any{"10.0.0.0/8,192.168.0.0/16"}), []string{"/config/trustedProxies/0", "does not match pattern"}},
		{"trusted proxies as a string", minimal("config.trustedProxies", "10.0.0.0/8"), []string{"/config/trustedProxies", "want array"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.vals)
			if err == nil {
				t.Fatal("rendered; want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestKubeVersion: the chart says it needs Kubernetes 1.30 (the preStop
// sleep action), which `helm install` checks against the cluster.
func TestKubeVersion(t *testing.T) {
	ch := loadChart(t)
	for v, want := range map[string]bool{"v1.29.9": false, "v1.30.0": true, "v1.30.2-gke.1": true, kubeVersion: true} {
		if got := chartutil.IsCompatibleRange(ch.Metadata.KubeVersion, v); got != want {
			t.Errorf("kubeVersion %q accepts %s: %v, want %v", ch.Metadata.KubeVersion, v, got, want)
		}
	}
}

// TestNoOptionalNATSDependency documents why Chart.yaml declares no
// optional NATS dependency: with it declared and its archive absent from
// charts/ (nothing can be downloaded here), Helm refuses to install or
// template the chart even with the condition false. The chart README says
// how to run the NATS chart beside this one instead.
func TestNoOptionalNATSDependency(t *testing.T) {
	ch := loadChart(t)
	if len(ch.Metadata.Dependencies) != 0 {
		t.Fatalf("Chart.yaml declares dependencies %v: helm template fails without them in charts/", ch.Metadata.Dependencies)
	}
	deps := []*chart.Dependency{{Name: "nats", Version: "1.x.x", Repository: "https://nats-io.github.io/k8s/helm/charts/", Condition: "nats.enabled"}}
	err := action.CheckDependencies(ch, deps)
	if err == nil || !strings.Contains(err.Error(), "missing in charts/ directory: nats") {
		t.Errorf("CheckDependencies with a declared, absent, disabled dependency: %v; want the refusal that makes the dependency unusable here", err)
	}
}

// checkCommon checks what holds for every value set; eff is the values
// the chart saw (values.yaml coalesced with the case's).
func checkCommon(t *testing.T, o *objects, eff chartutil.Values) {
	t.Helper()
	num := func(path string) int64 {
		v, err := eff.PathValue(path)
		if err != nil {
			t.Fatalf("value %s: %v", path, err)
		}
		switch n := v.(type) {
		case float64:
			return int64(n)
		case int:
			return int64(n)
		case int64:
			return n
		}
		t.Fatalf("value %s is %T", path, v)
		return 0
	}
	flag := func(path string) bool {
		v, _ := eff.PathValue(path)
		b, _ := v.(bool)
		return b
	}
	d := o.deployment
	if d == nil || o.service == nil {
		t.Fatal("no Deployment or Service rendered")
	}
	sel := map[string]string{"app.kubernetes.io/name": "roomcast", "app.kubernetes.io/instance": releaseName}

	// Labels and namespaces of every object.
	for _, m := range o.all {
		for k, want := range map[string]string{
			"app.kubernetes.io/name": "roomcast", "app.kubernetes.io/instance": releaseName,
			"app.kubernetes.io/managed-by": "Helm", "helm.sh/chart": "roomcast-0.1.0",
		} {
			if m.meta.Labels[k] != want {
				t.Errorf("%s %s: label %s = %q, want %q", m.kind, m.meta.Name, k, m.meta.Labels[k], want)
			}
		}
		if _, ok := m.meta.Labels["app.kubernetes.io/version"]; !ok {
			t.Errorf("%s %s: no app.kubernetes.io/version label", m.kind, m.meta.Name)
		}
		if m.meta.Namespace != releaseNamespace && !strings.HasSuffix(m.meta.Name, "-dashboard") {
			t.Errorf("%s %s in namespace %q, want %q", m.kind, m.meta.Name, m.meta.Namespace, releaseNamespace)
		}
	}

	// Selectors: stable, and the same everywhere.
	if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, sel) || len(d.Spec.Selector.MatchExpressions) != 0 {
		t.Errorf("Deployment selector %v, want %v", d.Spec.Selector, sel)
	}
	if !reflect.DeepEqual(o.service.Spec.Selector, sel) {
		t.Errorf("Service selector %v, want %v", o.service.Spec.Selector, sel)
	}
	for k, v := range sel {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("pod template label %s = %q, want %q", k, d.Spec.Template.Labels[k], v)
		}
	}

	// Rollout.
	ru := d.Spec.Strategy.RollingUpdate
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
		*ru.MaxUnavailable != intstr.FromInt32(0) || *ru.MaxSurge != intstr.FromInt32(1) {
		t.Errorf("strategy %+v, want RollingUpdate maxUnavailable 0 maxSurge 1", d.Spec.Strategy)
	}
	if flag("autoscaling.enabled") {
		if d.Spec.Replicas != nil {
			t.Errorf("replicas = %d with the HPA on; the Deployment must leave them to it", *d.Spec.Replicas)
		}
		h := o.hpa
		if h == nil {
			t.Fatal("no HorizontalPodAutoscaler with autoscaling.enabled")
		}
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != d.Name || h.Spec.ScaleTargetRef.APIVersion != "apps/v1" {
			t.Errorf("HPA targets %+v, want the Deployment %s", h.Spec.ScaleTargetRef, d.Name)
		}
		if int64(*h.Spec.MinReplicas) != num("autoscaling.minReplicas") || int64(h.Spec.MaxReplicas) != num("autoscaling.maxReplicas") {
			t.Errorf("HPA %d to %d, want the values'", *h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		if len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HPA metrics %+v, want CPU", h.Spec.Metrics)
		}
	} else if d.Spec.Replicas == nil || int64(*d.Spec.Replicas) != num("replicaCount") {
		t.Errorf("replicas = %v, want replicaCount", d.Spec.Replicas)
	}
	if flag("podDisruptionBudget.enabled") {
		if o.pdb == nil || o.pdb.Spec.MaxUnavailable == nil || *o.pdb.Spec.MaxUnavailable != intstr.FromInt32(1) {
			t.Errorf("PDB %+v, want maxUnavailable 1", o.pdb)
		} else if !reflect.DeepEqual(o.pdb.Spec.Selector.MatchLabels, sel) {
			t.Errorf("PDB selector %v, want %v", o.pdb.Spec.Selector, sel)
		}
	}

	p := d.Spec.Template.Spec
	c := container(t, o)

	// Graceful shutdown: the grace period covers preStop, the drain delay
	// and the drain timeout, which come from the same values as the flags.
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Exec != nil || c.Lifecycle.PreStop.HTTPGet != nil {
			t.Errorf("preStop %+v, want the sleep action only (no shell in the image)", c.Lifecycle.PreStop)
		} else {
			preStop = c.Lifecycle.PreStop.Sleep.Seconds
		}
	}
	delay := envDuration(t, c, "ROOMCAST_DRAIN_DELAY")
	timeout := envDuration(t, c, "ROOMCAST_DRAIN_TIMEOUT")
	if preStop != num("shutdown.preStopSleepSeconds") || int64(delay/time.Second) != num("shutdown.drainDelaySeconds") || int64(timeout/time.Second) != num("shutdown.drainTimeoutSeconds") {
		t.Errorf("preStop %ds, drain delay %v, drain timeout %v: not the shutdown values", preStop, delay, timeout)
	}
	grace := p.TerminationGracePeriodSeconds
	need := preStop + int64((delay+timeout)/time.Second)
	if grace == nil {
		t.Error("no terminationGracePeriodSeconds")
	} else if *grace < need {
		t.Errorf("terminationGracePeriodSeconds %d < preStop + drain delay + drain timeout = %d", *grace, need)
	} else if *grace != need+num("shutdown.marginSeconds") {
		t.Errorf("terminationGracePeriodSeconds %d, want %d + margin %d", *grace, need, num("shutdown.marginSeconds"))
	}

	// Security.
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token")
	}
	if o.serviceAccount != nil && (o.serviceAccount.AutomountServiceAccountToken == nil || *o.serviceAccount.AutomountServiceAccountToken) {
		t.Error("the ServiceAccount mounts its token")
	}
	if p.EnableServiceLinks == nil || *p.EnableServiceLinks {
		t.Error("service links are on: ROOMCAST_* variables of Services would reach serve")
	}
	psc := p.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 ||
		psc.FSGroup == nil || *psc.FSGroup != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v, want non-root 65532, fsGroup 65532, seccomp RuntimeDefault", psc)
	}
	sc := c.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged == nil || *sc.Privileged ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container securityContext %+v, want non-root 65532, read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if c.Resources.Requests.Name(r, "").IsZero() || c.Resources.Limits.Name(r, "").IsZero() {
			t.Errorf("no %s request or limit", r)
		}
	}

	// Ports and probes.
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	if int64(ports["ws"]) != num("ports.ws") || int64(ports["admin"]) != num("ports.admin") {
		t.Errorf("container ports %v", ports)
	}
	adminScheme := corev1.URISchemeHTTP
	if v, _ := eff.PathValue("adminTLS.secretName"); v != "" && v != nil {
		adminScheme = corev1.URISchemeHTTPS
	}
	for _, probe := range []struct {
		p    *corev1.Probe
		path string
	}{{c.LivenessProbe, "/healthz"}, {c.ReadinessProbe, "/readyz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path || probe.p.HTTPGet.Port != intstr.FromString("admin") {
			t.Errorf("probe %+v, want GET %s on the admin port", probe.p, probe.path)
		} else if scheme := cmp.Or(probe.p.HTTPGet.Scheme, corev1.URISchemeHTTP); scheme != adminScheme {
			t.Errorf("probe on %s uses %s: the admin port serves %s", probe.path, scheme, adminScheme)
		}
	}
	// The WebSocket Service has the ws port only, whatever its type; the
	// admin port is on a ClusterIP Service of its own.
	if ps := o.service.Spec.Ports; len(ps) != 1 || ps[0].Name != "ws" || ps[0].TargetPort != intstr.FromString("ws") || int64(ps[0].Port) != num("service.port") {
		t.Errorf("Service ports %+v, want ws only, to the named container port", ps)
	}
	if a := o.adminService; a == nil || a.Spec.Type != corev1.ServiceTypeClusterIP || len(a.Spec.Ports) != 1 ||
		a.Spec.Ports[0].Name != "admin" || a.Spec.Ports[0].TargetPort != intstr.FromString("admin") || int64(a.Spec.Ports[0].Port) != num("service.adminPort") ||
		!reflect.DeepEqual(a.Spec.Selector, sel) || len(a.Annotations) != 0 {
		t.Errorf("admin Service %+v, want ClusterIP with the admin port only, without the WebSocket Service's annotations", a)
	}

	// Settings.
	if ref := envVar(t, c, "ROOMCAST_SERVER_NAME").ValueFrom; ref == nil || ref.FieldRef == nil || ref.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("ROOMCAST_SERVER_NAME is not the pod's name: %+v", ref)
	}
	if got := envValue(t, c, "ROOMCAST_LOG_FORMAT"); got != "json" {
		t.Errorf("ROOMCAST_LOG_FORMAT = %q, want json", got)
	}
	image := "ghcr.io/roomcast/roomcast:0.1.0"
	if v, _ := eff.PathValue("image.repository"); v != "ghcr.io/roomcast/roomcast" {
		image = v.(string) + ":0.1.0"
	}
	if c.Image != image {
		t.Errorf("image %q, want %q", c.Image, image)
	}

	// Volumes: read-only, readable by the group only, all declared.
	vols := map[string]corev1.Volume{}
	for _, v := range p.Volumes {
		vols[v.Name] = v
		var mode *int32
		switch {
		case v.Secret != nil:
			mode = v.Secret.DefaultMode
		case v.ConfigMap != nil:
			mode = v.ConfigMap.DefaultMode
		default:
			t.Errorf("volume %s is neither a Secret nor a ConfigMap", v.Name)
		}
		if mode == nil || *mode != 0o440 {
			t.Errorf("volume %s defaultMode %v, want 0440", v.Name, mode)
		}
	}
	for _, m := range c.VolumeMounts {
		if !m.ReadOnly || m.SubPath != "" {
			t.Errorf("mount %s at %s: want read-only, without subPath (so rotated files show)", m.Name, m.MountPath)
		}
		if _, ok := vols[m.Name]; !ok {
			t.Errorf("mount of undeclared volume %s", m.Name)
		}
	}
	if len(vols) != len(c.VolumeMounts) {
		t.Errorf("%d volumes for %d mounts", len(vols), len(c.VolumeMounts))
	}

	// Spread.
	if flag("topologySpread.enabled") {
		keys := map[string]bool{}
		for _, tsc := range p.TopologySpreadConstraints {
			keys[tsc.TopologyKey] = true
			if tsc.WhenUnsatisfiable != corev1.ScheduleAnyway || tsc.MaxSkew != 1 || tsc.LabelSelector == nil || !reflect.DeepEqual(tsc.LabelSelector.MatchLabels, sel) {
				t.Errorf("topology spread %+v, want maxSkew 1, ScheduleAnyway, the selector", tsc)
			}
		}
		if !keys["kubernetes.io/hostname"] || !keys["topology.kubernetes.io/zone"] {
			t.Errorf("topology spread over %v, want nodes and zones", keys)
		}
	}

	// Monitoring.
	if got := o.serviceMonitor != nil; got != flag("serviceMonitor.enabled") {
		t.Errorf("ServiceMonitor rendered: %v, serviceMonitor.enabled: %v", got, !got)
	}
	if sm := o.serviceMonitor; sm != nil {
		if !selects(sm.Spec.Selector.MatchLabels, o.adminService.Labels) || selects(sm.Spec.Selector.MatchLabels, o.service.Labels) ||
			len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "admin" || sm.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor spec %+v, want /metrics on the admin port of the admin Service, and not the WebSocket Service", sm.Spec)
		}
	}
	if got := o.prometheusRule != nil; got != flag("prometheusRule.enabled") {
		t.Errorf("PrometheusRule rendered: %v, prometheusRule.enabled: %v", got, !got)
	}
	if pr := o.prometheusRule; pr != nil {
		js, err := yaml.YAMLToJSONStrict(readFile(t, "alerts/roomcast-rules.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var want ruleFile
		if err := decodeStrict(js, &want); err != nil {
			t.Fatalf("alerts/roomcast-rules.yaml: %v", err)
		}
		if len(want.Groups) == 0 || !reflect.DeepEqual(pr.Spec, want) {
			t.Error("the PrometheusRule's groups are not those of alerts/roomcast-rules.yaml")
		}
	}
	dash := o.configMaps["rc-roomcast-dashboard"]
	if got := dash != nil; got != flag("grafanaDashboard.enabled") {
		t.Errorf("dashboard ConfigMap rendered: %v, grafanaDashboard.enabled: %v", got, !got)
	}
	if dash != nil {
		if dash.Labels["grafana_dashboard"] != "1" {
			t.Errorf("dashboard ConfigMap labels %v, want grafana_dashboard: \"1\"", dash.Labels)
		}
		want := strings.TrimRight(string(readFile(t, "dashboards/roomcast.json")), "\n")
		if got := dash.Data["roomcast.json"]; got != want || !json.Valid([]byte(got)) {
			t.Error("the dashboard ConfigMap's roomcast.json is not dashboards/roomcast.json")
		}
	}

	// NOTES.txt.
	for _, w := range []string{"/healthz", "/readyz", "/metrics", "rc-roomcast." + releaseNamespace + ".svc", "port-forward"} {
		if !strings.Contains(o.notes, w) {
			t.Errorf("NOTES.txt does not mention %q:\n%s", w, o.notes)
		}
	}
}

// selects reports whether a label selector's matchLabels select labels.
func selects(matchLabels, labels map[string]string) bool {
	for k, v := range matchLabels {
		if labels[k] != v {
			return false
		}
	}
	return len(matchLabels) > 0
}

// mustMount checks that path in the container is key of the Secret or
// ConfigMap named source, mounted read-only.
func mustMount(t *testing.T, o *objects, path, source, key string) {
	t.Helper()
	c := container(t, o)
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(path, m.MountPath+"/") {
			continue
		}
		file := strings.TrimPrefix(path, m.MountPath+"/")
		for _, v := range o.deployment.Spec.Template.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			var name string
			var items []corev1.KeyToPath
			switch {
			case v.Secret != nil:
				name, items = v.Secret.SecretName, v.Secret.Items
			case v.ConfigMap != nil:
				name, items = v.ConfigMap.Name, v.ConfigMap.Items
			}
			for _, it := range items {
				if name == source && it.Key == key && it.Path == file && m.ReadOnly {
					return
				}
			}
		}
	}
	t.Errorf("%s is not key %s of %s mounted read-only", path, key, source)
}

func container(t *testing.T, o *objects) corev1.Container {
	t.Helper()
	cs := o.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "roomcast" {
		t.Fatalf("containers %v, want one named roomcast", cs)
	}
	return cs[0]
}

func envVar(t *testing.T, c corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef == nil && e.ValueFrom.FieldRef == nil {
				t.Fatalf("%s: unexpected source %+v", name, e.ValueFrom)
			}
			return e
		}
	}
	t.Fatalf("no environment variable %s", name)
	return corev1.EnvVar{}
}

func envValue(t *testing.T, c corev1.Container, name string) string {
	t.Helper()
	e := envVar(t, c, name)
	if e.ValueFrom != nil {
		t.Fatalf("%s comes from %+v, not a value", name, e.ValueFrom)
	}
	return e.Value
}

func envDuration(t *testing.T, c corev1.Container, name string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(envValue(t, c, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}
