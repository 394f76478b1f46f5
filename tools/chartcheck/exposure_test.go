package chartcheck

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Turning the WebSocket Service into a LoadBalancer exposes the WebSocket
// port only: the admin port (metrics, pprof) stays on its own ClusterIP
// Service, which the ServiceMonitor scrapes, and the Ingress routes to the
// WebSocket port only.
func TestLoadBalancerExposesTheWebSocketPortOnly(t *testing.T) {
	o := decode(t, mustRender(t, minimal(
		"service.type", "LoadBalancer",
		"service.annotations", map[string]any{"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
		"serviceMonitor.enabled", true,
		"ingress.enabled", true, "ingress.hosts", []any{"roomcast.example.com"})))
	if o.service.Spec.Type != corev1.ServiceTypeLoadBalancer {
		t.Fatalf("WebSocket Service type %s, want LoadBalancer", o.service.Spec.Type)
	}
	for _, p := range o.service.Spec.Ports {
		if p.Name != "ws" || p.TargetPort.String() != "ws" {
			t.Errorf("the LoadBalancer Service has port %s to %s: only ws may be public", p.Name, p.TargetPort.String())
		}
	}
	a := o.adminService
	if a == nil || a.Spec.Type != corev1.ServiceTypeClusterIP || len(a.Spec.Ports) != 1 || a.Spec.Ports[0].TargetPort.String() != "admin" {
		t.Fatalf("admin Service %+v, want ClusterIP with the admin port", a)
	}
	if len(a.Annotations) != 0 {
		t.Errorf("the admin Service got the load balancer's annotations %v", a.Annotations)
	}
	sm := o.serviceMonitor.Spec
	if !selects(sm.Selector.MatchLabels, a.Labels) || selects(sm.Selector.MatchLabels, o.service.Labels) {
		t.Errorf("ServiceMonitor selects %v: want the admin Service (%v) only", sm.Selector.MatchLabels, a.Labels)
	}
	for _, r := range o.ingress.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			if b := p.Backend.Service; b == nil || b.Name != o.service.Name || b.Port.Name != "ws" {
				t.Errorf("Ingress rule %s routes to %+v, want the WebSocket Service's ws port", r.Host, b)
			}
		}
	}
}

// NOTES.txt says how to reach the admin port as it is served (HTTPS with
// admin TLS), how to send the admin token when one is asked for (from its
// Secret, never its value), and warns when /metrics is open to the
// cluster.
func TestNotesOnTheAdminPort(t *testing.T) {
	const warning = "WARNING: the admin port serves /metrics"
	for _, tc := range []struct {
		name      string
		vals      map[string]any
		want, not []string
	}{
		{"open", minimal(), []string{
			"curl http://127.0.0.1:9090/metrics", warning, "no adminAuth.secretName", "networkPolicy.enabled=true",
			"port-forward service/rc-roomcast-admin 9090:9090",
			"--token-file token.jwt", // never --token, which ps shows
		}, []string{"Authorization", "https://", "/debug/pprof/", `--token "`}},
		{"open with pprof and a network policy", minimal("config.pprof", true, "networkPolicy.enabled", true),
			[]string{warning + " and /debug/pprof/ to anyone"}, []string{"networkPolicy.enabled=true"}},
		{"token", minimal("adminAuth.secretName", "roomcast-admin"), []string{
			`-H "Authorization: Bearer $(kubectl -n roomcast get secret roomcast-admin -o jsonpath='{.data.token}' | base64 -d)" http://127.0.0.1:9090/metrics`,
		}, []string{warning}},
		{"token under a dotted key", minimal("adminAuth.secretName", "roomcast-admin", "adminAuth.key", "admin.token"),
			[]string{`jsonpath='{.data.admin\.token}'`}, []string{warning}},
		{"TLS and token", minimal("adminTLS.secretName", "roomcast-admin-tls", "adminAuth.secretName", "roomcast-admin"), []string{
			"HTTPS, a certificate for rc-roomcast-admin.roomcast.svc",
			`kubectl -n roomcast get secret roomcast-admin-tls -o jsonpath='{.data.ca\.crt}' | base64 -d > admin-ca.crt`,
			"curl --cacert admin-ca.crt --resolve rc-roomcast-admin.roomcast.svc:9090:127.0.0.1 https://rc-roomcast-admin.roomcast.svc:9090/healthz",
			"Bearer $(kubectl", "https://rc-roomcast-admin.roomcast.svc:9090/metrics",
		}, []string{warning, "http://127.0.0.1:9090"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			notes := decode(t, mustRender(t, tc.vals)).notes
			for _, w := range tc.want {
				if !strings.Contains(notes, w) {
					t.Errorf("NOTES.txt does not say %q:\n%s", w, notes)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(notes, n) {
					t.Errorf("NOTES.txt says %q:\n%s", n, notes)
				}
			}
		})
	}
}

// values-production.yaml's header lists every Secret that the release it
// renders refers to: one missing leaves the pods in ContainerCreating (a
// volume), CreateContainerConfigError (a variable) or ImagePullBackOff, or
// Prometheus without its token.
func TestProductionHeaderListsEverySecret(t *testing.T) {
	o := decode(t, mustRender(t, valuesFile(t, "values-production.yaml")))
	var header []string
	for _, line := range strings.Split(string(readFile(t, "values-production.yaml")), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		header = append(header, line)
	}
	secrets := referencedSecrets(o)
	if len(secrets) < 5 {
		t.Fatalf("found only the Secrets %v: the collection misses some", secrets)
	}
	for _, name := range secrets {
		listed := regexp.MustCompile(`^#\s+` + regexp.QuoteMeta(name) + `\s`)
		if !slices.ContainsFunc(header, listed.MatchString) {
			t.Errorf("values-production.yaml refers to the Secret %s, which its header does not list", name)
		}
	}
}

// referencedSecrets is every Secret name the rendered objects refer to.
func referencedSecrets(o *objects) []string {
	var names []string
	p := o.deployment.Spec.Template.Spec
	for _, s := range p.ImagePullSecrets {
		names = append(names, s.Name)
	}
	for _, v := range p.Volumes {
		if v.Secret != nil {
			names = append(names, v.Secret.SecretName)
		}
	}
	for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				names = append(names, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				names = append(names, e.SecretRef.Name)
			}
		}
	}
	if sm := o.serviceMonitor; sm != nil {
		for _, ep := range sm.Spec.Endpoints {
			if ep.Authorization != nil {
				names = append(names, ep.Authorization.Credentials.Name)
			}
			if ep.TLSConfig != nil && ep.TLSConfig.CA.Secret != nil {
				names = append(names, ep.TLSConfig.CA.Secret.Name)
			}
		}
	}
	if o.ingress != nil {
		for _, tls := range o.ingress.Spec.TLS {
			names = append(names, tls.SecretName)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}
