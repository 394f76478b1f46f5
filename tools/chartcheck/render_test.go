package chartcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, from this package's directory.
const chartDir = "../../charts/roomcast"

// Release settings of every render.
const (
	releaseName      = "rc"
	releaseNamespace = "roomcast"
	// kubeVersion is the cluster version the chart is rendered for; the
	// chart needs 1.30 or later (the preStop sleep action).
	kubeVersion = "v1.37.0"
)

// loadChart loads the chart directory as `helm template` does
// (.helmignore applied).
func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("loading %s: %v", chartDir, err)
	}
	return ch
}

// render renders the chart with user values vals over the chart's
// values.yaml, as `helm template rc charts/roomcast -n roomcast` does:
// dependencies processed, values coalesced and validated against
// values.schema.json, templates executed (strictly: a template reading a
// value that does not exist fails). It returns the rendered files by name.
func render(t *testing.T, vals map[string]any) (map[string]string, error) {
	t.Helper()
	ch := loadChart(t)
	if vals == nil {
		vals = map[string]any{}
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, vals); err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps.KubeVersion = *kv
	opts := chartutil.ReleaseOptions{Name: releaseName, Namespace: releaseNamespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals, opts, caps)
	if err != nil {
		return nil, err
	}
	return engine.Engine{Strict: true}.Render(ch, rv)
}

// mustRender renders and fails the test on an error.
func mustRender(t *testing.T, vals map[string]any) map[string]string {
	t.Helper()
	files, err := render(t, vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return files
}

// valuesFile reads a values file of the chart (values-production.yaml).
func valuesFile(t *testing.T, name string) map[string]any {
	t.Helper()
	v, err := chartutil.ReadValuesFile(filepath.Join(chartDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

// vals builds nested values from dotted paths, as --set does:
// vals("nats.url", "nats://x:4222", "allowAnonymous", true).
func vals(kv ...any) map[string]any {
	out := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		path := strings.Split(kv[i].(string), ".")
		m := out
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[path[len(path)-1]] = kv[i+1]
	}
	return out
}

// minimal is the smallest set of values that renders: a NATS URL and a key.
func minimal(kv ...any) map[string]any {
	return vals(append([]any{
		"nats.url", "nats://nats.nats.svc.cluster.local:4222",
		"auth.jwtSecret.secretName", "roomcast-jwt",
	}, kv...)...)
}

// objects is what a render produced, decoded.
type objects struct {
	notes           string
	deployment      *appsv1.Deployment
	service         *corev1.Service // the WebSocket Service
	adminService    *corev1.Service // the admin port's (label roomcast/service: admin)
	ingress         *networkingv1.Ingress
	serviceAccount  *corev1.ServiceAccount
	pdb             *policyv1.PodDisruptionBudget
	hpa             *autoscalingv2.HorizontalPodAutoscaler
	networkPolicy   *networkingv1.NetworkPolicy
	configMaps      map[string]*corev1.ConfigMap // by name
	serviceMonitor  *serviceMonitor
	prometheusRule  *prometheusRule
	all             []metaObject // every object, for checks of labels and namespaces
	kindsInTemplate map[string]string
}

// metaObject is what every object has.
type metaObject struct {
	source string
	kind   string
	meta   metav1.ObjectMeta
}

// decode splits the rendered files into YAML documents and decodes each
// strictly into its Go type: duplicate keys in the YAML and fields that
// the type does not have are errors. An object of a kind the test does
// not know is an error too, so a new template must be added here.
func decode(t *testing.T, files map[string]string) *objects {
	t.Helper()
	o := &objects{configMaps: map[string]*corev1.ConfigMap{}, kindsInTemplate: map[string]string{}}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		content := files[name]
		if strings.HasSuffix(name, "NOTES.txt") {
			o.notes = content
			continue
		}
		docs := releaseutil.SplitManifests(content)
		keys := make([]string, 0, len(docs))
		for k := range docs {
			keys = append(keys, k)
		}
		sort.Sort(releaseutil.BySplitManifestsOrder(keys))
		for _, k := range keys {
			doc := docs[k]
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			js, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				t.Fatalf("%s: not YAML without duplicate keys: %v\n%s", name, err, doc)
			}
			var tm metav1.TypeMeta
			if err := json.Unmarshal(js, &tm); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			gvk := tm.APIVersion + " " + tm.Kind
			var target any
			var meta *metav1.ObjectMeta
			var cm *corev1.ConfigMap
			switch gvk {
			case "apps/v1 Deployment":
				o.deployment = &appsv1.Deployment{}
				target, meta = o.deployment, &o.deployment.ObjectMeta
			case "v1 Service":
				svc := &corev1.Service{}
				if strings.Contains(doc, "roomcast/service: admin") {
					o.adminService = svc
				} else {
					o.service = svc
				}
				target, meta = svc, &svc.ObjectMeta
			case "networking.k8s.io/v1 Ingress":
				o.ingress = &networkingv1.Ingress{}
				target, meta = o.ingress, &o.ingress.ObjectMeta
			case "v1 ServiceAccount":
				o.serviceAccount = &corev1.ServiceAccount{}
				target, meta = o.serviceAccount, &o.serviceAccount.ObjectMeta
			case "v1 ConfigMap":
				cm = &corev1.ConfigMap{}
				target, meta = cm, &cm.ObjectMeta
			case "policy/v1 PodDisruptionBudget":
				o.pdb = &policyv1.PodDisruptionBudget{}
				target, meta = o.pdb, &o.pdb.ObjectMeta
			case "autoscaling/v2 HorizontalPodAutoscaler":
				o.hpa = &autoscalingv2.HorizontalPodAutoscaler{}
				target, meta = o.hpa, &o.hpa.ObjectMeta
			case "networking.k8s.io/v1 NetworkPolicy":
				o.networkPolicy = &networkingv1.NetworkPolicy{}
				target, meta = o.networkPolicy, &o.networkPolicy.ObjectMeta
			case "monitoring.coreos.com/v1 ServiceMonitor":
				o.serviceMonitor = &serviceMonitor{}
				target, meta = o.serviceMonitor, &o.serviceMonitor.ObjectMeta
			case "monitoring.coreos.com/v1 PrometheusRule":
				o.prometheusRule = &prometheusRule{}
				target, meta = o.prometheusRule, &o.prometheusRule.ObjectMeta
			default:
				t.Fatalf("%s: object %q that the test does not know: add it to decode", name, gvk)
			}
			if err := decodeStrict(js, target); err != nil {
				t.Fatalf("%s: %s does not decode strictly: %v\n%s", name, gvk, err, doc)
			}
			if cm != nil {
				o.configMaps[cm.Name] = cm
			}
			o.all = append(o.all, metaObject{source: name, kind: tm.Kind, meta: *meta})
			o.kindsInTemplate[tm.Kind] = name
		}
	}
	return o
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func decodeStrict(js []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

// stripComments drops YAML comment lines (a template whose object is
// switched off leaves only its comments and a blank).
func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// The Prometheus Operator's kinds have no Go types in k8s.io/api. These
// are the parts of monitoring.coreos.com/v1 that the chart writes, with
// the CRDs' field names; decoding into them strictly catches a misspelt or
// misplaced field. Fields the chart does not use are left out on purpose:
// adding one to a template means adding it here, under its CRD name.

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames,omitempty"`
			Any        bool     `json:"any,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization,omitempty"`
			TLSConfig *struct {
				CA struct {
					Secret *corev1.SecretKeySelector `json:"secret"`
				} `json:"ca"`
				ServerName string `json:"serverName"`
			} `json:"tlsConfig,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ruleFile `json:"spec"`
}

// ruleFile is both a PrometheusRule's spec and a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name     string `json:"name"`
		Interval string `json:"interval,omitempty"`
		Rules    []struct {
			Alert         string            `json:"alert,omitempty"`
			Record        string            `json:"record,omitempty"`
			Expr          string            `json:"expr"`
			For           string            `json:"for,omitempty"`
			KeepFiringFor string            `json:"keep_firing_for,omitempty"`
			Labels        map[string]string `json:"labels,omitempty"`
			Annotations   map[string]string `json:"annotations,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

// readFile reads a file of the chart.
func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
